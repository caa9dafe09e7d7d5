"""The two-tower retrieval model: a user tower and an item tower meet in a dot product.

- User tower: the user's id embedding (randomly blanked in training, so the
  "unknown user" embedding learns to stand for anyone) and their recent history
  pooled with learned per-position weights.
- Item tower: the movie's id embedding and its genres (a frozen multi-hot table
  inside the model, so the saved model needs only movie indices).
- Both end in unit-length vectors; a score is their cosine similarity divided by
  the temperature, plus the movie's learned bias (how much anyone would watch
  it), which starts at the log of its training popularity. Without the bias a
  small dataset's model ranked below plain popularity: the logQ correction
  below takes popularity out of the in-batch logits, and unit vectors cannot
  learn it back from a few thousand ratings.

Training uses in-batch negatives: each example's positive movie is a negative
for the other examples of the batch. keras-rs removes accidental hits (the
same movie twice in a batch) and corrects the logits for how often popular
movies appear as negatives (logQ correction).
"""

from __future__ import annotations

import keras
import keras_rs
import numpy as np
from keras import ops

PACKAGE = "dlapps_recommendation"
ITEM_BIAS = "item_bias"


@keras.saving.register_keras_serializable(PACKAGE)
class IdDropout(keras.layers.Layer):
    """In training, replaces each id by 0 (unknown) with probability ``rate``."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.seed = rate, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=False):
        if not training or self.rate <= 0:
            return ids
        keep = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) >= self.rate
        return ops.where(keep, ids, ops.zeros_like(ids))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(PACKAGE)
class HistoryPooling(keras.layers.Layer):
    """A weighted mean of history embeddings; the weight of each position (recent or old) is learned.

    Padding (id 0) gets no weight; an empty history pools to zeros.
    """

    def build(self, embedded_shape, ids_shape=None):
        self.position_logits = self.add_weight(shape=(embedded_shape[1],), initializer="zeros",
                                               name="position_logits")

    def call(self, embedded, ids):
        present = ops.cast(ops.greater(ids, 0), embedded.dtype)
        weights = ops.exp(self.position_logits)[None, :] * present
        weights = weights / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1e-9)
        return ops.sum(embedded * weights[..., None], axis=1)


@keras.saving.register_keras_serializable(PACKAGE)
class InBatchLogits(keras.layers.Layer):
    """Query-candidate similarities over the batch, divided by a temperature, plus each candidate's bias
    (when given), logQ-corrected."""

    def __init__(self, temperature: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature
        self.correction = keras_rs.layers.SamplingProbabilityCorrection()

    def build(self, queries_shape, candidates_shape=None, candidate_probability_shape=None,
              candidate_bias_shape=None):
        pass

    def call(self, queries, candidates, candidate_probability, candidate_bias=None):
        logits = ops.matmul(queries, ops.transpose(candidates)) / self.temperature
        if candidate_bias is not None:
            logits = logits + ops.reshape(candidate_bias, (1, -1))
        return self.correction(logits, ops.reshape(candidate_probability, (1, -1)))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(PACKAGE)
class InBatchSoftmax(keras.losses.Loss):
    """Softmax cross-entropy where row ``i``'s positive is column ``i``; ``y_true`` holds the movie indices."""

    def __init__(self, name="in_batch_softmax", **kwargs):
        super().__init__(name=name, **kwargs)
        self.remove_hits = keras_rs.layers.RemoveAccidentalHits()

    def call(self, y_true, y_pred):
        labels = ops.eye(ops.shape(y_pred)[0], dtype=y_pred.dtype)
        logits = self.remove_hits(y_pred, labels, ops.reshape(y_true, (-1,)))
        return keras.losses.categorical_crossentropy(labels, logits, from_logits=True)


def build_two_tower(config: dict) -> keras.Model:
    """Inputs ``user`` (), ``history`` (history_length,) and ``item`` (); output the in-batch logits."""
    n_users, n_items, n_genres = config["n_users"], config["n_items"], max(1, len(config["genres"]))
    dim, length = config["embedding_dim"], config["history_length"]

    user = keras.Input(shape=(), dtype="int32", name="user")
    history = keras.Input(shape=(length,), dtype="int32", name="history")
    user_id = keras.layers.Embedding(n_users + 1, dim, name="user_embedding")(
        IdDropout(config["unknown_user_rate"], name="unknown_user_dropout")(user))
    watched = keras.layers.Embedding(n_items + 1, dim, name="history_embedding")(history)
    taste = keras.layers.Concatenate()([user_id, HistoryPooling(name="history_pooling")(watched, history)])
    user_tower = keras.Model({"user": user, "history": history}, _head(taste, dim, "user"), name="user_tower")

    item = keras.Input(shape=(), dtype="int32", name="item")
    item_id = keras.layers.Embedding(n_items + 1, dim, name="item_embedding")(item)
    genres = keras.layers.Embedding(n_items + 1, n_genres, trainable=False, name="item_genres")(item)
    features = keras.layers.Concatenate()([item_id, keras.layers.Dense(dim, name="genre_projection")(genres)])
    item_tower = keras.Model({"item": item}, _head(features, dim, "item"), name="item_tower")

    users = keras.Input(shape=(), dtype="int32", name="user")
    histories = keras.Input(shape=(length,), dtype="int32", name="history")
    items = keras.Input(shape=(), dtype="int32", name="item")
    probability = keras.layers.Embedding(n_items + 1, 1, trainable=False, name="item_sampling_probability")(items)
    bias = keras.layers.Embedding(n_items + 1, 1, name=ITEM_BIAS)(items)
    logits = InBatchLogits(config["temperature"], name="in_batch_logits")(
        user_tower({"user": users, "history": histories}), item_tower({"item": items}), probability, bias)
    return keras.Model({"user": users, "history": histories, "item": items}, logits, name="two_tower")


def _head(x, dim: int, name: str):
    x = keras.layers.Dense(2 * dim, activation="relu", name=f"{name}_hidden")(x)
    x = keras.layers.Dense(dim, name=f"{name}_projection")(x)
    return keras.layers.UnitNormalization(name=f"{name}_vector")(x)


def set_item_tables(model: keras.Model, genre_table: np.ndarray, train_counts: np.ndarray) -> None:
    """Fill the frozen tables (each movie's genres, multi-hot, and how often it is a training positive) and
    start each movie's bias at the log of its share of training positives (one more each: none is -inf)."""
    counts = np.asarray(train_counts, np.float64)  # row 0 is padding
    model.get_layer("item_tower").get_layer("item_genres").set_weights([genre_table.astype("float32")])
    model.get_layer("item_sampling_probability").set_weights([(counts / max(1.0, counts.sum()))
                                                              .reshape(-1, 1).astype("float32")])
    smoothed = np.log((counts + 1) / (counts + 1).sum())
    model.get_layer(ITEM_BIAS).set_weights([(smoothed - smoothed[1:].mean()).reshape(-1, 1).astype("float32")])


def item_scoring(model: keras.Model) -> tuple[float, np.ndarray | None]:
    """What a user's score for a movie is made of besides the two vectors: (1 / temperature, each movie's bias).

    A model saved before movies had a bias scores by the cosine alone: (1.0, zeros).
    """
    try:
        bias = np.asarray(model.get_layer(ITEM_BIAS).get_weights()[0], np.float32)[:, 0]
    except ValueError:
        return 1.0, None
    return 1.0 / float(model.get_layer("in_batch_logits").temperature), bias


def towers(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    return model.get_layer("user_tower"), model.get_layer("item_tower")
