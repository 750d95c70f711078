"""The content-addressed model store: `<store>/<model_id>/`, written once, verified on every read.

An entry is built in a temporary directory inside the store and renamed into place, so a reader sees a
whole entry or none. Builders of one id take a file lock, so two processes produce one entry. An entry
whose files do not match its checksums.json is reported, moved aside to `<store>/.corrupt/` and
treated as absent: it is never served.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from filelock import FileLock
from pydantic import ValidationError

from model.config import TrainConfig
from model.report import TrainingReport
from model.user import UserCodeError, code_digest

PACKAGE = Path(__file__).resolve().parent
DEFAULT_STORE = PACKAGE.parent / ".modelship" / "store"
CHECKSUMS = "checksums.json"
REPORT = "report.json"

log = logging.getLogger(__name__)


class CorruptEntry(Exception):
    """A store entry whose contents do not match what was written."""


def source_digest(package: Path = PACKAGE) -> str:
    """sha256 over every `model/**/*.py` (sorted relative path + bytes): the training code's identity."""
    h = hashlib.sha256()
    for path in sorted(package.rglob("*.py"), key=lambda p: p.relative_to(package).as_posix()):
        h.update(path.relative_to(package).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def artifact_digest(path: Path) -> str:
    """sha256 over a pre-trained artifact: the file's bytes, or every file of a SavedModel directory."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(_sha256(path).encode())
    elif path.is_dir():
        for name in _files(path):
            h.update(name.encode() + b"\0" + _sha256(path / name).encode() + b"\0")
    else:
        raise UserCodeError(f"{path}: no such file or directory (artifact, relative to the training config's "
                            "directory); point artifact at a .keras file or a SavedModel directory")
    return h.hexdigest()


def user_digest(config: TrainConfig) -> str:
    """The user's part of the model: their builder's and loader's code, and a pre-trained artifact's bytes."""
    parts = [f"{key}={code_digest(ref, config.root)}" for key, ref in (("builder", config.builder),
                                                                         ("loader", config.data.loader)) if ref]
    if config.artifact is not None:
        parts.append(f"artifact={artifact_digest(config.resolve(config.artifact))}")
    return ",".join(parts)


def model_id(config: TrainConfig, data_fingerprint: str) -> str:
    """The model's identity (docs/contracts.md): training code + canonical config + data fingerprint + the
    user's code and artifact. Imports none of the user's code."""
    h = hashlib.sha256()
    for part in (source_digest(), config.canonical_json(), data_fingerprint, user_digest(config)):
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def write_checksums(directory: Path) -> None:
    files = {name: _sha256(directory / name) for name in _files(directory) if name != CHECKSUMS}
    (directory / CHECKSUMS).write_text(json.dumps({"files": files}, indent=2, sort_keys=True) + "\n")


class StoreEntry:
    """A verified entry: every file listed in checksums.json, nothing missing, nothing extra, nothing altered."""

    def __init__(self, path: Path, model_id: Optional[str] = None):
        self.path = path
        self._verify()
        try:
            self.report = TrainingReport.model_validate_json((path / REPORT).read_bytes())
        except ValidationError as e:
            raise CorruptEntry(f"{path / REPORT} does not validate as a report: {e}") from None
        expected = model_id or path.name
        if self.report.model_id != expected:
            raise CorruptEntry(f"{path / REPORT} is for model {self.report.model_id}, not {expected}")

    def _verify(self) -> None:
        try:
            expected = json.loads((self.path / CHECKSUMS).read_text())["files"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError) as e:
            raise CorruptEntry(f"{self.path / CHECKSUMS} is missing or unreadable ({e.__class__.__name__})") from None
        present = set(_files(self.path)) - {CHECKSUMS}
        if present != set(expected):
            missing, extra = sorted(set(expected) - present), sorted(present - set(expected))
            raise CorruptEntry(f"{self.path}: files missing {missing}, unexpected {extra}")
        for name, digest in expected.items():
            try:
                actual = _sha256(self.path / name)
            except OSError as e:
                raise CorruptEntry(f"{self.path / name} is unreadable ({e})") from None
            if actual != digest:
                raise CorruptEntry(f"{self.path / name} has sha256 {actual[:16]}..., checksums.json says {digest[:16]}...")

    @property
    def model_id(self) -> str:
        return self.report.model_id

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"StoreEntry({self.path})"


class Store:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root if root is not None else os.environ.get("MODELSHIP_STORE", DEFAULT_STORE)).resolve()

    def path(self, model_id: str) -> Path:
        return self.root / model_id

    def get(self, model_id: str) -> Optional[StoreEntry]:
        """The verified entry, or None when absent; a corrupt entry is reported, set aside and counts as absent."""
        path = self.path(model_id)
        if not path.is_dir():
            return None
        try:
            return StoreEntry(path)
        except CorruptEntry:
            with self._lock(model_id):
                return self._get_locked(model_id)

    def _get_locked(self, model_id: str) -> Optional[StoreEntry]:
        # Checked again under the lock: another process may have set the entry aside and rebuilt it.
        path = self.path(model_id)
        if not path.is_dir():
            return None
        try:
            return StoreEntry(path)
        except CorruptEntry as e:
            self._set_aside(path, str(e))
            return None

    def _lock(self, model_id: str) -> FileLock:
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.root / ".locks" / f"{model_id}.lock"))

    def resolve(self, prefix: str) -> Path:
        """The entry directory a unique id prefix names (for people typing ids)."""
        matches = [p for p in self.root.glob(f"{prefix}*") if p.is_dir() and len(p.name) == 64] if prefix else []
        if len(matches) != 1:
            found = "no entry" if not matches else f"{len(matches)} entries"
            raise KeyError(f"{found} in {self.root} match model id {prefix!r}")
        return matches[0]

    def put(self, model_id: str, write: Callable[[Path], None]) -> StoreEntry:
        """The entry for `model_id`, written by `write(tmp_dir)` unless it exists; one writer per id at a time."""
        entry = self.get(model_id)
        if entry is not None:
            return entry
        with self._lock(model_id):
            entry = self._get_locked(model_id)
            if entry is not None:
                return entry
            (self.root / ".tmp").mkdir(parents=True, exist_ok=True)
            # Under this id's lock, any build directory of the id belongs to a builder that died mid-way.
            for stale in (self.root / ".tmp").glob(f"{model_id}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(prefix=f"{model_id}-", dir=self.root / ".tmp"))
            try:
                write(tmp)
                write_checksums(tmp)
                StoreEntry(tmp, model_id)  # a build that wrote a broken entry fails here, not at the next read
                os.rename(tmp, self.path(model_id))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return StoreEntry(self.path(model_id))

    def _set_aside(self, path: Path, reason: str) -> None:
        quarantine = self.root / ".corrupt"
        quarantine.mkdir(parents=True, exist_ok=True)
        target = quarantine / f"{path.name}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        try:
            os.rename(path, target)
            where = f"moved to {target}"
        except OSError:
            where = "left in place (another process may have moved it)"
        log.warning("corrupt store entry %s (%s); %s; it will be rebuilt, never served", path.name, reason, where)
