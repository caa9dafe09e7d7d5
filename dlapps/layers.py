"""Keras pieces that every task's model needs the same way."""

from __future__ import annotations


def float32_output(units: int, activation=None, name: str = "outputs"):
    """The model's output layer, computed in float32 even under a mixed-precision policy, so that
    softmax, logits for a loss and scores stay exact (the dtype policy the runtime picks on GPUs is
    float16 or bfloat16 for every other layer)."""
    import keras

    return keras.layers.Dense(units, activation=activation, dtype="float32", name=name)


def predict_on_batch(model, batch):
    """``model.predict_on_batch(batch)``, one output row per input row on any strategy.

    A model built under MirroredStrategy runs a batch that was not distributed on every replica and
    concatenates the copies (replicas x batch rows); only the first copy is kept.
    """
    import keras
    import numpy as np

    rows = len(keras.tree.flatten(batch)[0])
    return keras.tree.map_structure(lambda output: np.asarray(output)[:rows], model.predict_on_batch(batch))
