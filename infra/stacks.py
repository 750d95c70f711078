"""`python -m infra.stacks`: the stacks a PR check can preview, as a JSON list for a workflow matrix.

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


def main(argv: Optional[list[str]] = None) -> int:
    argparse.ArgumentParser(prog="python -m infra.stacks", description=__doc__.splitlines()[0]).parse_args(argv)
    print(json.dumps(previewable()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
