"""A Docker Engine of the test's own, in a network namespace of its own: its own socket, data root, containerd,
`docker0` and iptables, so that the test may restart it without touching the machine's engine (or whatever else
runs there). Root only, as `dockerd` is.

Its published ports are on the namespace's loopback: `get` asks them from inside. The CLI and the program talk
to it over its unix socket (DOCKER_HOST), which no namespace hides. It is entered with `nsenter --net` only:
`ip netns exec` would also remount /sys, hiding the cgroups dockerd needs.
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
    def __init__(self, name: str):
        self.name = name
        self.netns = Path(f"/run/netns/{name}")
        self.socket = f"/run/{name}-docker.sock"
        self.host = f"unix://{self.socket}"
        self.data_root = Path(f"/var/lib/{name}-docker")
        self.exec_root = Path(f"/run/{name}-docker")
        self.log = Path(f"/tmp/{name}-dockerd.log")
        self.process: subprocess.Popen | None = None

    def docker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": self.host}, capture_output=True, **kwargs)

    def get(self, url: str) -> int:
        """The HTTP status of GET `url` from inside the engine's namespace (0: no answer)."""
        probe = ("import sys, urllib.request\ntry: print(urllib.request.urlopen(sys.argv[1], timeout=3).status)\n"
                 "except Exception: print(0)")
        done = subprocess.run(["nsenter", f"--net={self.netns}", "python3", "-c", probe, url], capture_output=True, text=True)
        return int(done.stdout.strip() or 0)

    def start(self) -> None:
        if os.geteuid() != 0 or shutil.which("dockerd") is None or shutil.which("nsenter") is None:
            pytest.fail("the engine-restart test runs a Docker Engine of its own: it needs root, `dockerd` "
                        "(toolchain/docker.sh installs it) and `nsenter`", pytrace=False)
        if not self.netns.exists():
            subprocess.run(["ip", "netns", "add", self.name], check=True)
            subprocess.run(["ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up"], check=True)
        log = self.log.open("a")
        self.process = subprocess.Popen(
            ["nsenter", f"--net={self.netns}", "dockerd", "--data-root", str(self.data_root), "--exec-root",
             str(self.exec_root), "--pidfile", f"/run/{self.name}-docker.pid", "-H", self.host],
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
        """Stops the engine and deletes everything it had, its namespace too."""
        self.stop()
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
