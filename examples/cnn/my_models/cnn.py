"""A small CNN for 8x8x1 digit images: two 3x3 convolutions, then a softmax over the classes.

modelship calls `build(params, spec)` with the training config's `params` and a DataSpec (input shape and
dtype, task, number of classes, the raw training split) and compiles and trains what it returns.
"""
import keras


def build(params, spec):
    filters = int(params.get("filters", 16))
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="image")
    # Raw ink values 0..16 in, so clients send pixels as they are; the scaling lives in the model.
    x = keras.layers.Rescaling(1.0 / 16.0, name="scale")(inputs)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name="conv_1")(x)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(2 * filters, 3, padding="same", activation="relu", name="conv_2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(int(params.get("dense", 64)), activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(spec.n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digits_cnn")
