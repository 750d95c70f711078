"""Regression on the diabetes table: standardised features, one linear Dense unit, an output in score units.

With 300-odd training rows a hidden layer overfits (test R² about 0.2 against 0.43 for this linear model).

modelship calls `build(params, spec)` with the training config's `params` and a DataSpec (input shape and
dtype, task, number of classes, the raw training split) and compiles and trains what it returns.
"""
import keras


def build(params, spec):
    normalize = keras.layers.Normalization(name="normalize")
    normalize.adapt(spec.x_train)
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="features")
    x = normalize(inputs)
    x = keras.layers.Dense(1, name="standardised")(x)
    # The unit predicts a standardised score; the model answers in the target's own units.
    outputs = keras.layers.Rescaling(float(params["target_std"]), offset=float(params["target_mean"]),
                                     name="progression")(x)
    return keras.Model(inputs, outputs, name="diabetes_regressor")
