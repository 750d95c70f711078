"""Build once, deploy many: `python -m infra.promote --from dev --to staging`.

Reads the source stack's outputs, re-checks the model's recorded metrics against the target stack's gate
(refusing with the table), copies the image to the target registry by digest when the registries differ,
and writes the pinned digest into `Pulumi.<to>.yaml` for review in a PR. `--reference` writes
`promotion.fromStack` instead: the target then follows the source's outputs at every preview.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from infra.config import DIGEST_REF, NAMESPACE, GateConfig, PromotionConfig, RegistryConfig
from infra import ROOT
from infra.stack_outputs import read_outputs, recorded_task

KEY = f"{NAMESPACE}:promotion"


class PromotionRefused(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"promotion refused: {message}")


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = dict(config.get(f"{NAMESPACE}:{name}") or {})
    # Encrypted values (`secure:`) stay where they are: promotion never needs them from the file.
    return {k: v for k, v in value.items() if not (isinstance(v, dict) and "secure" in v)}


def registry_of(ref: str) -> str:
    return ref.split("/", 1)[0]


def copy_image(ref: str, server: str, password: Optional[str], username: Optional[str]) -> str:
    """Pulls `ref` by digest, pushes it under `server`, returns the new `ref@digest` (same manifest, same digest)."""
    import docker

    client = docker.from_env()
    repository, digest = ref.split("@", 1)
    name_tag = repository.split("/", 1)[1]
    name, tag = name_tag.rsplit(":", 1) if ":" in name_tag else (name_tag, digest.split(":")[1][:12])
    image = client.images.pull(ref)
    target = f"{server}/{name}"
    image.tag(target, tag)
    auth = {"username": username, "password": password} if password else None
    for line in client.images.push(target, tag, auth_config=auth, stream=True, decode=True):
        if "error" in line:
            raise PromotionRefused(f"push of {target}:{tag} failed: {line['error']}")
    pushed = client.images.get_registry_data(f"{target}:{tag}", auth_config=auth).id
    client.images.remove(f"{target}:{tag}")
    if pushed != digest:
        raise PromotionRefused(f"{target}:{tag} has digest {pushed}, not the promoted {digest}")
    return f"{target}:{tag}@{pushed}"


def promote(source: str, target: str, reference: bool = False, root: Path = ROOT) -> dict[str, Any]:
    from model.gate import evaluate

    stack_file = root / f"Pulumi.{target}.yaml"
    settings = yaml.safe_load(stack_file.read_text()) or {}
    config = settings.setdefault("config", {})
    gate = GateConfig.model_validate(_section(config, "gate"))
    registry = RegistryConfig.model_validate(_section(config, "registry"))
    current = PromotionConfig.model_validate(_section(config, "promotion"))

    outputs = read_outputs(source, root)
    missing = [k for k in ("imageRef", "modelId", "metrics") if k not in outputs]
    if missing:
        raise PromotionRefused(f"stack '{source}' has no {', '.join(missing)} output: run `pulumi up` on it first")
    ref, model_id, metrics, task = outputs["imageRef"], outputs["modelId"], outputs["metrics"], recorded_task(outputs)
    if not DIGEST_REF.match(ref):
        raise PromotionRefused(f"stack '{source}' serves {ref!r}, which is not pinned by digest")

    result = evaluate(model_id, {**metrics, "task": task}, gate.thresholds)
    if not result.passed:
        raise PromotionRefused(f"model {model_id[:12]} fails the gate of stack '{target}'.\n\n{result.to_markdown()}")

    if reference:
        promotion = {"fromStack": source, "requireDigest": current.require_digest}
    else:
        if registry.server and registry_of(ref) != registry.server:
            password = os.environ.get("MODELSHIP_REGISTRY_PASSWORD")
            ref = copy_image(ref, registry.server, password, registry.username)
        promotion = {"image": ref, "modelId": model_id, "task": task, "metrics": metrics,
                     "requireDigest": current.require_digest}
    config[KEY] = promotion
    stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    return promotion


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="stack whose deployed image is promoted")
    parser.add_argument("--to", dest="target", required=True, help="stack whose Pulumi.<to>.yaml is written")
    parser.add_argument("--reference", action="store_true", help="follow the source stack instead of pinning")
    args = parser.parse_args(argv)
    promotion = promote(args.source, args.target, args.reference)
    what = promotion.get("image") or f"stack {args.source} (reference)"
    print(f"Pulumi.{args.target}.yaml now deploys {what}; review it in a PR, then `pulumi up --stack {args.target}`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
