"""The data `model.keras` was trained on and is evaluated on: scikit-learn's digits, 64 raw pixel values per row.

train_model.py trains on the training split; modelship evaluates the shipped artifact on the test split and
takes its drift reference from the training split. numpy and scikit-learn only (no TensorFlow): modelship
runs the loader to fingerprint the data even when the model is already in its store.
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def load():
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data.astype(np.float32), digits.target, test_size=0.25, stratify=digits.target, random_state=1)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "class_names": [str(d) for d in digits.target_names]}
