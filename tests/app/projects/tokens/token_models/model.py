"""An embedding, averaged, to one sigmoid unit: P(common)."""
import keras

from token_models.data import VOCABULARY


def build(params, spec):
    inputs = keras.Input(spec.input_shape, dtype=spec.input_dtype, name="tokens")
    x = keras.layers.Embedding(VOCABULARY, 8, name="embed")(inputs)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="common")(x)
    return keras.Model(inputs, outputs, name="tokens")
