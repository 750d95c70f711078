"""`python -m model train|gate|card` as people and scripts run it: JSON on stdout, exit codes, clear errors."""
from __future__ import annotations

from pathlib import Path

from model_helpers import model_cli, stdout_json

from model import StoreEntry


def test_train_prints_the_report(quick_entry: StoreEntry, quick_config_file: Path, store_root: Path) -> None:
    proc = model_cli("train", "--config", str(quick_config_file), "--store", str(store_root))
    assert proc.returncode == 0, proc.stderr
    report = stdout_json(proc)
    assert report["model_id"] == quick_entry.model_id and report["metrics"]["tflite"]["accuracy"] > 0
    assert f"model {quick_entry.model_id} in {quick_entry.path}" in proc.stderr


def test_gate_pass_and_fail_exit_codes(tmp_path: Path, quick_entry: StoreEntry, quick_config_file: Path,
                                       store_root: Path) -> None:
    accuracy = quick_entry.report.metrics["tflite"].accuracy
    loose, strict = tmp_path / "loose.yaml", tmp_path / "strict.json"
    loose.write_text(f"accuracy: {accuracy}\nloss: 5\n")
    strict.write_text(f'{{"accuracy": {min(1.0, accuracy + 0.01)}}}')
    common = ("--config", str(quick_config_file), "--store", str(store_root))

    passed = model_cli("gate", *common, "--thresholds", str(loose))
    assert passed.returncode == 0, passed.stderr
    result = stdout_json(passed)
    assert result["passed"] and result["model_id"] == quick_entry.model_id
    assert [(c["metric"], c["op"], c["passed"]) for c in result["checks"]] == [("accuracy", ">=", True), ("loss", "<=", True)]

    # The quick config has no search list, so the failing answer comes from the stored entry alone.
    failed = model_cli("gate", *common, "--thresholds", str(strict))
    assert failed.returncode == 1, failed.stderr
    assert not stdout_json(failed)["passed"] and "gate failed" in failed.stderr


def test_card_prints_where_the_card_is(quick_entry: StoreEntry, store_root: Path) -> None:
    proc = model_cli("card", quick_entry.model_id[:10], "--store", str(store_root))
    assert proc.returncode == 0, proc.stderr
    card = Path(proc.stdout.strip())
    assert card == quick_entry.path / "model_card.md" and card.is_file()
    text = card.read_text()
    assert quick_entry.model_id in text and "![Confusion matrix](confusion_matrix.png)" in text
    assert "| tflite_int8 | model_int8.tflite |" in text
    for png in ("confusion_matrix.png", "training_curves.png"):
        assert (card.parent / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_card_of_an_unknown_model(store_root: Path) -> None:
    proc = model_cli("card", "0" * 12, "--store", str(store_root))
    assert proc.returncode == 2 and "no entry" in proc.stderr and "000000000000" in proc.stderr


def test_bad_config_names_the_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: many\noptimiser: adam\n")
    proc = model_cli("train", "--config", str(bad), "--store", str(tmp_path / "store"))
    assert proc.returncode == 2 and not proc.stdout
    assert str(bad) in proc.stderr and "epochs:" in proc.stderr and "optimiser: unknown key" in proc.stderr


def test_bad_override_and_bad_thresholds(tmp_path: Path, quick_config_file: Path) -> None:
    proc = model_cli("train", "--config", str(quick_config_file), "--set", "epochs", "--store", str(tmp_path))
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr
    thresholds = tmp_path / "t.yaml"
    thresholds.write_text("accuracy: 2\nf2: 0.5\n")
    proc = model_cli("gate", "--config", str(quick_config_file), "--thresholds", str(thresholds), "--store", str(tmp_path))
    assert proc.returncode == 2 and str(thresholds) in proc.stderr
    assert "accuracy:" in proc.stderr and "f2: unknown metric" in proc.stderr


def test_bad_data_names_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data.npz"
    data.write_bytes(b"")
    proc = model_cli("train", "--set", f"data.path={data}", "--store", str(tmp_path / "store"))
    assert proc.returncode == 2 and str(data) in proc.stderr and "npz" in proc.stderr
