"""Data loading: the bundled digits, MNIST-format IDX (plain and gzipped) and npz, and every bad-data case."""
from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from model.config import DataConfig
from model.data import DataError, digits_file, load

RNG = np.random.default_rng(7)


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype("uint8"): 0x08, np.dtype(">f4"): 0x0D}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(directory: Path, arrays: dict[str, np.ndarray], gz: bool) -> Path:
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    directory.mkdir(parents=True, exist_ok=True)
    for key, name in names.items():
        raw = idx_bytes(arrays[key])
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return directory


def mnist_like(n_train: int = 60, n_test: int = 20, side: int = 6) -> dict[str, np.ndarray]:
    return {
        "x_train": RNG.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": RNG.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def test_digits_are_scikit_learns(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    reference = load_digits()
    table = np.loadtxt(digits_file(), delimiter=",")
    assert np.array_equal(table[:, :-1], reference.data) and np.array_equal(table[:, -1], reference.target)

    data = load(DataConfig())
    assert (data.n_features, data.n_classes) == (64, 10)
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == len(reference.target)
    assert len(data.y_test) == round(0.2 * 1797)
    rows = {r.tobytes() for r in np.concatenate([data.x_train, data.x_val, data.x_test])}
    assert len(rows) == len({r.astype(np.float32).tobytes() for r in reference.data})  # a split, not a resample


def test_split_and_fingerprint_are_deterministic() -> None:
    a, b = load(DataConfig()), load(DataConfig())
    assert a.fingerprint == b.fingerprint and np.array_equal(a.x_test, b.x_test)
    other_split = load(DataConfig(seed=1))
    assert other_split.fingerprint != a.fingerprint
    assert not np.array_equal(other_split.y_test, a.y_test)
    assert load(DataConfig(val_fraction=0.2)).fingerprint != a.fingerprint


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_idx_directory(tmp_path: Path, gz: bool) -> None:
    arrays = mnist_like()
    data = load(DataConfig(name="tiny", path=str(write_idx(tmp_path, arrays, gz))))
    assert data.n_features == 36 and data.n_classes == 10
    assert len(data.y_test) == 20 and len(data.y_train) + len(data.y_val) == 60
    assert np.array_equal(data.x_test, arrays["x_test"].reshape(20, -1).astype(np.float32))
    assert data.x_train.dtype == np.float32 and data.x_train.max() <= 255


def test_idx_plain_and_gzip_have_one_fingerprint(tmp_path: Path) -> None:
    arrays = mnist_like()
    plain = load(DataConfig(name="tiny", path=str(write_idx(tmp_path / "plain", arrays, False))))
    gz = load(DataConfig(name="tiny", path=str(write_idx(tmp_path / "gz", arrays, True))))
    assert plain.fingerprint == gz.fingerprint


def test_npz(tmp_path: Path) -> None:
    arrays = mnist_like()
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    data = load(DataConfig(name="tiny", path=str(path), val_fraction=0.25))
    assert len(data.y_val) == 15 and len(data.y_train) == 45 and data.n_features == 36


def expect_error(cfg: DataConfig, *fragments: str) -> str:
    with pytest.raises(DataError) as caught:
        load(cfg)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in error: {message}"
    return message


def npz_case(tmp_path: Path, **changes: np.ndarray) -> DataConfig:
    arrays = {**mnist_like(), **changes}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return DataConfig(name="bad", path=str(path))


def test_truncated_idx(tmp_path: Path) -> None:
    directory = write_idx(tmp_path, mnist_like(), gz=False)
    images = directory / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-10])
    expect_error(DataConfig(path=str(directory)), str(images), "truncated IDX data")


def test_truncated_idx_header(tmp_path: Path) -> None:
    directory = write_idx(tmp_path, mnist_like(), gz=False)
    labels = directory / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:6])
    expect_error(DataConfig(path=str(directory)), str(labels), "truncated IDX header")


def test_truncated_gzip(tmp_path: Path) -> None:
    directory = write_idx(tmp_path, mnist_like(), gz=True)
    images = directory / "train-images-idx3-ubyte.gz"
    images.write_bytes(images.read_bytes()[:-30])
    expect_error(DataConfig(path=str(directory)), str(images), "truncated or not gzipped")


def test_not_an_idx_file(tmp_path: Path) -> None:
    directory = write_idx(tmp_path, mnist_like(), gz=False)
    labels = directory / "train-labels-idx1-ubyte"
    labels.write_bytes(b"PK\x03\x04" + labels.read_bytes()[4:])
    expect_error(DataConfig(path=str(directory)), str(labels), "not an IDX file")


