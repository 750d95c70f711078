"""Sequences of 12 token ids from a vocabulary of 30; label 1 when ids below 5 occur more than twice."""
import numpy as np

VOCABULARY, LENGTH = 30, 12


def load():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCABULARY, size=(400, LENGTH)).astype(np.int32)
    labels = ((ids < 5).sum(axis=1) > 2).astype(np.int64)
    return {"x_train": ids[:320], "y_train": labels[:320], "x_test": ids[320:], "y_test": labels[320:],
            "class_names": ["rare", "common"]}
