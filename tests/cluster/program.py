"""The project's own Pulumi program, run unchanged, plus one test-only switch: a server that never turns ready.

With the stack config `modelship-test:neverReady: true`, the model server Deployment's container looks for its
model where there is none (MODEL_DIR, docs/contracts.md): the image is real, the server starts and fails its
own readiness probe, as a broken build would, and the provider gives up awaiting the rollout after
`modelship-test:rolloutTimeoutSeconds`.
"""
import runpy
from pathlib import Path

import pulumi

from infra.kubernetes import APP

MISSING_MODEL_DIR = "/model-that-does-not-exist"
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
    pod_spec = dict(template["spec"])
    (container,) = pod_spec["containers"]
    env = [e for e in container["env"] if e["name"] != "MODEL_DIR"] + [{"name": "MODEL_DIR", "value": MISSING_MODEL_DIR}]
    pod_spec["containers"] = [{**container, "env": env}]
    template["spec"] = pod_spec
    spec["template"] = template
    props.update(metadata=metadata, spec=spec)
    return pulumi.ResourceTransformResult(props, args.opts)


if settings.get_bool("neverReady"):
    pulumi.runtime.register_resource_transform(never_ready)
# The scratch project links the repository's entries beside this file's copy; the real program is there.
runpy.run_path(str(Path(__file__).parent / "modelship_main.py"), run_name="__main__")
