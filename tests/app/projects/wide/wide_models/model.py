"""A small convolution and a softmax over the three classes."""
import keras


def build(params, spec):
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="image")
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(spec.n_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="wide")
