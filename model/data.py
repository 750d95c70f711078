"""Data sets the model trains on, split deterministically, fingerprinted for the model id.

Three sources: scikit-learn's bundled digits, MNIST-format files (`data.path`), and the user's loader
(`data.loader`, model/user.py). The built-in sources are flat float32 vectors, as the seed's model takes
them; a loader's x keeps its shape `[rows, *input_shape]`, int32 when integer (token ids), else float32.
Labels are checked against the task: class indices (multiclass), 0/1 (binary) or finite targets (regression).

Pure numpy: the fingerprint is needed on a store hit, where TensorFlow (and scikit-learn's heavy imports)
must stay out of the process. A problem with a data file is a DataError naming the file; one with what a
loader returned is a UserCodeError naming the loader's file:line and the arrays.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Optional

import numpy as np

from app.entry import Task
from model.config import DEFAULT_TASK, REPO_ROOT, DataConfig
from model.user import UserCodeError, definition, load_callable, run_user, takes_argument


class DataError(ValueError):
    """Data that cannot be trained on; the message names the file and the problem."""


@dataclass(frozen=True)
class Dataset:
    """x arrays are `[rows, *input_shape]`; y holds class indices (int64) or regression targets (float32)."""

    name: str
    # No machine paths: `sklearn:digits`, a path relative to the project root, or the loader reference.
    source: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    fingerprint: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def input_dtype(self) -> Literal["float32", "int32"]:
        return "int32" if self.x_train.dtype == np.int32 else "float32"

    @property
    def n_features(self) -> int:
        """Values per input row: the product of the input shape."""
        return int(np.prod(self.input_shape))

    @property
    def n_classes(self) -> int:
        """0 for regression."""
        return len(self.class_names)


# IDX element types (the third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def digits_file() -> Path:
    """scikit-learn's bundled digits, located without importing scikit-learn (seconds on a store hit)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise DataError("the digits data set ships with scikit-learn, which is not installed in this environment")
    return Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (MNIST's format), gzipped when its name ends in .gz."""
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (EOFError, gzip.BadGzipFile, OSError) as e:
        raise DataError(f"{path}: unreadable gzip data ({e}); the file is truncated or not gzipped") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: truncated IDX data: header says shape {shape} ({expected} bytes), "
            f"file holds {len(raw) - header} bytes after the header"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(shape)


def _idx_set(directory: Path) -> dict[str, tuple[np.ndarray, str]]:
    arrays = {}
    for key, stem in _IDX_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{directory}: missing {stem} (or {stem}.gz), one of the four MNIST-format IDX files")
        arrays[key] = (read_idx(found), str(found))
    return arrays


def _npz_set(path: Path) -> dict[str, tuple[np.ndarray, str]]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in _NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: missing array(s) {', '.join(missing)} (has {', '.join(npz.files) or 'none'})")
            return {k: (npz[k], f"{path}[{k}]") for k in _NPZ_KEYS}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable .npz archive ({e})") from None


def _features(x: np.ndarray, where: str, flatten: bool = True) -> np.ndarray:
    """Checked features: flat float32 rows (the built-in sources), or their own shape, int32 when integer."""
    if x.ndim < 2:
        raise DataError(f"{where}: features must have shape (rows, features...) but have shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: empty, no rows")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{where}: features must be real numbers, found dtype {x.dtype}")
    if not flatten and np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(np.int32)
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise DataError(f"{where}: integer features outside the int32 range the model is served with")
        return x.astype(np.int32)
    cast = x.astype(np.float32)
    bad = ~np.isfinite(cast.reshape(len(cast), -1))
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{where}: {int(bad.sum())} NaN or infinite value(s) (as float32), first at row {row}, "
                        f"feature {col} (flat index)")
    return cast.reshape(len(cast), -1) if flatten else cast


