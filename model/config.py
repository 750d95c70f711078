"""The training configuration: one pydantic tree, read from YAML or JSON, with overrides on top.

A config file is a TrainConfig plus an optional `search:` list (overrides tried in order when the gate
fails, see model/search.py). The search list is not part of the model's identity: two files that differ
only in it train the same model.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Mapping, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, model_validator


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names every bad key."""


class _Strict(BaseModel):
    # A misspelt key must fail loudly instead of silently training the default.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the data comes from and how it is split.

    `name: digits` is scikit-learn's bundled 8x8 digits (offline). With `path`, the data is MNIST-format:
    a directory of IDX files (`train-images-idx3-ubyte[.gz]`, `train-labels-idx1-ubyte[.gz]`,
    `t10k-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`) or an `.npz` with
    `x_train/y_train/x_test/y_test`; their own test split is kept and validation comes out of train.
    """

    name: str = "digits"
    path: Optional[str] = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    # Unset: one more than the largest training label. Set, a label at or above it is an error.
    n_classes: Optional[PositiveInt] = None


class ExportConfig(_Strict):
    # int8 post-training quantisation, calibrated on this many training rows.
    int8: bool = False
    representative_rows: PositiveInt = 200
    serving_format: Literal["tflite", "tflite_int8"] = "tflite"

    @model_validator(mode="after")
    def _served_format_is_exported(self) -> "ExportConfig":
        if self.serving_format == "tflite_int8" and not self.int8:
            raise ValueError("serving_format tflite_int8 needs int8: true")
        return self


class TrainConfig(_Strict):
    """The seed's model by default: Dense 128 relu -> Dense n_classes softmax, after a normalisation layer."""

    hidden_layers: list[PositiveInt] = Field(default_factory=lambda: [128])
    activation: Literal["relu", "gelu", "tanh", "elu", "selu", "sigmoid"] = "relu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    learning_rate: float = Field(1e-3, gt=0.0)
    epochs: PositiveInt = 15
    batch_size: PositiveInt = 32
    seed: int = 0
    data: DataConfig = Field(default_factory=DataConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)

    def canonical_json(self) -> str:
        """The form hashed into the model id: every field, defaults included, keys sorted."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


class LoadedConfig(_Strict):
    train: TrainConfig
    search: list[dict[str, Any]] = Field(default_factory=list)


def _expand(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`{"data.seed": 3}` -> `{"data": {"seed": 3}}`, so overrides can be written flat."""
    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        *parents, leaf = str(key).split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = _expand(value) if isinstance(value, Mapping) else value
    return nested


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: a nested mapping updates its section key by key, anything else replaces."""
    merged = dict(base)
    for key, value in _expand(overrides).items():
        if isinstance(value, dict) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _problems(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        lines.append(f"  - {key}: {message}")
    return "\n".join(lines)


def validate(raw: Mapping[str, Any], where: str) -> TrainConfig:
    try:
        return TrainConfig.model_validate(dict(raw))
    except ValidationError as e:
        raise ConfigError(f"{where}: invalid training config:\n{_problems(e)}") from None


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping (JSON is YAML, so one parser reads both)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML/JSON: {e}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, found {type(raw).__name__}")
    return raw


def load(source: Path | str | Mapping[str, Any] | TrainConfig | None = None,
         overrides: Optional[Mapping[str, Any]] = None) -> LoadedConfig:
    """A config file (or mapping, or TrainConfig; None is the default) with `overrides` applied on top.

    An override `search` replaces the file's search list (`search: []` turns it off).
    """
    if isinstance(source, TrainConfig):
        raw, where = source.model_dump(mode="json"), "config"
    elif isinstance(source, Mapping):
        raw, where = dict(source), "config"
    elif source is None:
        raw, where = {}, "default config"
    else:
        raw, where = read_mapping(Path(source)), str(source)
    search = raw.pop("search", None) or []
    overrides = dict(overrides or {})
    if "search" in overrides:
        # `search: []` turns the search off, e.g. for a quick run whose failure should cost nothing more.
        search = overrides.pop("search") or []
    if not isinstance(search, list) or not all(isinstance(s, Mapping) for s in search):
        raise ConfigError(f"{where}: search must be a list of override mappings")
    if overrides:
        where = f"{where} with overrides {dict(overrides)}"
        raw = merge(raw, overrides)
    train = validate(raw, where)
    for i, step in enumerate(search):
        validate(merge(raw, step), f"{where}: search[{i}]")
    return LoadedConfig(train=train, search=[dict(s) for s in search])
