"""Runs a GitHub Actions workflow's `run:` steps here, in order, with the same commands (no `act`, no runner).

`python toolchain/run_workflow.py .github/workflows/pr.yml --job preview --matrix stack=dev [--input from=dev]`

`uses:` steps are the hosted runner's set-up (checkout, Python, the Pulumi CLI) or its reporting (PR
comments, PRs); here bootstrap provides the first kind, so each is listed as not run, never silently dropped.
`${{ ... }}` expressions in `run:` and a step's `env:` are substituted from --matrix, --input and --var; an
unknown one is an error, so a workflow that grows a new expression fails this check instead of running a
half-substituted command. As on a runner, each job gets `RUNNER_TEMP`, `GITHUB_ENV` (what a step appends
there is set for the steps after it) and `GITHUB_OUTPUT` (printed as `--- output NAME=VALUE` at the end).
The workflow's and jobs' own `env:` (a hosted backend's settings) are not applied: `toolchain/env.sh` sets
the local ones.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text())
    if not isinstance(workflow, dict) or not isinstance(workflow.get("jobs"), dict):
        raise SystemExit(f"error: {path}: not a workflow (no `jobs:` mapping)")
    return workflow


def substitute(text: str, context: dict[str, str], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            raise SystemExit(f"error: {where}: no value for ${{{{ {name} }}}}; pass it with --matrix/--input/--var")
        return context[name]

    return EXPRESSION.sub(value, text)


class Step(NamedTuple):
    name: str
    command: str | None  # None for a `uses:` step
    env: dict[str, str]


def plan(workflow: dict[str, Any], job: str, context: dict[str, str]) -> list[Step]:
    """Every step of JOB, expressions substituted."""
    if job not in workflow["jobs"]:
        raise SystemExit(f"error: no job '{job}' (jobs: {', '.join(workflow['jobs'])})")
    steps = []
    for i, step in enumerate(workflow["jobs"][job].get("steps", [])):
        name = step.get("name") or step.get("uses") or f"step {i + 1}"
        where = f"job {job}, step '{name}'"
        command = substitute(step["run"], context, where) if "run" in step else None
        env = {k: substitute(str(v), context, where) for k, v in (step.get("env") or {}).items()}
        steps.append(Step(name, command, env))
    return steps


def _assignments(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run(steps: list[Step], cwd: Path, env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory(prefix="runner-") as temp:
        files = {name: Path(temp) / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
        for path in files.values():
            path.touch()
        job_env = {**env, "RUNNER_TEMP": temp, **{name: str(path) for name, path in files.items()}}
        for step in steps:
            if step.command is None:
                print(f"--- {step.name}: a hosted-runner action, not run here", file=sys.stderr)
                continue
            print(f"--- {step.name}: {step.command}", file=sys.stderr)
            step_env = {**job_env, **_assignments(files["GITHUB_ENV"]), **step.env}
            code = subprocess.run(["bash", "-eo", "pipefail", "-c", step.command], cwd=cwd, env=step_env).returncode
            if code:
                print(f"--- {step.name} failed with exit code {code}", file=sys.stderr)
                return code
        for name, value in _assignments(files["GITHUB_OUTPUT"]).items():
            print(f"--- output {name}={value}", file=sys.stderr)
    return 0


def _pairs(items: list[str], prefix: str) -> dict[str, str]:
    pairs = dict(item.split("=", 1) for item in items)
    return {f"{prefix}{k}": v for k, v in pairs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workflow", type=Path)
    parser.add_argument("--job", required=True)
    parser.add_argument("--matrix", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--input", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--var", action="append", default=[], metavar="EXPR=VALUE", help="any other expression")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the checkout to run in")
    args = parser.parse_args(argv)
    context = {**_pairs(args.matrix, "matrix."), **_pairs(args.input, "inputs."), **_pairs(args.var, "")}
    steps = plan(load(args.workflow), args.job, context)
    return run(steps, args.cwd, dict(os.environ))


if __name__ == "__main__":
    sys.exit(main())
