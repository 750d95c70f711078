"""scikit-learn's bundled diabetes table: 10 baseline features, target a disease-progression score a year later.

numpy and scikit-learn only (no TensorFlow): modelship runs the loader to fingerprint the data even when
the model is already in its store, and that check must stay fast.
"""
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split


def load():
    x, y = load_diabetes(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=1)
    return x_train, y_train, x_test, y_test
