"""Synthetic 28x28x1 images of three classes: a bright band in the top, middle or bottom third, on noise.

Pixel values are centred (mixed signs), as standardised images are.
"""
import numpy as np


def load():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    images = rng.normal(0.0, 1.0, size=(300, 28, 28, 1)).astype(np.float32)
    for i, label in enumerate(labels):
        images[i, 9 * label : 9 * label + 9] += 2.0
    return {"x_train": images[:240], "y_train": labels[:240], "x_test": images[240:], "y_test": labels[240:],
            "class_names": ["top", "middle", "bottom"]}
