"""scikit-learn's bundled digits as 8x8 grey images with one channel: x [rows, 8, 8, 1], ink 0..16.

numpy and scikit-learn only (no TensorFlow): modelship runs the loader to fingerprint the data even when
the model is already in its store, and that check must stay fast.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load():
    digits = load_digits()
    images = digits.images.astype(np.float32)[..., np.newaxis]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.2, stratify=digits.target, random_state=0)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "class_names": [str(d) for d in digits.target_names]}