def test_missing_idx_file(tmp_path: Path) -> None:
    directory = write_idx(tmp_path, mnist_like(), gz=False)
    (directory / "t10k-images-idx3-ubyte").unlink()
    expect_error(DataConfig(path=str(directory)), str(directory), "missing t10k-images-idx3-ubyte")


def test_label_count_differs_from_rows(tmp_path: Path) -> None:
    arrays = mnist_like()
    arrays["y_train"] = arrays["y_train"][:50]
    directory = write_idx(tmp_path, arrays, gz=True)
    expect_error(DataConfig(path=str(directory)), str(directory / "train-labels-idx1-ubyte.gz"), "50 labels for 60 feature rows")


def test_labels_out_of_range(tmp_path: Path) -> None:
    y_test = (np.arange(20) % 10).astype(np.int64)
    y_test[3] = 12
    cfg = npz_case(tmp_path, y_test=y_test)
    expect_error(cfg, f"{cfg.path}[y_test]", "out of range 0..9", "12 at row 3")


def test_negative_labels(tmp_path: Path) -> None:
    y_train = (np.arange(60) % 10).astype(np.int64) - 1
    cfg = npz_case(tmp_path, y_train=y_train)
    expect_error(cfg, f"{cfg.path}[y_train]", "out of range")


def test_labels_beyond_configured_classes(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path).model_copy(update={"n_classes": 5})
    expect_error(cfg, f"{cfg.path}[y_train]", "out of range 0..4")


def test_fractional_labels(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path, y_train=np.full(60, 0.5))
    expect_error(cfg, f"{cfg.path}[y_train]", "whole numbers")


def test_nan_features(tmp_path: Path) -> None:
    x = mnist_like()["x_train"].astype(np.float32)
    x[4, 2, 3] = np.nan
    cfg = npz_case(tmp_path, x_train=x)
    expect_error(cfg, f"{cfg.path}[x_train]", "NaN or infinite", "row 4, feature 15")


def test_empty(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path, x_test=np.zeros((0, 6, 6), np.uint8), y_test=np.zeros(0, np.uint8))
    expect_error(cfg, f"{cfg.path}[x_test]", "empty")


def test_features_of_wrong_shape(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path, x_train=np.zeros(60, np.uint8))
    expect_error(cfg, f"{cfg.path}[x_train]", "shape (rows, features...)", "(60,)")


def test_labels_of_wrong_shape(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path, y_train=np.zeros((60, 10), np.uint8))
    expect_error(cfg, f"{cfg.path}[y_train]", "shape (rows,)")


def test_test_split_with_other_feature_count(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path, x_test=np.zeros((20, 5, 5), np.uint8))
    expect_error(cfg, f"{cfg.path}[x_test]", "25 features per row", "has 36")


def test_npz_missing_array(tmp_path: Path) -> None:
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((3, 4)), y_train=np.zeros(3))
    expect_error(DataConfig(path=str(path)), str(path), "missing array(s) x_test, y_test")


def test_npz_that_is_not_an_archive(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip")
    expect_error(DataConfig(path=str(path)), str(path), "not a readable .npz")


def test_missing_path(tmp_path: Path) -> None:
    expect_error(DataConfig(path=str(tmp_path / "nowhere.npz")), str(tmp_path / "nowhere.npz"), "no such file")


def test_unknown_bundled_name() -> None:
    expect_error(DataConfig(name="cifar"), "'cifar' is not bundled")


def test_digits_source_names_no_machine_path() -> None:
    data = load(DataConfig())
    assert data.source == "sklearn:digits" and data.task == "multiclass"
    assert (data.input_shape, data.input_dtype, data.x_train.dtype) == ((64,), "float32", np.float32)


def test_binary_labels_in_files_must_be_0_or_1(tmp_path: Path) -> None:
    cfg = npz_case(tmp_path)
    with pytest.raises(DataError) as caught:
        load(cfg, task="binary")
    assert f"{cfg.path}[y_train]" in str(caught.value) and "binary labels must be 0 or 1" in str(caught.value)


def test_regression_targets_from_files(tmp_path: Path) -> None:
    targets = np.linspace(-1.5, 2.5, 60)
    cfg = npz_case(tmp_path, y_train=targets, y_test=np.full(20, 0.25))
    data = load(cfg, task="regression")
    assert data.n_classes == 0 and data.class_names == [] and data.y_test.dtype == np.float32
    assert np.allclose(np.sort(np.concatenate([data.y_train, data.y_val])), targets.astype(np.float32))


def test_a_relative_path_is_under_the_root(tmp_path: Path) -> None:
    np.savez(tmp_path / "tiny.npz", **mnist_like())
    data = load(DataConfig(name="tiny", path="tiny.npz"), root=tmp_path)
    assert data.source == "tiny.npz" and data.n_features == 36
