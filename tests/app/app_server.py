"""The real server in a subprocess, for the app tests (a module name of its own: several test dirs have a conftest)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def tflite_outputs(entry: Path, batch: np.ndarray) -> np.ndarray:
    """The served TFLite file run directly on `batch` (cast to its input dtype): what the server must answer."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(entry / "model.tflite"))
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], batch.astype(detail["dtype"]))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m app` in a subprocess, as a container runs it; `client` talks to it over loopback."""

    def __init__(self, entry: Path, env: Optional[dict[str, str]] = None, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"modelship-app-{self.port}.log", "w+")
        environ = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "PROMETHEUS_MULTIPROC_DIR")}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app", "--model", str(entry), "--host", "127.0.0.1", "--port", str(self.port), *args],
            cwd=ROOT, env={**environ, **(env or {})}, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.url, timeout=10)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode} before ready:\n{self.output()}")
            try:
                if self.client.get("/v2/health/ready").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> int:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode
