"""Builders of a user's project: a token model, and models whose output does not fit their task."""
import keras


def tokens(params, spec):
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="tokens")
    h = keras.layers.Embedding(50, params.get("dim", 8))(inputs)
    h = keras.layers.GlobalMaxPooling1D()(h)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))


def three_classes(params, spec):
    inputs = keras.Input(spec.input_shape)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


def logits(params, spec):
    inputs = keras.Input(spec.input_shape)
    return keras.Model(inputs, keras.layers.Dense(spec.n_classes)(inputs))
