"""The shipped default: the seed's model on digits passes the dev gate first time, and the later stacks' too."""
from __future__ import annotations

from pathlib import Path

import yaml

from model import gated_entry

CONFIGS = Path(__file__).resolve().parents[2] / "model" / "configs"
# Pulumi.staging.yaml / Pulumi.prod.yaml thresholds: a promoted model is re-checked against them.
PROD = {"accuracy": 0.95, "f1_macro": 0.95, "loss": 0.3}


def test_default_config_passes_without_search(store_root: Path) -> None:
    dev = yaml.safe_load((CONFIGS / "gate.yaml").read_text())
    entry_dir, result = gated_entry(CONFIGS / "digits.yaml", None, dev, store_root)
    assert result.passed and len(result.attempts) == 1, result.to_markdown()
    _, prod = gated_entry(CONFIGS / "digits.yaml", None, PROD, store_root)
    assert prod.passed and prod.model_id == result.model_id, prod.to_markdown()
    assert (Path(entry_dir) / "model_int8.tflite").is_file()  # the default ships the quantised model too