def _targets(y: np.ndarray, n_rows: int, task: Task, where: str) -> np.ndarray:
    """Labels for the task: class indices (multiclass, binary 0/1) as int64, or regression targets as float32."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{where}: labels must have shape (rows,) but have shape {y.shape}")
    if len(y) != n_rows:
        raise DataError(f"{where}: {len(y)} labels for {n_rows} feature rows")
    if not np.issubdtype(y.dtype, np.number) and y.dtype != np.bool_:
        raise DataError(f"{where}: labels must be numbers, found dtype {y.dtype}")
    if task == "regression":
        targets = y.astype(np.float32)
        bad = ~np.isfinite(targets)
        if bad.any():
            raise DataError(f"{where}: {int(bad.sum())} NaN or infinite target(s), first at row {int(np.argmax(bad))}")
        return targets
    if not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
        raise DataError(f"{where}: labels must be whole numbers (class indices)")
    labels = y.astype(np.int64)
    if task == "binary":
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            raise DataError(f"{where}: binary labels must be 0 or 1, found {int(labels[bad][0])} at row "
                            f"{int(np.argmax(bad))} ({int(bad.sum())} such label(s))")
    return labels


def _check_range(y: np.ndarray, n_classes: int, where: str) -> None:
    out = (y < 0) | (y >= n_classes)
    if out.any():
        raise DataError(
            f"{where}: {int(out.sum())} label(s) out of range 0..{n_classes - 1}, e.g. {int(y[out][0])} at row {int(np.argmax(out))}"
        )


def _fingerprint(name: str, class_names: list[str], task: Task, arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(name.encode() + b"\0" + "\0".join(class_names).encode() + b"\0" + task.encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    cut = int(round(n * fraction))
    return order[cut:], order[:cut]


_ARRAYS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


@dataclass(frozen=True)
class _Arrays:
    """A source's checked arrays before the task's class count and the validation split."""

    x_rest: np.ndarray
    y_rest: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    # Where each split's labels come from, for messages.
    where: dict[str, str]
    x_val: Optional[np.ndarray] = None
    y_val: Optional[np.ndarray] = None
    class_names: Optional[list[str]] = None


def _digits(cfg: DataConfig, task: Task, rng: np.random.Generator) -> _Arrays:
    if cfg.name != "digits":
        raise DataError(f"data set {cfg.name!r} is not bundled; the bundled one is 'digits', others need "
                        "data.path or data.loader")
    path = digits_file()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: unreadable digits table ({e}); reinstall scikit-learn") from None
    x = _features(table[:, :-1], str(path))
    y = _targets(table[:, -1], len(x), task, str(path))
    rest, test = _split(len(x), cfg.test_fraction, rng)
    return _Arrays(x[rest], y[rest], x[test], y[test], where={"train": str(path), "test": str(path)})


def _files(path: Path, task: Task) -> _Arrays:
    if path.is_dir():
        arrays = _idx_set(path)
    elif path.suffix == ".npz":
        arrays = _npz_set(path)
    elif not path.exists():
        raise DataError(f"{path}: no such file or directory (data.path)")
    else:
        raise DataError(f"{path}: data.path must be a directory of IDX files or an .npz file")
    (xa, xw), (ya, yw), (ta, tw), (la, lw) = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    x_rest, x_test = _features(xa, xw), _features(ta, tw)
    y_rest, y_test = _targets(ya, len(x_rest), task, yw), _targets(la, len(x_test), task, lw)
    if x_rest.shape[1] != x_test.shape[1]:
        raise DataError(f"{tw}: {x_test.shape[1]} features per row, but training data ({xw}) has {x_rest.shape[1]}")
    return _Arrays(x_rest, y_rest, x_test, y_test, where={"train": yw, "test": lw})


def _returned(result: Any, where: str) -> dict[str, Any]:
    """A loader's return value by array name (plus `class_names`)."""
    if isinstance(result, Mapping):
        unknown = sorted(set(map(str, result)) - set(_ARRAYS) - {"class_names"})
        missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in result]
        if unknown or missing:
            raise DataError(f"{where}: the mapping it returned lacks {', '.join(missing) or 'nothing'} and has unknown "
                            f"key(s) {', '.join(unknown) or 'none'}; keys are {', '.join(_ARRAYS)}, class_names")
        if ("x_val" in result) != ("y_val" in result):
            raise DataError(f"{where}: returned one of x_val, y_val without the other")
        return dict(result)
    if isinstance(result, (tuple, list)) and len(result) in (4, 6):
        names = ("x_train", "y_train", "x_test", "y_test") if len(result) == 4 else _ARRAYS
        return dict(zip(names, result))
    shown = f"a {len(result)}-tuple" if isinstance(result, (tuple, list)) else type(result).__name__
    raise DataError(f"{where}: returned {shown}; return (x_train, y_train, x_test, y_test), the 6-tuple "
                    "(x_train, y_train, x_val, y_val, x_test, y_test), or a mapping with those keys")


