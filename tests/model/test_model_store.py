"""The store: determinism, hits without TensorFlow, verified reads, corrupt entries rebuilt, one entry per id."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from model_helpers import ROOT, stdout_json, run_python

from model import Store, StoreEntry, TrainConfig, identify, trained_entry
from model.store import CHECKSUMS, CorruptEntry


def test_two_trainings_give_one_id_and_identical_metrics(tmp_path: Path, quick_config: TrainConfig,
                                                         quick_entry: StoreEntry) -> None:
    again = trained_entry(quick_config, Store(tmp_path))
    assert again.path != quick_entry.path and again.model_id == quick_entry.model_id
    assert again.report.metrics == quick_entry.report.metrics
    assert again.report.training.history == quick_entry.report.training.history
    assert again.report.reference == quick_entry.report.reference
    # Same weights: the float artifact is byte for byte the same.
    first, second = (json.loads((e.path / CHECKSUMS).read_text())["files"] for e in (quick_entry, again))
    assert first["model.tflite"] == second["model.tflite"]


def test_store_hit_answers_without_tensorflow(quick_entry: StoreEntry, quick_config_file: Path, store_root: Path) -> None:
    script = (
        "import json, sys, time\n"
        "started = time.perf_counter()\n"
        "from model import gated_entry\n"
        f"entry, result = gated_entry({str(quick_config_file)!r}, None, {{'accuracy': 0.5}}, {str(store_root)!r})\n"
        "elapsed = time.perf_counter() - started\n"
        "heavy = sorted(m for m in ('tensorflow', 'keras', 'sklearn', 'matplotlib') if m in sys.modules)\n"
        "print(json.dumps({'entry': str(entry.path), 'id': result.model_id, 'passed': result.passed, 'heavy': heavy, 's': elapsed}))\n"
    )
    proc = run_python("-c", script)
    assert proc.returncode == 0, proc.stderr
    out = stdout_json(proc)
    assert out["heavy"] == [], f"a store hit imported {out['heavy']}"
    assert out["id"] == quick_entry.model_id and Path(out["entry"]) == quick_entry.path and out["passed"]
    print(f"store hit gate answer in-process: {out['s']:.3f}s")


def test_entries_are_complete_and_verified(quick_entry: StoreEntry) -> None:
    files = json.loads((quick_entry.path / CHECKSUMS).read_text())["files"]
    for name in ("report.json", "model.tflite", "model_int8.tflite", "saved_model/saved_model.pb",
                 "model_card.md", "confusion_matrix.png", "training_curves.png"):
        assert name in files, f"{name} missing from checksums.json"
    report = json.loads((quick_entry.path / "report.json").read_text())
    for key in ("model_id", "created", "task", "config", "signature", "data", "artifacts", "serving_format",
                "metrics", "reference", "training", "durations", "versions"):
        assert key in report, f"report.json lacks {key} (docs/contracts.md)"
    assert report["task"] == "multiclass" and {m["task"] for m in report["metrics"].values()} == {"multiclass"}
    assert report["signature"]["input"] == {"name": "features", "dtype": "float32", "shape": [64]}
    assert report["signature"]["output"]["shape"] == [10] and report["data"]["n_features"] == 64
    assert report["artifacts"] == {"saved_model": "saved_model", "tflite": "model.tflite", "tflite_int8": "model_int8.tflite"}
    assert set(report["metrics"]) == {"saved_model", "tflite", "tflite_int8"}
    assert abs(sum(report["reference"]["class_distribution"]) - 1) < 1e-9
    # The ten most variable pixels (monitor.features' default), each with at most nine interior edges.
    features = report["reference"]["features"]
    assert len(features) == 10 and all(len(f["edges"]) <= 9 and len(f["ratios"]) == len(f["edges"]) + 1 for f in features)
    assert report["reference"]["prediction"] is None
    assert set(report["versions"]) >= {"tensorflow", "keras", "python"}
    assert set(report["training"]["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_the_server_accepts_the_entry(quick_entry: StoreEntry) -> None:
    """The contract's other side: app/'s own reader of a store entry."""
    from app.entry import ServedEntry

    served = ServedEntry(quick_entry.path)
    assert served.model_path == quick_entry.path / "model.tflite"
    assert served.metric("accuracy") == quick_entry.report.metrics["tflite"].accuracy


@pytest.mark.parametrize("damage", ["altered artifact", "missing file", "extra file", "bad report", "no checksums"])
def test_corrupt_entry_is_reported_and_never_served(tmp_path: Path, quick_entry: StoreEntry, damage: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path)
    entry = store.path(quick_entry.model_id)
    shutil.copytree(quick_entry.path, entry)
    assert store.get(quick_entry.model_id) is not None
    if damage == "altered artifact":
        blob = bytearray((entry / "model.tflite").read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        (entry / "model.tflite").write_bytes(bytes(blob))
    elif damage == "missing file":
        (entry / "training_curves.png").unlink()
    elif damage == "extra file":
        (entry / "saved_model" / "variables" / "planted").write_bytes(b"x")
    elif damage == "bad report":
        report = entry / "report.json"
        report.write_text(report.read_text().replace('"serving_format"', '"servingFormat"'))
        files = json.loads((entry / CHECKSUMS).read_text())
        files["files"]["report.json"] = hashlib.sha256(report.read_bytes()).hexdigest()
        (entry / CHECKSUMS).write_text(json.dumps(files))
    else:
        (entry / CHECKSUMS).unlink()

    with caplog.at_level(logging.WARNING, logger="model.store"):
        assert store.get(quick_entry.model_id) is None
    assert not entry.exists(), "a corrupt entry must leave the served path"
    assert [p.name.split("-")[0] for p in (tmp_path / ".corrupt").iterdir()] == [quick_entry.model_id]
    assert f"corrupt store entry {quick_entry.model_id}" in caplog.text and "rebuilt, never served" in caplog.text


def test_corrupt_entry_is_rebuilt(tmp_path: Path, quick_config: TrainConfig, quick_entry: StoreEntry,
                                  caplog: pytest.LogCaptureFixture) -> None:
    store = Store(tmp_path)
    entry = store.path(quick_entry.model_id)
    shutil.copytree(quick_entry.path, entry)
    (entry / "model.tflite").write_bytes(b"not the model the gate measured")
    with caplog.at_level(logging.WARNING, logger="model.store"):
        rebuilt = trained_entry(quick_config, store)
    assert f"{entry / 'model.tflite'} has sha256" in caplog.text
    assert rebuilt.path == entry and rebuilt.report.created > quick_entry.report.created
    assert (entry / "model.tflite").read_bytes() == (quick_entry.path / "model.tflite").read_bytes()
    assert rebuilt.report.metrics == quick_entry.report.metrics


def test_a_failed_build_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)

    def broken(directory: Path) -> None:
        (directory / "model.tflite").write_bytes(b"half")
        raise RuntimeError("training crashed")

    with pytest.raises(RuntimeError, match="training crashed"):
        store.put("b" * 64, broken)
    assert not store.path("b" * 64).exists() and list((tmp_path / ".tmp").iterdir()) == []


def test_a_build_that_writes_a_broken_entry_is_not_stored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(CorruptEntry, match="report.json does not validate"):
        store.put("d" * 64, lambda directory: (directory / "report.json").write_text("{}"))
    assert not store.path("d" * 64).exists() and list((tmp_path / ".tmp").iterdir()) == []


def test_a_dead_builders_leftovers_are_cleared(tmp_path: Path, quick_entry: StoreEntry) -> None:
    store = Store(tmp_path)
    leftover = tmp_path / ".tmp" / f"{quick_entry.model_id}-killed"
    leftover.mkdir(parents=True)
    (leftover / "model.tflite").write_bytes(b"half")

    def copy(directory: Path) -> None:
        shutil.copytree(quick_entry.path, directory, dirs_exist_ok=True, ignore=shutil.ignore_patterns(CHECKSUMS))

    entry = store.put(quick_entry.model_id, copy)
    assert entry.report == quick_entry.report
    assert not leftover.exists() and list((tmp_path / ".tmp").iterdir()) == []


def test_concurrent_training_of_one_id_makes_one_entry(tmp_path: Path, quick_config_file: Path,
                                                       quick_entry: StoreEntry) -> None:
    store = tmp_path / "store"
    command = [sys.executable, "-m", "model", "train", "--config", str(quick_config_file), "--store", str(store), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    reports = [json.loads(out) for out, _ in outputs]
    assert reports[0]["model_id"] == reports[1]["model_id"] == quick_entry.model_id
    # One process trained; the other waited on the lock and read the same entry.
    assert reports[0]["created"] == reports[1]["created"]
    assert [p.name for p in store.iterdir() if not p.name.startswith(".")] == [quick_entry.model_id]
    assert list((store / ".tmp").iterdir()) == []
    # And a third process, on another day, trains exactly what this one did.
    assert reports[0]["metrics"] == json.loads(quick_entry.report.model_dump_json())["metrics"]


def test_identify_needs_no_training(quick_config: TrainConfig, quick_entry: StoreEntry) -> None:
    model_id, data = identify(quick_config)
    assert model_id == quick_entry.model_id and data.fingerprint == quick_entry.report.data.fingerprint
