"""The project's own Pulumi program, run unchanged, plus one test-only switch for the local KWOK cluster.

With the stack config `modelship-test:neverReady: true`, the model server Deployment's pods carry KWOK's never-ready
marker (cluster/kwok-stages.yaml: they start but never pass readiness, as a broken image would) and the
provider gives up awaiting the rollout after `modelship-test:rolloutTimeoutSeconds`.
"""
import runpy
from pathlib import Path

import pulumi

from infra.kubernetes import APP

NEVER_READY = {"modelship.ai/kwok-readiness": "never"}
settings = pulumi.Config("modelship-test")


def never_ready(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ != "kubernetes:apps/v1:Deployment":
        return None
    props = dict(args.props)
    metadata = dict(props.get("metadata") or {})
    if metadata.get("name") != APP:  # the model server's, not monitoring's
        return None
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        "pulumi.com/timeoutSeconds": str(settings.require_int("rolloutTimeoutSeconds")),
    }
    spec = dict(props["spec"])
    template = dict(spec["template"])
    pod_metadata = dict(template.get("metadata") or {})
    pod_metadata["annotations"] = {**(pod_metadata.get("annotations") or {}), **NEVER_READY}
    template["metadata"] = pod_metadata
    spec["template"] = template
    props.update(metadata=metadata, spec=spec)
    return pulumi.ResourceTransformResult(props, args.opts)


if settings.get_bool("neverReady"):
    pulumi.runtime.register_resource_transform(never_ready)
# The scratch project links the repository's entries beside this file's copy; the real program is there.
runpy.run_path(str(Path(__file__).parent / "modelship_main.py"), run_name="__main__")
