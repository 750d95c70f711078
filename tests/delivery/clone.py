"""A user's fresh clone of this repository, and the environment of a new terminal to run it from."""
from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a dev stack publishes on this machine's loopback, as the committed Pulumi.dev.yaml and the defaults have it.
DEV_PORTS = {8080: "the dev model server", 5000: "the dev registry", 9090: "dev's Prometheus"}


def fresh_clone(base: Path) -> Path:
    """Clones the committed tree into `base/clone`, sharing what a user's clone would have built or trained
    already: the virtualenvs and the content-addressed model store (an entry is named by its content, so
    sharing it is safe). Its Pulumi state is its own."""
    clone = base / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    os.symlink(ROOT / "venv", clone / "venv")
    os.symlink(ROOT / "policy" / "venv", clone / "policy" / "venv")
    (clone / ".modelship").mkdir()
    os.symlink(ROOT / ".modelship" / "store", clone / ".modelship" / "store")
    for key, value in (("user.name", "modelship tests"), ("user.email", "tests@modelship.invalid")):
        subprocess.run(["git", "-C", str(clone), "config", key, value], check=True)
    return clone


def terminal_env() -> dict[str, str]:
    """This process's environment without its Pulumi settings, project root or kubeconfig (other tests'
    backends and passphrases): the clone's own toolchain/env.sh sets them, as on a new terminal or runner."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "MODELSHIP_ROOT", "KUBECONFIG"))}


def dev_ports_taken() -> str:
    """Why a dev stack can't come up here, or '' when its ports are free."""
    taken = []
    for port, what in DEV_PORTS.items():
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                taken.append(f"{port} ({what})")
    if not taken:
        return ""
    return (f"a dev stack publishes on ports in use here: {', '.join(taken)}. Is a dev stack of your own up? "
            "`make destroy STACK=dev` frees them.")


def destroy(clone: Path, env: dict[str, str], *stacks: str) -> None:
    """Clean-up after a test that may have failed half-way: `make destroy` of each stack, whatever state it is in."""
    for stack in stacks:
        proc = subprocess.run(["make", "destroy", f"STACK={stack}"], cwd=clone, env=env, capture_output=True)
        print(f"clean-up: make destroy STACK={stack} exited {proc.returncode}")
