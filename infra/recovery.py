"""Recovering a stack from an interrupted update, before the next `pulumi up`, `destroy` or `preview` runs.

A `pulumi up` killed mid-way (SIGKILL, a closed laptop, an OOM kill) leaves four things behind, and the first,
third and fourth each make every later update fail until someone repairs it by hand:

1. **its lock** in a local file backend: the next update refuses ("the stack is currently locked");
2. **its plugins** (language host, program, providers), which outlive their engine: a provider mid-`create`
   still finishes it, making an object the state never hears of;
3. **pending operations** in the state (resources it was creating, replacing or deleting): the engine only warns
   about them, and a pending create stays unknown to the state;
4. **Docker objects the state does not know**: what the killed run created before it could record the ids. They
   hold their host ports and names, so the next update's create fails ("port is already allocated").

`recover()` resolves each with what owns it: a lock is released only when its process is gone from this host
(a live one, or another host's, is left alone and the update refuses as before); plugins whose engine no longer
answers are stopped; pending operations go through the CLI's own `pulumi refresh --clear-pending-creates`, which
reads every resource back from its provider; and Docker objects carrying the stack's label
`ai.modelship.stack=<project>/<stack>` whose ids the state does not hold are removed, under the stack's lock, so
that the update recreates them and the state matches what runs. It relies on the label and the state only, never
on a provider's internals, so it serves any provider that labels what it makes (docs/contracts.md, *Recovery*).
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field

from infra import ROOT

# What every Docker object a stack makes carries, `<project>/<stack>` (infra/docker_engine.py labels with it).
STACK_LABEL = "ai.modelship.stack"
# A process that started later than this after the lock was written cannot be the one that wrote it (its pid was
# reused). Generous: the clock of the process table and the lock's clock are the same machine's.
_PID_REUSE_SLACK = timedelta(seconds=2)


Say = Callable[[str], None]


class RecoveryError(RuntimeError):
    pass


class LockHeld(RecoveryError):
    """A lock that is not recovery's to release: its update runs (here or on another host)."""


# --- 1. locks -------------------------------------------------------------------------------------


class Lock(BaseModel):
    """A lock file of Pulumi's file backend (`.pulumi/locks/<org>/<project>/<stack>/<uuid>.json`)."""

    model_config = ConfigDict(frozen=True)

    pid: int
    username: str
    hostname: str
    timestamp: datetime
    path: Path = Field(exclude=True)

    @property
    def owner(self) -> str:
        taken = self.timestamp.astimezone(timezone.utc)
        return f"{self.username}@{self.hostname} (pid {self.pid}, taken {taken:%Y-%m-%d %H:%M:%S} UTC)"


def lock_dir(backend_url: str, project: str, stack: str) -> Optional[Path]:
    """The stack's lock directory in a local file backend; None for other backends (they lock on their own)."""
    if not backend_url.startswith("file://"):
        return None
    return Path(backend_url.removeprefix("file://")) / ".pulumi" / "locks" / "organization" / project / stack


def read_locks(directory: Path) -> list[Lock]:
    locks = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            locks.append(Lock.model_validate({**json.loads(path.read_text()), "path": path}))
        except (OSError, ValueError) as err:
            raise RecoveryError(f"cannot read the lock {path}: {err}; remove it by hand if no update runs") from None
    return locks


def _started(pid: int) -> Optional[datetime]:
    """When process `pid` started (Linux /proc), or None where the process table does not say."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    ticks = int(fields[19])  # field 22 of stat, counted after the ")" closing the command name
    return datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), tz=timezone.utc)


def stale_reason(lock: Lock, hostname: str) -> Optional[str]:
    """Why `lock` is safe to release (its process is gone from this host), or None when it must stay."""
    if lock.hostname != hostname:
        return None
    try:
        os.kill(lock.pid, 0)
    except ProcessLookupError:
        return f"no process {lock.pid} runs on this host, so no update holds it"
    except PermissionError:
        pass  # another user's live process
    started = _started(lock.pid)
    if started is not None and started > lock.timestamp + _PID_REUSE_SLACK:
        return (f"process {lock.pid} started at {started:%H:%M:%S}, after the lock was taken: the pid was reused, "
                "the update that took the lock is gone")
    return None


def release_stale_locks(directory: Path, stack: str, hostname: str, say: Say) -> None:
    """Releases the stack's locks whose process is gone (one message each); raises when a lock must stay."""
    for lock in read_locks(directory):
        reason = stale_reason(lock, hostname)
        if reason is None:
            where = ("is alive" if lock.hostname == hostname
                     else "runs on another host, whose processes this one cannot see")
            raise LockHeld(
                f"stack {stack!r} is locked by {lock.owner}, whose process {where}: left alone. Wait for that update "
                f"to end; if you know it is gone, `pulumi cancel --stack {stack}` releases its lock."
            )
        lock.path.unlink(missing_ok=True)
        say(f"released the stale lock of {lock.owner} on stack {stack!r}: {reason}.")


