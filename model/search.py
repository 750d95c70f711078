"""The gated entry, with the seed's "otherwise optimise" branch as a bounded search.

The config file's `search:` list holds overrides tried in order after the base config fails the gate; the
first passing one wins. Every attempt is trained into the store (and so recorded there), and listed in
the result's `attempts`. When none passes, the last attempt's failing result is returned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from model.pipeline import trained_entry
from model.config import TrainConfig, load, merge, validate
from model.gate import Attempt, GateResult, Thresholds, judge
from model.store import Store, StoreEntry


def gated_entry(
    config: Path | str | Mapping[str, Any] | TrainConfig | None = None,
    overrides: Optional[Mapping[str, Any]] = None,
    thresholds: Thresholds | Mapping[str, Any] | None = None,
    store_dir: Path | str | None = None,
    progress: bool = False,
) -> tuple[StoreEntry, GateResult]:
    """The verified store entry the gate lets through (or the last one tried) and its gate result.

    `config` is a YAML/JSON file, a mapping or a TrainConfig (None: the defaults); `overrides` apply on top
    (dotted keys allowed: `{"data.seed": 1}`). A store hit answers without importing TensorFlow.
    """
    loaded = load(config, overrides)
    limits = thresholds if isinstance(thresholds, Thresholds) else Thresholds.model_validate(dict(thresholds or {}))
    store = Store(store_dir)
    base = loaded.train.model_dump(mode="json")
    attempts: list[Attempt] = []
    for step in [{}, *loaded.search]:
        train = validate(merge(base, step), f"search step {step}", loaded.train.root) if step else loaded.train
        entry = trained_entry(train, store, progress)
        result = judge(entry, limits)
        attempts.append(Attempt(model_id=result.model_id, overrides=step, passed=result.passed, summary=result.summary))
        if result.passed:
            break
    return entry, result.model_copy(update={"attempts": attempts})
