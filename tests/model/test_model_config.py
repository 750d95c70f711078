"""Training config files (YAML and JSON), overrides, and errors that name every bad key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.config import TrainConfigError, TrainConfig, load
from model.store import model_id

DEFAULT_FILE = Path(__file__).resolve().parents[2] / "model" / "configs" / "digits.yaml"


def test_default_file_is_the_seed_model() -> None:
    loaded = load(DEFAULT_FILE)
    assert loaded.train.hidden_layers == [128] and loaded.train.activation == "relu"
    assert loaded.search, "the default file carries a search list for the 'otherwise optimise' branch"


def test_yaml_and_json_load_alike(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("epochs: 7\ndata:\n  seed: 3\n")
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 7, "data": {"seed": 3}}))
    a, b = load(tmp_path / "c.yaml").train, load(tmp_path / "c.json").train
    assert a == b and a.epochs == 7 and a.data.seed == 3 and a.data.name == "digits"


def test_every_bad_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("epoch: 5\nlearning_rate: -1\ndata:\n  seed: x\n  nmae: digits\nhidden_layers: [64, 0]\n")
    with pytest.raises(TrainConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message
    for key in ("epoch: unknown key", "learning_rate:", "data.seed:", "data.nmae: unknown key", "hidden_layers.1:"):
        assert key in message, f"{key!r} not in {message}"


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- epochs\n")
    with pytest.raises(TrainConfigError, match="expected a mapping"):
        load(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TrainConfigError, match="no such config file"):
        load(tmp_path / "absent.yaml")


def test_overrides_nested_and_dotted() -> None:
    cfg = load(DEFAULT_FILE, {"epochs": 2, "data.seed": 4, "export": {"int8": False}}).train
    assert (cfg.epochs, cfg.data.seed, cfg.export.int8) == (2, 4, False)
    assert cfg.data.test_fraction == 0.2  # the rest of the section is kept


def test_bad_override_is_named() -> None:
    with pytest.raises(TrainConfigError, match=r"overrides.*\n  - epochs: Input should be greater than 0"):
        load(DEFAULT_FILE, {"epochs": 0})


def test_search_steps_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "search.yaml"
    path.write_text("epochs: 2\nsearch:\n  - {epochs: 4}\n  - {epocs: 6}\n")
    with pytest.raises(TrainConfigError, match=r"search\[1\].*\n  - epocs: unknown key"):
        load(path)


def test_int8_serving_needs_int8() -> None:
    with pytest.raises(TrainConfigError, match="export: Value error, serving_format tflite_int8 needs int8: true"):
        load({"export": {"serving_format": "tflite_int8"}})


def test_model_id_follows_config_not_search_or_spelling(tmp_path: Path) -> None:
    fingerprint = "f" * 64
    (tmp_path / "a.yaml").write_text("epochs: 15\nsearch: [{epochs: 40}]\n")
    (tmp_path / "b.json").write_text('{"hidden_layers": [128], "epochs": 15}')
    a, b = load(tmp_path / "a.yaml").train, load(tmp_path / "b.json").train
    assert model_id(a, fingerprint) == model_id(b, fingerprint) == model_id(TrainConfig(), fingerprint)
    assert model_id(a.model_copy(update={"epochs": 21}), fingerprint) != model_id(a, fingerprint)
    assert model_id(a, "e" * 64) != model_id(a, fingerprint)


def test_search_can_be_replaced_or_turned_off_by_overrides() -> None:
    assert load(DEFAULT_FILE, {"search": []}).search == []
    replaced = load(DEFAULT_FILE, {"search": [{"epochs": 9}], "epochs": 3})
    assert replaced.search == [{"epochs": 9}] and replaced.train.epochs == 3
