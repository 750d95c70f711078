"""Loaders of a user's project: scikit-learn's bundled data sets, and token ids, split by a fixed seed."""
import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes


def _split(x: np.ndarray, y: np.ndarray) -> dict:
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[: len(x) // 4], order[len(x) // 4:]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def breast_cancer() -> dict:
    data = load_breast_cancer()
    return {**_split(data.data, data.target), "class_names": ["malignant", "benign"]}


def diabetes() -> dict:
    # scikit-learn's scaled copy: every feature centred, so of mixed sign.
    data = load_diabetes()
    return _split(data.data, data.target)


def tokens() -> tuple:
    """Sequences of 12 token ids from a vocabulary of 50; class 1 when token 7 occurs."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, (600, 12)).astype(np.int32)
    y = (x == 7).any(axis=1).astype(np.int64)
    return x[:450], y[:450], x[450:], y[450:]
