"""infra/recovery.py's lock rule on real lock files and real processes: a lock whose process is gone from this
host is released with a message naming it; a live one, or another host's, is left alone (the update refuses).
The whole recovery on the real engine: tests/infra/test_interrupted_up.py."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from infra import recovery
from tests.infra.engine import ROOT

STACK = "recover-locks"


def write_lock(backend: Path, pid: int, hostname: str, taken: datetime) -> Path:
    directory = recovery.lock_dir(f"file://{backend}", "modelship", STACK)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "0b8e5d8e-1c1f-4a51-9a53-4f4b4c1e2d3a.json"
    # What Pulumi's file backend writes (pkg/backend/diy/lock.go), nanoseconds and all.
    path.write_text(json.dumps({"pid": pid, "username": "someone", "hostname": hostname,
                                "timestamp": taken.strftime("%Y-%m-%dT%H:%M:%S.%f123Z")}))
    return path


@pytest.fixture
def backend(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    return tmp_path


def finished_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_a_lock_whose_process_is_gone_is_released_naming_whose_and_why(backend):
    pid = finished_pid()
    lock = write_lock(backend, pid, socket.gethostname(), datetime.now(timezone.utc))
    messages: list[str] = []
    recovery.recover(STACK, ROOT, locks_only=True, say=messages.append)
    assert not lock.exists()
    assert len(messages) == 1 and f"pid {pid}" in messages[0] and "someone@" in messages[0], messages
    assert f"no process {pid} runs on this host" in messages[0]


def test_a_live_lock_is_left_alone(backend):
    with subprocess.Popen(["sleep", "60"]) as live:
        try:
            # Taken just after the process started, as an update takes its lock.
            lock = write_lock(backend, live.pid, socket.gethostname(), datetime.now(timezone.utc) + timedelta(seconds=1))
            with pytest.raises(recovery.LockHeld, match=f"pid {live.pid}.*is alive.*left alone"):
                recovery.recover(STACK, ROOT, locks_only=True)
            assert lock.exists()
        finally:
            live.kill()


def test_a_reused_pid_does_not_keep_a_lock(backend):
    # This process started after the lock was taken an hour ago: it cannot be the one that took it.
    lock = write_lock(backend, os.getpid(), socket.gethostname(), datetime.now(timezone.utc) - timedelta(hours=1))
    messages: list[str] = []
    recovery.recover(STACK, ROOT, locks_only=True, say=messages.append)
    assert not lock.exists() and "the pid was reused" in messages[0], messages


def test_another_hosts_lock_is_left_alone(backend):
    lock = write_lock(backend, finished_pid(), "another-host", datetime.now(timezone.utc))
    with pytest.raises(recovery.LockHeld, match="another host.*left alone"):
        recovery.recover(STACK, ROOT, locks_only=True)
    assert lock.exists()


def test_the_cli_leaves_the_refusal_to_the_update(backend):
    """A held lock is not recovery's failure: it exits 0 with its message, and `pulumi up` refuses next."""
    lock = write_lock(backend, finished_pid(), "another-host", datetime.now(timezone.utc))
    done = subprocess.run([sys.executable, "-m", "infra.recovery", "--stack", STACK, "--locks-only"], cwd=ROOT,
                          capture_output=True, text=True, env={**os.environ})
    assert done.returncode == 0 and "left alone" in done.stderr, done.stderr
    assert lock.exists()
