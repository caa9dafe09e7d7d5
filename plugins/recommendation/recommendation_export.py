"""The recommender as an exported graph: a known user's index and recent history in, the top-k movies out."""

from __future__ import annotations

from dlapps.plugin import ExportGraph


def recommender_graph(model, item_vectors, config: dict, options: dict) -> ExportGraph:
    """The user tower against every movie's item-tower vector (``item_vectors``, row 0 padding, a constant of
    the graph): the two towers' scores as ``score_matrix`` gives them for a known user, the movies in ``seen``
    left out, and the ``k`` best, as ``forward`` ranks them."""
    import tensorflow as tf

    from dlapps_plugins.recommendation.two_tower_model import item_scoring

    user_tower = model.get_layer("user_tower")
    scale, bias = item_scoring(model)
    items = tf.constant(item_vectors * scale)
    bias = tf.constant(bias if bias is not None else item_vectors[:, 0] * 0.0)
    k = int(options["k"])
    padding = -1e9  # a score below any real one

    def recommend(user, history, seen):
        scores = tf.matmul(user_tower({"user": user, "history": history}, training=False), items, transpose_b=True)
        scores = scores + bias[None, :]
        left_out = tf.reduce_max(tf.one_hot(seen, tf.shape(items)[0]), axis=1)  # index 0 (padding) is always in
        left_out = tf.maximum(left_out, tf.one_hot(tf.zeros_like(user), tf.shape(items)[0]))
        best_scores, best = tf.math.top_k(tf.where(left_out > 0, padding, scores), k=k)
        return {"items": best, "scores": best_scores}

    length = int(config["history_length"])
    return ExportGraph(
        recommend,
        inputs=[("user", (None,), "int32", "(batch,) the user's index (assets/: the users known in training); 0 "
                                           "for a user unknown to the model"),
                ("history", (None, length), "int32", f"(batch, {length}) the indices of the movies the user rated "
                                                       "last, oldest first, padded with 0 at the front"),
                ("seen", (None, None), "int32", "(batch, any) the indices of every movie to leave out (the ones "
                                                "the user has seen), padded with 0")],
        outputs={"items": f"(batch, {k}) the indices of the {k} best movies (assets/items.csv names them), best "
                          "first",
                 "scores": f"(batch, {k}) their scores (the two towers' cosine similarity divided by the "
                           "temperature, plus the movie's learned bias)"},
        inside=f"the user tower, its score against every movie's precomputed item vector (the cosine divided by "
               f"the temperature, plus the movie's bias), leaving out the seen movies, and the top {k}",
        outside="mapping user and movie ids to indices and back (assets/), the most-popular ranking for a user with "
                "neither a known id nor a history, similar-movie queries, and the 'because you watched' explanations")
