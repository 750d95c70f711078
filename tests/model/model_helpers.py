"""Subprocess helpers for the model tests (a module of its own: every test directory has a `conftest`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_python(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python <args>` from the project root, as a developer or the Pulumi program runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def model_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run_python("-m", "model", *args, timeout=timeout)


def stdout_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.stdout.strip(), f"no JSON on stdout; rc={proc.returncode}, stderr:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)
