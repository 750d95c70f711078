"""A stack's outputs as the CLI reports them: how the program reads its own last state and promote reads a source."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class StackOutputsError(RuntimeError):
    pass


def read_outputs(stack: str, cwd: Path = ROOT) -> dict[str, Any]:
    """`pulumi stack output --json` of `stack` ({} for a stack that has never been updated)."""
    proc = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--non-interactive", "--stack", stack],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise StackOutputsError(
            f"could not read the outputs of stack '{stack}': {proc.stderr.strip() or proc.stdout.strip()}\n"
            "Is the backend the same one (PULUMI_BACKEND_URL, `source toolchain/env.sh`)?"
        )
    return json.loads(proc.stdout or "{}")
