"""Start only from a sound store entry; SIGTERM lets in-flight requests finish."""
from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from app_server import ROOT, Server


def test_sigterm_finishes_the_request_in_flight(entry):
    running = Server(entry)
    body = json.dumps({"instances": [[2.0] * 64]}).encode()
    with socket.create_connection(("127.0.0.1", running.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/models/model:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10]))
        time.sleep(0.3)  # the request is now in flight, waiting for the rest of its body
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert running.process.poll() is None, "server exited with a request in flight"
        sock.sendall(body[10:])
        answer = b""
        while b"]]}" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'"predictions"' in answer
    # uvicorn re-raises the signal it handled once shutdown is complete: the exit reads "terminated by SIGTERM".
    assert running.process.wait(15) in (0, -signal.SIGTERM)
    log = running.output()
    assert "Application shutdown complete" in log
    running.stop()


def test_new_connections_are_refused_once_shutdown_began(entry):
    running = Server(entry)
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(15) in (0, -signal.SIGTERM)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", running.port), timeout=2).close()
    running.stop()


def _start_fails(entry_dir, *words: str) -> None:
    result = subprocess.run([sys.executable, "-m", "app", "--model", str(entry_dir), "--port", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    for word in words:
        assert word in result.stderr, result.stderr


def test_altered_model_never_starts(entry, tmp_path):
    altered = tmp_path / "entry"
    shutil.copytree(entry, altered)
    with open(altered / "model.tflite", "ab") as f:
        f.write(b"\0")
    _start_fails(altered, "model.tflite has sha256", "checksums.json says")


def test_missing_report_never_starts(tmp_path):
    _start_fails(tmp_path, "report.json is missing", "python -m model train")


def test_bad_setting_is_named(entry):
    result = subprocess.run([sys.executable, "-m", "app", "--model", str(entry)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "MAX_BATCH": "zero"})
    assert result.returncode != 0 and "MAX_BATCH='zero'" in result.stderr, result.stderr


@pytest.mark.parametrize("change,words", [
    ({"input": {"name": "features", "dtype": "float32", "shape": [8, 8]}},
     ["model.tflite does not match report.json", "input shape [64] (report.json signature: [8, 8])"]),
    ({"input": {"name": "features", "dtype": "int32", "shape": [64]}},
     ["input dtype float32 (report.json signature: int32)"]),
    ({"output": {"name": "output_0", "dtype": "float32", "shape": [9]}},
     ["a multiclass model outputs shape [10], signature.output.shape is [9]"]),
], ids=["input-shape", "input-dtype", "output-shape"])
def test_signature_that_misdescribes_the_model_never_starts(entry, tmp_path, change, words):
    """report.json is what clients are told (metadata, /openapi.json): it must be what the TFLite file takes."""
    changed = tmp_path / "entry"
    shutil.copytree(entry, changed)
    report = json.loads((changed / "report.json").read_text())
    report["signature"].update(change)
    (changed / "report.json").write_text(json.dumps(report))
    _start_fails(changed, *words)
