"""A real registry on a loopback port (the image the dev stack runs, `modelship/registry:2`), and small images
with chosen labels pushed into it: what a promoted stack's preview reads back by digest."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REGISTRY_IMAGE = "modelship/registry:2"


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.fail(f"docker {' '.join(args[:4])} ... failed ({done.returncode}):\n{done.stderr[-2000:]}", pytrace=False)
    return done.stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_registry(port: int) -> Iterator[str]:
    """`localhost:<port>`, answering until the block ends; its storage goes with it."""
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            pytest.fail(f"port {port} is in use: the test registry needs it", pytrace=False)
    container = _docker("run", "-d", "--label", "ai.modelship.test=registry", "-p", f"127.0.0.1:{port}:5000", REGISTRY_IMAGE)
    server = f"localhost:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://{server}/v2/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the test registry never answered:\n{_docker('logs', container)}", pytrace=False)
                time.sleep(0.3)
        yield server
    finally:
        subprocess.run(["docker", "rm", "-fv", container], capture_output=True)


def push_labelled(server: str, name: str, labels: dict[str, str], workdir: Path) -> str:
    """Builds a one-file image carrying `labels`, pushes it, and returns `<server>/<name>:test@sha256:...`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (workdir / "marker").write_text(name)
    tag = f"{server}/{name}:test"
    _docker("build", "-q", "-t", tag, *[f"--label={k}={v}" for k, v in labels.items()], str(workdir))
    _docker("push", "-q", tag)
    (digest,) = [d.split("@", 1)[1] for d in json.loads(_docker("image", "inspect", "-f", "{{json .RepoDigests}}", tag))
                 if d.startswith(f"{server}/{name}@")]
    _docker("rmi", tag)
    return f"{tag}@{digest}"
