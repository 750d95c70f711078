"""Debian's `promtool` and `amtool`, run on generated files; a missing tool fails the test, naming the fix."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager", "prometheus": "prometheus"}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"`{name}` is not on PATH: run `make bootstrap` (it installs Debian's `{PACKAGES[name]}` package), "
            f"or `apt-get install {PACKAGES[name]}`.",
            pytrace=False,
        )
    return path


def run(name: str, *args: str | Path, cwd: Path | None = None) -> str:
    """Runs the tool; a non-zero exit fails the test with the tool's own output."""
    done = subprocess.run([tool(name), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"`{name} {' '.join(map(str, args))}` exited {done.returncode}:\n{output}", pytrace=False)
    return output
