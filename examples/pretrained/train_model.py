"""Trains the small Keras model this example ships, outside modelship, and saves it as model.keras.

    python examples/pretrained/train_model.py     # from the repository root, in the project's venv

modelship never runs this script: train.yaml names the saved file (`artifact: model.keras`), whose bytes
enter the model id, so re-running it (and committing the new file) is what ships a new model.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from my_models.data import load  # noqa: E402


def main() -> None:
    data = load()
    keras.utils.set_random_seed(0)
    normalize = keras.layers.Normalization(name="normalize")
    normalize.adapt(data["x_train"])
    inputs = keras.Input((64,), name="pixels")
    x = normalize(inputs)
    x = keras.layers.Dense(64, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(len(data["class_names"]), activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs, name="pretrained_digits")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data["x_train"], data["y_train"], epochs=20, batch_size=32, validation_split=0.1, verbose=2)
    _, accuracy = model.evaluate(data["x_test"], data["y_test"], verbose=0)
    model.save(HERE / "model.keras")
    print(f"saved {HERE / 'model.keras'} (test accuracy {accuracy:.4f})")


if __name__ == "__main__":
    main()