@contextmanager
def holding_lock(directory: Optional[Path], stack: str, hostname: str) -> Iterator[None]:
    """The stack's lock, taken as Pulumi takes it (write, then check no other lock appeared), so that no update
    creates objects while orphans are told apart from them. A no-op for backends without lock files."""
    if directory is None:
        yield
        return
    directory.mkdir(parents=True, exist_ok=True)
    mine = directory / f"{uuid.uuid4()}.json"
    content = {"pid": os.getpid(), "username": getpass.getuser(), "hostname": hostname,
               "timestamp": datetime.now(timezone.utc).isoformat()}
    mine.write_text(json.dumps(content))
    try:
        others = [lock for lock in read_locks(directory) if lock.path != mine]
        if others:
            raise LockHeld(f"stack {stack!r} was locked meanwhile by {others[0].owner}: left alone, no orphan "
                           "removed; that update runs now, and the next `make up` recovers what is left")
        yield
    finally:
        mine.unlink(missing_ok=True)


# --- 2. the killed run's plugins ------------------------------------------------------------------

_ENGINE_ADDRESS = re.compile(r"^(127\.0\.0\.1|localhost):(\d+)$")
_PLUGIN = re.compile(r"(^|/)(pulumi-(resource|language|analyzer)-[\w.-]+|resource-[\w.-]+-v[\d.]+/[\w.-]+)$")
PLUGIN_STOP_S = 10


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _plugin_groups(cwd: Path) -> dict[int, tuple[int, list[str]]]:
    """Process group -> (engine port, commands) of the Pulumi plugins running in `cwd`: the language host, the
    program, provider plugins (the engine starts each in a process group of its own, with its address as argument)."""
    groups: dict[int, tuple[int, list[str]]] = {}
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
            if Path(os.readlink(proc / "cwd")) != cwd.resolve():
                continue
            pgid = os.getpgid(int(proc.name))
        except (OSError, ProcessLookupError):
            continue
        ports = [int(m.group(2)) for arg in argv if (m := _ENGINE_ADDRESS.match(arg))]
        if ports and (any(_PLUGIN.search(arg) for arg in argv) or "pulumi.dynamic" in argv):
            groups.setdefault(pgid, (ports[0], []))[1].append(" ".join(argv).strip()[:100])
    return groups


