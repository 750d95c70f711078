"""Data sets the model trains on, split deterministically, fingerprinted for the model id.

Pure numpy: the fingerprint is needed on a store hit, where TensorFlow (and scikit-learn's heavy imports)
must stay out of the process. Every problem with a data file is a DataError naming the file.
"""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from model.config import DataConfig


class DataError(ValueError):
    """Data that cannot be trained on; the message names the file and the problem."""


@dataclass(frozen=True)
class Dataset:
    name: str
    source: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    fingerprint: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_classes(self) -> int:
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


def _features(x: np.ndarray, where: str) -> np.ndarray:
    if x.ndim < 2:
        raise DataError(f"{where}: features must have shape (rows, features...) but have shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{where}: empty, no rows")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{where}: features must be numeric, found dtype {x.dtype}")
    flat = x.reshape(len(x), -1).astype(np.float32)
    bad = ~np.isfinite(flat)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{where}: {int(bad.sum())} NaN or infinite value(s), first at row {row}, feature {col}")
    return flat


def _labels(y: np.ndarray, n_rows: int, where: str) -> np.ndarray:
    if y.ndim != 1:
        raise DataError(f"{where}: labels must have shape (rows,) but have shape {y.shape}")
    if len(y) != n_rows:
        raise DataError(f"{where}: {len(y)} labels for {n_rows} feature rows")
    if not np.issubdtype(y.dtype, np.number) or not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
        raise DataError(f"{where}: labels must be whole numbers (class indices)")
    return y.astype(np.int64)


def _check_range(y: np.ndarray, n_classes: int, where: str) -> None:
    out = (y < 0) | (y >= n_classes)
    if out.any():
        raise DataError(
            f"{where}: {int(out.sum())} label(s) out of range 0..{n_classes - 1}, e.g. {int(y[out][0])} at row {int(np.argmax(out))}"
        )


def _fingerprint(name: str, class_names: list[str], arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256(name.encode() + b"\0" + "\0".join(class_names).encode())
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _split(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    cut = int(round(n * fraction))
    return order[cut:], order[:cut]


def load(cfg: DataConfig) -> Dataset:
    """The configured data set, split into train/validation/test by `cfg.seed`.

    A data set with its own test split (IDX, npz) keeps it; the validation split comes out of training.
    """
    rng = np.random.default_rng(cfg.seed)
    if cfg.path is None:
        if cfg.name != "digits":
            raise DataError(f"data set {cfg.name!r} is not bundled; the bundled one is 'digits', others need data.path")
        path = digits_file()
        try:
            table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        except (OSError, ValueError, EOFError) as e:
            raise DataError(f"{path}: unreadable digits table ({e}); reinstall scikit-learn") from None
        x = _features(table[:, :-1], str(path))
        y = _labels(table[:, -1], len(x), str(path))
        rest, test = _split(len(x), cfg.test_fraction, rng)
        x_rest, y_rest, x_test, y_test = x[rest], y[rest], x[test], y[test]
        sources = {"train": str(path), "test": str(path)}
        source = str(path)
    else:
        path = Path(cfg.path)
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
        y_rest, y_test = _labels(ya, len(x_rest), yw), _labels(la, len(x_test), lw)
        if x_rest.shape[1] != x_test.shape[1]:
            raise DataError(f"{tw}: {x_test.shape[1]} features per row, but training data ({xw}) has {x_rest.shape[1]}")
        sources = {"train": yw, "test": lw}
        source = str(path)
    classes = cfg.n_classes if cfg.n_classes is not None else int(y_rest.max()) + 1
    _check_range(y_rest, classes, sources["train"])
    _check_range(y_test, classes, sources["test"])
    train, val = _split(len(x_rest), cfg.val_fraction, rng)
    if len(train) == 0:
        raise DataError(f"{source}: no training rows left after the test and validation splits")
    class_names = [str(c) for c in range(classes)]
    parts = [x_rest[train], y_rest[train], x_rest[val], y_rest[val], x_test, y_test]
    return Dataset(cfg.name, source, *parts, class_names=class_names,
                   fingerprint=_fingerprint(cfg.name, class_names, parts))
