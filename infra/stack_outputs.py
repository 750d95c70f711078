"""A stack's outputs as the CLI reports them: how the program reads its own last state and promote reads a source."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

from app.entry import Task
from infra import READY_PATH, ROOT
from model.config import DEFAULT_TASK

# How long `make up` waits for the endpoint it prints to answer: on Kubernetes, kube-proxy programs a Service made
# at the end of an update (the stack's, once the proxy pods run) a moment after the engine has seen its endpoints.
ANSWER_TIMEOUT_SECONDS = 30.0


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


def recorded_task(outputs: dict[str, Any]) -> Task:
    """The task a stack's outputs record; a stack deployed before tasks existed has no `task` output, and its
    model was the built-in classifier."""
    return outputs.get("task", DEFAULT_TASK)


def summary(outputs: dict[str, Any]) -> str:
    """What `make up` prints after an update: where it serves, what, why it was allowed to, how to call it.
    The whole outputs (the dashboard among them) stay one `pulumi stack output` away."""
    rows = [
        ("endpoint", outputs.get("endpoint")),
        ("image", outputs.get("imageRef")),
        ("gate", (outputs.get("gate") or {}).get("summary")),
        ("prometheus", outputs.get("prometheusUrl")),
        ("try it", outputs.get("curl")),
    ]
    return "\n".join(f"{name + ':':<12}{value}" for name, value in rows if value)


def unanswered(endpoint: str, timeout: float = ANSWER_TIMEOUT_SECONDS) -> Optional[str]:
    """None once `endpoint`'s readiness route answers 200 (or when the endpoint is not on this machine's loopback,
    such as an in-cluster name, which this machine may not reach); else what it last answered, after `timeout`."""
    if urllib.parse.urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost"):
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}{READY_PATH}", timeout=5):
                return None
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        if time.monotonic() > deadline:
            return last
        time.sleep(0.5)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.stack_outputs", description=summary.__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True)
    args = parser.parse_args(argv)
    try:
        outputs = read_outputs(args.stack)
    except StackOutputsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(summary(outputs) or f"stack '{args.stack}' has no outputs yet: run `make up STACK={args.stack}`")
    endpoint = outputs.get("endpoint")
    if endpoint and (problem := unanswered(endpoint)):
        print(f"error: the update succeeded, but {endpoint}{READY_PATH} did not answer within {ANSWER_TIMEOUT_SECONDS:.0f} s "
              f"({problem}). See what runs: `docker ps` (docker target) or `kubectl get pods -n <namespace>`.",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
