"""An MLP for the breast-cancer table: standardised inside the model, one sigmoid unit out (P(benign)).

modelship calls `build(params, spec)` with the training config's `params` and a DataSpec (input shape and
dtype, task, number of classes, the raw training split) and compiles and trains what it returns.
"""
import keras


def build(params, spec):
    normalize = keras.layers.Normalization(name="normalize")
    # The feature scales differ by four orders of magnitude; clients send raw measurements.
    normalize.adapt(spec.x_train)
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="measurements")
    x = normalize(inputs)
    for i, units in enumerate(params.get("hidden", [16])):
        x = keras.layers.Dense(int(units), activation="relu", name=f"hidden_{i}")(x)
    x = keras.layers.Dropout(float(params.get("dropout", 0.1)), seed=0, name="dropout")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="benign")(x)
    return keras.Model(inputs, outputs, name="breast_cancer_mlp")