def _loaded(cfg: DataConfig, task: Task, root: Path, params: Mapping[str, Any]) -> _Arrays:
    ref = str(cfg.loader)
    fn: Callable[..., Any] = load_callable(ref, root, "data loader")
    args = (dict(params),) if takes_argument(fn) else ()
    result = run_user(fn, *args, root=root, what=f"data loader {ref}")
    file, line = definition(fn)
    where = f"{file}:{line}: data loader {ref}"
    try:
        raw = _returned(result, where)
        arrays: dict[str, np.ndarray] = {}
        for key in (k for k in _ARRAYS if k in raw):
            try:
                arrays[key] = np.asarray(raw[key])
            except (ValueError, TypeError) as e:
                raise DataError(f"{where}: {key} is not an array ({e})") from None
        xs = {k: _features(a, f"{where}: {k}", flatten=False) for k, a in arrays.items() if k.startswith("x_")}
        kinds = {k: x.dtype for k, x in xs.items()}
        if len(set(kinds.values())) > 1:
            # Served as one dtype: integer x everywhere (token ids) or real x everywhere.
            xs = {k: x.astype(np.float32) for k, x in xs.items()}
        shapes = {k: x.shape[1:] for k, x in xs.items()}
        if len(set(shapes.values())) > 1:
            shown = ", ".join(f"{k} {list(s)}" for k, s in shapes.items())
            raise DataError(f"{where}: x arrays disagree on the input shape after the row axis: {shown}")
        ys = {}
        for split in ("train", "val", "test"):
            if f"x_{split}" in xs:
                x, y = xs[f"x_{split}"], arrays[f"y_{split}"]
                if y.ndim >= 1 and len(y) != len(x):
                    raise DataError(f"{where}: x_{split} has {len(x)} rows but y_{split} has {len(y)}; "
                                    "every x and its y need one row per example")
                ys[split] = _targets(y, len(x), task, f"{where}: y_{split}")
        names = raw.get("class_names")
        class_names = None if names is None else [str(n) for n in names]
    except DataError as e:
        raise UserCodeError(str(e)) from None
    return _Arrays(xs["x_train"], ys["train"], xs["x_test"], ys["test"],
                   where={s: f"{where}: y_{s}" for s in ys},
                   x_val=xs.get("x_val"), y_val=ys.get("val"), class_names=class_names)


def _class_names(cfg: DataConfig, task: Task, found: _Arrays, where: str) -> list[str]:
    """The classes the labels index (none for regression); labels outside them are an error."""
    if task == "regression":
        if found.class_names:
            raise DataError(f"{where}: class_names given for task regression, which has targets, not classes")
        return []
    names = found.class_names
    if task == "binary":
        if names is not None and len(names) != 2:
            raise DataError(f"{where}: task binary has 2 classes, class_names has {len(names)}: {names}")
        return names or ["0", "1"]
    if names is not None and cfg.n_classes is not None and len(names) != cfg.n_classes:
        raise DataError(f"{where}: {len(names)} class_names but data.n_classes is {cfg.n_classes}")
    count = len(names) if names is not None else (cfg.n_classes or int(found.y_rest.max()) + 1)
    for split, y in (("train", found.y_rest), ("val", found.y_val), ("test", found.y_test)):
        if y is not None:
            _check_range(y, count, found.where.get(split, found.where["train"]))
    return names if names is not None else [str(c) for c in range(count)]


def _portable(path: Path, root: Path) -> str:
    """`path` without the machine's directories: relative to the project root or the repository, else its name."""
    for base in (root, REPO_ROOT):
        if path.resolve().is_relative_to(base.resolve()):
            return path.resolve().relative_to(base.resolve()).as_posix()
    return path.name


def load(cfg: DataConfig, task: Task = DEFAULT_TASK, root: Path = REPO_ROOT,
         params: Optional[Mapping[str, Any]] = None) -> Dataset:
    """The configured data set for `task`, split into train/validation/test by `cfg.seed`.

    `root` is the user's project root: a loader is imported from it (and called with `params` when it
    takes an argument), a relative `cfg.path` is under it. A data set with its own test split (IDX, npz,
    a loader) keeps it; the validation split is the loader's own or comes out of training.
    """
    rng = np.random.default_rng(cfg.seed)
    if cfg.loader is not None:
        found, source = _loaded(cfg, task, root, params or {}), cfg.loader
    elif cfg.path is None:
        found, source = _digits(cfg, task, rng), "sklearn:digits"
    else:
        path = Path(cfg.path).expanduser()
        path = path if path.is_absolute() else root / path
        found, source = _files(path, task), _portable(path, root)
    try:
        class_names = _class_names(cfg, task, found, found.where["train"])
    except DataError as e:
        raise (UserCodeError(str(e)) if cfg.loader is not None else e) from None
    if found.x_val is not None and found.y_val is not None:
        x_train, y_train, x_val, y_val = found.x_rest, found.y_rest, found.x_val, found.y_val
    else:
        train, val = _split(len(found.x_rest), cfg.val_fraction, rng)
        if len(train) == 0:
            raise DataError(f"{source}: no training rows left after the test and validation splits")
        x_train, y_train = found.x_rest[train], found.y_rest[train]
        x_val, y_val = found.x_rest[val], found.y_rest[val]
    parts = [x_train, y_train, x_val, y_val, found.x_test, found.y_test]
    return Dataset(cfg.name, source, task, *parts, class_names=class_names,
                   fingerprint=_fingerprint(cfg.name, class_names, task, parts))
