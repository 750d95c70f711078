"""scikit-learn's bundled Wisconsin breast-cancer table: 30 real-valued features per tumour, label 1 = benign.

numpy and scikit-learn only (no TensorFlow): modelship runs the loader to fingerprint the data even when
the model is already in its store, and that check must stay fast.
"""
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split


def load(params):
    table = load_breast_cancer()
    x_train, x_test, y_train, y_test = train_test_split(
        table.data, table.target, test_size=float(params.get("test_size", 0.2)), stratify=table.target,
        random_state=0)
    # scikit-learn's names, in label order: 0 malignant, 1 benign (the positive class of the binary metrics).
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
            "class_names": [str(name) for name in table.target_names]}
