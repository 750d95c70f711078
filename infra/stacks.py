"""`python -m infra.stacks`: the stacks a PR check can preview, as a JSON list for a workflow matrix;
`--target STACK`: where that stack's workload runs (what `make` must bootstrap for it).

A stack that builds its image (dev) always can. A stack that deploys a promoted image can once a promotion
has pinned one (`promotion.image` or `promotion.fromStack` in its file); before that its preview could only
fail on the missing pin, which says nothing about the PR.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import yaml

from infra.config import NAMESPACE
from infra import ROOT


def previewable(root: Path = ROOT) -> list[str]:
    stacks = []
    for path in sorted(root.glob("Pulumi.*.yaml")):
        config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        builds = (config.get(f"{NAMESPACE}:image") or {}).get("build", True)
        promotion = config.get(f"{NAMESPACE}:promotion") or {}
        if builds or promotion.get("image") or promotion.get("fromStack"):
            stacks.append(path.name.split(".")[1])
    return stacks


def target(stack: str, root: Path = ROOT) -> str:
    """`modelship:target` of `Pulumi.<stack>.yaml`, else Pulumi.yaml's default (a stack without a file too)."""
    path = root / f"Pulumi.{stack}.yaml"
    config = ((yaml.safe_load(path.read_text()) or {}).get("config") or {}) if path.exists() else {}
    key = f"{NAMESPACE}:target"
    return config.get(key) or yaml.safe_load((root / "Pulumi.yaml").read_text())["config"][key]["default"]


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stacks", description=__doc__.splitlines()[0])
    parser.add_argument("--target", metavar="STACK", help="print where STACK's workload runs (docker or kubernetes)")
    args = parser.parse_args(argv)
    print(target(args.target) if args.target else json.dumps(previewable()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