def stop_orphaned_plugins(cwd: Path, say: Say) -> None:
    """Stops the plugins whose engine is gone. A killed `pulumi` leaves them running: a provider mid-`create`
    still finishes it, making an object the state never hears of (after orphans were looked for), and the
    program may still be training. With their engine gone they have nobody to answer to."""
    if not Path("/proc").is_dir():
        return  # no process table to read (macOS): a lingering create is then found by the next make up
    for pgid, (port, commands) in _plugin_groups(cwd).items():
        if _listening(port) or pgid == os.getpgid(0):
            continue
        try:
            os.killpg(pgid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            continue
        deadline = time.monotonic() + PLUGIN_STOP_S
        while time.monotonic() < deadline and _group_alive(pgid):
            time.sleep(0.2)
        if _group_alive(pgid):
            os.killpg(pgid, signal.SIGKILL)
        say(f"stopped the plugin process group {pgid} of a killed update ({'; '.join(commands)}): its engine at "
            f"127.0.0.1:{port} is gone, so it has nobody to report to (a create it went on with would make an object "
            "the state never hears of).")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


# --- 3. the state -------------------------------------------------------------------------------


class PendingOperation(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str
    urn: str


class StackState(BaseModel):
    """What recovery needs of `pulumi stack export`: the ids of what the state holds as existing, and the pending
    operations. A resource marked `pendingReplacement` was deleted by a delete-before-replace whose replacement
    never came: the engine will not delete it again, so an object still under its id is not the state's."""

    ids: frozenset[str]
    pending: list[PendingOperation]


def _pulumi(stack: str, cwd: Path, *args: str, capture: bool = True) -> str:
    done = subprocess.run(["pulumi", *args, "--stack", stack, "--non-interactive"], cwd=cwd, text=True,
                          stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout or "").strip()[-2000:] if capture else "(its output is above)"
        raise RecoveryError(f"`pulumi {' '.join(args)} --stack {stack}` failed ({done.returncode}): {detail}")
    return done.stdout or ""


def read_state(stack: str, cwd: Path) -> StackState:
    deployment = json.loads(_pulumi(stack, cwd, "stack", "export")).get("deployment") or {}
    resources = deployment.get("resources") or []
    pending = deployment.get("pending_operations") or []
    ids = {r["id"] for r in resources if r.get("id") and not r.get("pendingReplacement")}
    ids |= {p["resource"]["id"] for p in pending if p["resource"].get("id")}
    return StackState(
        ids=frozenset(ids),
        pending=[PendingOperation(type=p["type"], urn=p["resource"]["urn"]) for p in pending],
    )


def resolve_pending(stack: str, cwd: Path, pending: list[PendingOperation], say: Say) -> None:
    """Reads every resource back from its provider and drops the pending operations (a pending create made
    nothing the state can name; what it made, if anything, is an orphan for the next step)."""
    listed = ", ".join(f"{p.type} {p.urn.rsplit('::', 1)[-1]}" for p in pending)
    say(f"the interrupted update left {len(pending)} pending operation(s) ({listed}); "
        "`pulumi refresh --clear-pending-creates` reads the stack back from its providers")
    _pulumi(stack, cwd, "refresh", "--yes", "--skip-preview", "--clear-pending-creates", "--suppress-outputs",
            capture=False)
    say(f"resolved {len(pending)} pending operation(s) by a refresh: the state now holds what exists.")


# --- 4. orphans -----------------------------------------------------------------------------------


def remove_orphans(owner: str, known_ids: frozenset[str], say: Say) -> None:
    """Removes the Docker containers, networks and volumes labelled `ai.modelship.stack=<owner>` whose ids the
    state does not hold (containers first: they hold the networks, volumes and host ports)."""
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except docker.errors.DockerException:
        return  # no Docker here: nothing of a Docker target to recover (a docker stack's `up` says so itself)
    selector = {"label": f"{STACK_LABEL}={owner}"}
    for container in client.containers.list(all=True, filters=selector):
        if container.id in known_ids:
            continue
        ports = sorted(f"{b['HostIp']}:{b['HostPort']}" for bs in (container.ports or {}).values() if bs for b in bs)
        held = f", holding {', '.join(ports)}" if ports else ""
        container.remove(force=True, v=True)
        say(f"removed container {container.name} ({container.short_id}, {container.status}{held}): it "
            f"carries {STACK_LABEL}={owner} but the stack's state does not hold it (unknown, or deleted pending "
            "its replacement).")
    for network in client.networks.list(filters=selector):
        if network.id not in known_ids:
            network.remove()
            say(f"removed network {network.name} ({network.short_id}): labelled for {owner}, unknown to the state.")
    for volume in client.volumes.list(filters=selector):
        if volume.id not in known_ids:
            volume.remove(force=True)
            say(f"removed volume {volume.name}: labelled for {owner}, unknown to the state.")


# --- all of it ------------------------------------------------------------------------------------


def project_name(cwd: Path) -> str:
    return yaml.safe_load((cwd / "Pulumi.yaml").read_text())["name"]


def recover(stack: str, cwd: Path = ROOT, locks_only: bool = False, say: Say = lambda _: None) -> None:
    """Makes `stack` ready for its next update, calling `say` once per thing done (never when nothing was
    interrupted). Raises LockHeld when a lock must stay (its update runs), RecoveryError when a step fails."""
    backend = os.environ.get("PULUMI_BACKEND_URL", "")
    project = project_name(cwd)
    hostname = socket.gethostname()
    directory = lock_dir(backend, project, stack)
    if directory is not None:
        release_stale_locks(directory, stack, hostname, say)
    if locks_only:
        return
    stop_orphaned_plugins(cwd, say)
    state = read_state(stack, cwd)
    if state.pending:
        resolve_pending(stack, cwd, state.pending, say)
    with holding_lock(directory, stack, hostname):
        state = read_state(stack, cwd)
        remove_orphans(f"{project}/{stack}", state.ids, say)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Recovers a stack from an interrupted update (make up, destroy, preview).")
    parser.add_argument("--stack", required=True)
    parser.add_argument("--locks-only", action="store_true", help="only release stale locks (a preview changes nothing)")
    args = parser.parse_args(argv)
    try:
        recover(args.stack, Path.cwd(), args.locks_only, say=lambda message: print(f"recovery: {message}", flush=True))
    except LockHeld as err:
        # The update's to refuse: the CLI says so in its own words and exits non-zero.
        print(f"recovery: {err}", file=sys.stderr)
        return 0
    except RecoveryError as err:
        print(f"recovery: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
