"""The training configuration: one pydantic tree, read from YAML or JSON, with overrides on top.

A config file is a TrainConfig plus an optional `search:` list (overrides tried in order when the gate
fails, see model/search.py). The search list is not part of the model's identity: two files that differ
only in it train the same model.

A config file's directory is the user's project root: their `builder` and `data.loader` modules are
imported from it and relative `artifact` and `data.path` resolve against it. The root is carried on the
TrainConfig but never serialised, so no machine path reaches the model id or report.json.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Optional

import yaml
from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError,
                      field_validator, model_validator)

from app.entry import Task

# The task of a config that names none, and of a model recorded before tasks existed: the seed's classifier.
DEFAULT_TASK: Task = "multiclass"

# Where a mapping or the default config finds user files: the repository (model/..).
REPO_ROOT = Path(__file__).resolve().parent.parent

_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _callable_ref(value: str) -> str:
    if not _REF.match(value):
        raise ValueError(f"{value!r} is not 'module:function' (e.g. my_models.cnn:build, importable from the "
                         "config file's directory)")
    return value


# "package.module:function", a callable in the user's project.
CallableRef = Annotated[str, AfterValidator(_callable_ref)]


class TrainConfigError(ValueError):
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
    # "module:function" in the user's project returning the arrays (model/user.py); the name defaults to it.
    loader: Optional[CallableRef] = None
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    # Unset: one more than the largest training label. Set, a label at or above it is an error.
    n_classes: Optional[PositiveInt] = None

    @model_validator(mode="before")
    @classmethod
    def _loader_names_the_data(cls, raw: Any) -> Any:
        if isinstance(raw, Mapping) and raw.get("loader") and "name" not in raw:
            return {**raw, "name": raw["loader"]}
        return raw

    @model_validator(mode="after")
    def _one_source(self) -> "DataConfig":
        if self.loader is not None and self.path is not None:
            raise ValueError("set data.loader or data.path, not both (a loader reads its own files)")
        return self


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


class MonitorConfig(_Strict):
    """Input drift: series for the `features` most variable inputs, `bins` quantile bins each (docs/contracts.md)."""

    features: PositiveInt = 10
    bins: int = Field(10, ge=2)


class TrainConfig(_Strict):
    """The seed's model by default: Dense 128 relu -> Dense n_classes softmax, after a normalisation layer.

    `builder` replaces the built-in model (hidden_layers, activation, dropout are then ignored); `artifact`
    replaces training altogether. `params` goes to the builder and to a loader that takes an argument.
    """

    task: Task = DEFAULT_TASK
    builder: Optional[CallableRef] = None
    params: dict[str, Any] = Field(default_factory=dict)
    artifact: Optional[str] = None
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
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    # The user's project root (see the module docstring); private, so never in canonical_json.
    _root: Path = PrivateAttr(default=REPO_ROOT)

    @field_validator("data", mode="before")
    @classmethod
    def _loader_shorthand(cls, raw: Any) -> Any:
        # `data: my_models.data:load` is `data: {loader: my_models.data:load}`.
        return {"loader": raw} if isinstance(raw, str) else raw

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.artifact is not None and self.builder is not None:
            raise ValueError("artifact and builder are exclusive: a pre-trained artifact is shipped as it is, "
                             "a builder's model is trained; drop one")
        if self.task == "regression" and self.data.n_classes is not None:
            raise ValueError("data.n_classes is for classification; task regression has targets, not classes")
        if self.task == "binary" and self.data.n_classes not in (None, 2):
            raise ValueError(f"task binary has two classes, data.n_classes is {self.data.n_classes}")
        return self

    @property
    def root(self) -> Path:
        """The user's project root: the config file's directory (a mapping or the default: the repository)."""
        return self._root

    def with_root(self, root: Path | str) -> "TrainConfig":
        """This config with user files found under `root` (made absolute)."""
        copy = self.model_copy()
        copy._root = Path(root).resolve()
        return copy

    def resolve(self, path: Path | str) -> Path:
        """A user path from the config (`artifact`, `data.path`): relative ones are under the project root."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self._root / path

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


def validate(raw: Mapping[str, Any], where: str, root: Path | str = REPO_ROOT) -> TrainConfig:
    """A TrainConfig whose user files are under `root` (search steps pass their base config's root)."""
    try:
        return TrainConfig.model_validate(dict(raw)).with_root(root)
    except ValidationError as e:
        raise TrainConfigError(f"{where}: invalid training config:\n{_problems(e)}") from None


def read_mapping(path: Path) -> dict[str, Any]:
    """A YAML or JSON file holding one mapping (JSON is YAML, so one parser reads both)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise TrainConfigError(f"{path}: no such config file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TrainConfigError(f"{path}: not valid YAML/JSON: {e}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise TrainConfigError(f"{path}: expected a mapping of keys at the top level, found {type(raw).__name__}")
    return raw


def load(source: Path | str | Mapping[str, Any] | TrainConfig | None = None,
         overrides: Optional[Mapping[str, Any]] = None) -> LoadedConfig:
    """A config file (or mapping, or TrainConfig; None is the default) with `overrides` applied on top.

    An override `search` replaces the file's search list (`search: []` turns it off).
    """
    if isinstance(source, TrainConfig):
        raw, where, root = source.model_dump(mode="json"), "config", source.root
    elif isinstance(source, Mapping):
        raw, where, root = dict(source), "config", REPO_ROOT
    elif source is None:
        raw, where, root = {}, "default config", REPO_ROOT
    else:
        raw, where, root = read_mapping(Path(source)), str(source), Path(source).resolve().parent
    search = raw.pop("search", None) or []
    overrides = dict(overrides or {})
    if "search" in overrides:
        # `search: []` turns the search off, e.g. for a quick run whose failure should cost nothing more.
        search = overrides.pop("search") or []
    if not isinstance(search, list) or not all(isinstance(s, Mapping) for s in search):
        raise TrainConfigError(f"{where}: search must be a list of override mappings")
    if overrides:
        where = f"{where} with overrides {dict(overrides)}"
        raw = merge(raw, overrides)
    train = validate(raw, where, root)
    for i, step in enumerate(search):
        validate(merge(raw, step), f"{where}: search[{i}]", root)
    return LoadedConfig(train=train, search=[dict(s) for s in search])
