"""A Docker Engine of the test's own: its own socket, data root, bridge and containerd, so that the test may
restart it without touching the machine's engine (and whatever else runs there). Root only, as `dockerd` is.

Its bridge is made here (`ip link`); iptables stay the machine engine's business (`--iptables=false`): published
ports go through docker-proxy, containers on one network reach each other over the bridge. Never `--bridge none`:
a dockerd started so deletes the `docker0` interface, which is the machine engine's default bridge.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest


class PrivateEngine:
    def __init__(self, name: str, subnet: str):
        self.name = name
        self.socket = f"/run/{name}-docker.sock"
        self.host = f"unix://{self.socket}"
        self.data_root = Path(f"/var/lib/{name}-docker")
        self.exec_root = Path(f"/run/{name}-docker")
        self.pidfile = Path(f"/run/{name}-docker.pid")
        self.bridge = f"{name[:8]}br0"
        self.subnet = subnet  # the bridge's address, e.g. 172.31.250.1/24
        self.log = Path(f"/tmp/{name}-dockerd.log")
        self.process: subprocess.Popen | None = None

    def docker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": self.host}, capture_output=True, **kwargs)

    def start(self) -> None:
        if os.geteuid() != 0 or shutil.which("dockerd") is None:
            pytest.fail("the engine-restart test runs a Docker Engine of its own: it needs root and `dockerd` "
                        "(toolchain/docker.sh installs it)", pytrace=False)
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode != 0:
            for command in (["ip", "link", "add", self.bridge, "type", "bridge"],
                            ["ip", "addr", "add", self.subnet, "dev", self.bridge], ["ip", "link", "set", self.bridge, "up"]):
                subprocess.run(command, check=True)
        log = self.log.open("a")
        self.process = subprocess.Popen(
            ["dockerd", "--data-root", str(self.data_root), "--exec-root", str(self.exec_root), "--pidfile", str(self.pidfile),
             "-H", self.host, "--bridge", self.bridge, "--iptables=false", "--ip6tables=false"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while self.docker("info").returncode != 0:
            assert self.process.poll() is None, f"the private dockerd exited; its log: {self.log}"
            assert time.monotonic() < deadline, f"the private dockerd did not answer within 60 s; its log: {self.log}"
            time.sleep(0.5)

    def stop(self) -> None:
        """As a service manager stops an engine: SIGTERM, and the engine stops its containers before it exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(120)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def load(self, images: list[str]) -> None:
        """Copies `images` from the machine's engine (`docker save | docker load`) unless this one has them."""
        for image in images:
            if self.docker("image", "inspect", image).returncode == 0:
                continue
            save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
            loaded = self.docker("load", stdin=save.stdout)
            assert save.wait() == 0 and loaded.returncode == 0, f"could not copy {image}: {loaded.stderr.decode()[-1000:]}"

    def remove(self) -> None:
        """Stops the engine and deletes everything it had."""
        self.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
