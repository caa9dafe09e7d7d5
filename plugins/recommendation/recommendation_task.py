"""The recommendation task: a user (or a movie) in, a ranked list of movies out."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import Baseline, InvalidInputError, Option, Param, PerModel, Task
from dlapps_plugins.recommendation.ranking_metrics import MONITOR

#: What ``preprocess`` makes of a query: a user's recommendations, a movie's look-alikes, or the popular movies.
USER, SIMILAR, POPULAR = 0, 1, 2
#: The planned softmax temperature is 0.1 from this many training ratings on, 0.2 below.
SHARP_TEMPERATURE_FROM = 75_000


class Recommendation(Task):
    name = "recommendation"
    title = "Recommendation"
    description = ("A user (or a movie) in, a ranked list of movies out: two-tower retrieval with "
                   "\"because you watched\", similar movies and cold start.")
    input_kind = "id"
    output_kind = "ranked-items"
    ood_by_rule = True
    ood_note = ("a user it knows nothing of (cold start: not in the training data and no history given) or one with "
                "fewer known ratings than 98% of its training users (`in_distribution`: the known ratings)")
    training_seconds = 195  # the default model on 2 CPU cores (benchmarks/)
    baseline = Baseline("recall_at_10", "popularity_recall_at_10", "recommending the most popular movies")
    input_field = "user"
    metric_names = {"recall_at_10_vs_popularity": "Recall@10 in multiples of the most-popular baseline's (x)",
                    "unknown_movies_dropped": "held-out movies the model does not know (left out)"}
    monitor, monitor_mode = MONITOR, "max"  # the validation users' Recall@10 (validation_ranking.py)
    predict_options = {
        "k": Option(int, 10, "how many movies to return", min=1, max=lambda config: config["n_items"]),
        "exclude_seen": Option(bool, True, "leave out movies the user has already watched"),
    }
    default_config = {
        "n_users": 0,             # set from the data
        "n_items": 0,
        "genres": [],
        "embedding_dim": 64,
        "history_length": 50,     # the most recent movies the user tower looks at
        "max_seen": 2000,         # at most this many watched movies are left out of a user's results
        "temperature": 0.1,       # planned from the number of ratings (plan)
        "unknown_user_rate": 0.5,  # share of training examples that hide the user id (teaches cold users)
        "test_per_user": 2,
        "max_eval_users": 10_000,  # evaluation ranks the whole catalogue for at most this many test users
        "validation_per_user": 1,
        "epochs": 10,             # about 5 s each on 2 CPU cores; early stopping usually ends it sooner
        "batch_size": 256,
        "patience": 2,
        "patience_steps": 300,    # validation Recall@10 of a few hundred users is noisy: wait 300 steps for better
        "min_steps": 1500,        # 10 passes over a few thousand ratings is too few to learn tastes
        "schedule": "plateau",  # halve the rate on plateaus: measured so; the core plans the steps
        "learning_rate": 1e-3,
    }
    search_space = {  # dlapps tune recommendation
        "learning_rate": Param(float, 3e-4, 1e-2, log=True),
        "embedding_dim": Param(choices=(32, 64, 128)),
        "history_length": Param(choices=(20, 50, 100)),
        "temperature": Param(float, 0.03, 0.3, log=True),
        "unknown_user_rate": Param(float, 0.1, 0.7),
    }

    def __init__(self, config=None):
        super().__init__(config)
        #: What the model knows besides its weights (movies, users' histories, popularity): set by ``adapt``
        #: when training, by ``load_state`` when a saved model is loaded.
        self.knowledge = None
        self._item_vectors = PerModel()  # computed once per model, shared by the server's threads
        self._validation = None

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.recommendation.movielens_data import movielens_dataset
        from dlapps_plugins.recommendation.synthetic_movielens import default_folder

        return movielens_dataset(default_folder(), seed, named="Generated MovieLens-format ratings",
                                 **self._split_sizes())

    def load_data(self, path, seed=0):
        from dlapps_plugins.recommendation.movielens_data import movielens_dataset

        return movielens_dataset(path, seed, **self._split_sizes())

    def _split_sizes(self) -> dict:
        return {"test_per_user": int(self.config["test_per_user"]),
                "validation_per_user": int(self.config["validation_per_user"])}

    # -- what the model knows: movies, users and their histories -------------
    def require_knowledge(self):
        """The task's knowledge; a clear error when there is none (neither trained nor loaded)."""
        if self.knowledge is None:
            raise InvalidInputError("this recommendation task knows no movies yet: train it or load a model")
        return self.knowledge

    def adapt(self, dataset):
        from dlapps_plugins.recommendation.knowledge import Knowledge

        self.knowledge = Knowledge.from_dataset(dataset)
        self.config.update(self.knowledge.sizes())
        self._validation = dataset.validation  # ranked after every epoch (callbacks)

    def plan(self, dataset, recipe):
        """The softmax temperature follows the number of training ratings: a sharper one (0.1) fits tastes
        from plenty of ratings, a softer one (0.2) overfits less on a few thousand (measured on generated
        MovieLens folders: Recall@10 0.15 against 0.11 at 22,000 ratings, 0.179 against 0.169 the other way
        at the default 110,000)."""
        ratings = len(dataset.train)
        soft = ratings < SHARP_TEMPERATURE_FROM
        recipe.choose("temperature", 0.2 if soft else 0.1,
                      f"{ratings:,} training ratings: " + (
                          f"fewer than {SHARP_TEMPERATURE_FROM:,}, a softer softmax overfits less" if soft else
                          f"at least {SHARP_TEMPERATURE_FROM:,}, a sharp softmax learns more from them"))

    def callbacks(self, defaults, run_dir):
        from dlapps_plugins.recommendation.validation_ranking import ValidationRanking

        return [ValidationRanking(self, self._validation), *defaults]

    def save_state(self, folder):
        self.require_knowledge().save(folder)

    def load_state(self, folder):
        from dlapps_plugins.recommendation.knowledge import Knowledge

        self.knowledge = Knowledge.load(folder)
        self.forget_item_vectors()

    def forget_item_vectors(self) -> None:
        """Drop the movies' vectors computed so far: the item tower's weights have changed."""
        self._item_vectors.clear()

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.recommendation.two_tower_model import build_two_tower, set_item_tables

        knowledge = self.require_knowledge()
        model = build_two_tower(config)
        set_item_tables(model, knowledge.genre_table(config["genres"]), knowledge.train_counts)
        return model

    def compile_model(self, model, jit_compile=False):
        import keras

        from dlapps_plugins.recommendation.two_tower_model import InBatchSoftmax

        model.compile(optimizer=keras.optimizers.Adam(self.config["learning_rate"]), loss=InBatchSoftmax(),
                      jit_compile=jit_compile)

    def custom_objects(self):
        from dlapps_plugins.recommendation import two_tower_model as m

        return {"IdDropout": m.IdDropout, "HistoryPooling": m.HistoryPooling, "InBatchLogits": m.InBatchLogits,
                "InBatchSoftmax": m.InBatchSoftmax}

    def export_graph(self, model, options):
        from dlapps_plugins.recommendation.recommendation_export import recommender_graph

        return recommender_graph(model, self.item_vectors(model), self.config, options)

    def training_example(self, raw, target):
        knowledge = self.require_knowledge()
        history = knowledge.catalogue.indices(raw["history"][-self.config["history_length"]:])
        x = {"user": np.int32(knowledge.user_index(raw["user"])),
             "history": _left_pad(history, self.config["history_length"]),
             "item": np.int32(knowledge.catalogue.index(target))}
        return x, x["item"]

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        """A query -> (what the model scores with, what postprocess reports about the query).

        The model input holds only what ``score_matrix`` reads (mode, user, history, seen, item);
        the query id, the history's length and whether the user is known go to the context.
        """
        from dlapps_plugins.recommendation.queries import parse_query

        query = parse_query(raw)
        knowledge, length = self.require_knowledge(), self.config["history_length"]
        if "similar_to" in query:
            item = knowledge.item_index(query["similar_to"])
            return (self._model_input(SIMILAR, 0, np.zeros(length, np.int32), [item], item),
                    {"mode": SIMILAR, "query": query["similar_to"], "known": True, "history_length": 0})
        user = query.get("user")
        if "history" in query:
            history = knowledge.history_indices(query["history"])
        else:
            history = knowledge.history_of(user) if user is not None else []
        user_index = knowledge.user_index(user) if user is not None else 0
        mode = USER if user_index or len(history) else POPULAR
        seen = history[-self.config["max_seen"]:]
        return (self._model_input(mode, user_index, _left_pad(history, length), seen, 0),
                {"mode": mode, "query": user, "known": bool(user_index), "history_length": len(history)})

    def _model_input(self, mode, user, history, seen, item) -> dict:
        return {"mode": np.int32(mode), "user": np.int32(user), "history": history,
                "seen": _left_pad(np.unique(np.asarray(seen, np.int32)), self.config["max_seen"]),
                "item": np.int32(item)}

    def score_matrix(self, model, batch, exclude_seen=True, popularity=False):
        """Scores of every movie for every query of ``batch``: (queries, movies + 1), column 0 is padding.

        Users are scored by the two towers (cosine / temperature + the movie's bias), movies by item-to-item
        cosine similarity, cold users (and everyone when ``popularity``) by training popularity.
        Excluded movies score -inf. Evaluation and ``forward`` both rank with it.
        """
        from dlapps_plugins.recommendation.two_tower_model import item_scoring

        items = self.item_vectors(model)
        mode = batch["mode"]
        queries = items[batch["item"]]
        users = (mode == USER) & (not popularity)
        scores = queries @ items.T
        if users.any():
            user_tower = model.get_layer("user_tower")
            # A direct call, not predict_on_batch: under MirroredStrategy (a model trained on several devices)
            # predict_on_batch runs the whole batch on every replica and returns replicas x batch rows.
            asked = {"user": batch["user"][users], "history": batch["history"][users]}
            scale, bias = item_scoring(model)
            scores[users] = np.asarray(user_tower(asked, training=False)) @ items.T * scale
            if bias is not None:
                scores[users] += bias[None, :]
        cold = np.ones_like(users) if popularity else mode == POPULAR
        scores[cold] = self.require_knowledge().popularity_share()[None, :]
        scores[:, 0] = -np.inf
        if exclude_seen:
            np.put_along_axis(scores, batch["seen"].astype(np.int64), -np.inf, axis=1)
        else:  # a movie is never its own look-alike
            similar = np.flatnonzero(mode == SIMILAR)
            scores[similar, batch["item"][similar]] = -np.inf
        return scores

    def item_vectors(self, model) -> np.ndarray:
        """Every movie's item-tower vector (row 0 is padding), computed once per model."""
        def compute(model):
            tower = model.get_layer("item_tower")
            indices = np.arange(self.config["n_items"] + 1, dtype=np.int32)
            vectors = np.asarray(tower.predict({"item": indices}, batch_size=4096, verbose=0), np.float32)
            vectors[0] = 0.0
            return vectors

        return self._item_vectors.get(model, compute)

    def forward(self, model, batch, options):
        k = options["k"]
        scores = self.score_matrix(model, batch, exclude_seen=options["exclude_seen"])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        because, similarity = self._because(model, top, batch["history"])
        return {"items": top, "scores": np.take_along_axis(scores, top, axis=1), "because": because,
                "because_similarity": similarity}

    def _because(self, model, top, history):
        """For each recommended movie, the movie of the user's recent history most like it, and how alike."""
        items = self.item_vectors(model)
        similarity = np.einsum("bkd,bhd->bkh", items[top], items[history])
        similarity[np.broadcast_to((history == 0)[:, None, :], similarity.shape)] = -np.inf
        best = similarity.argmax(axis=2)[..., None]  # (queries, k, 1): a position in the history
        watched = np.take_along_axis(np.broadcast_to(history[:, None, :], similarity.shape), best, axis=2)
        return watched[..., 0], np.take_along_axis(similarity, best, axis=2)[..., 0]

    def postprocess(self, output, context, options):
        from dlapps_plugins.recommendation.queries import ranked_result

        return ranked_result(self.require_knowledge(), output, context)

    def summarize(self, result):
        head = (f"like {result['similar_to']['title']}" if "similar_to" in result
                else "popular (cold start)" if result.get("cold_start") else "for you")
        return f"{head}: " + "; ".join(item["title"] for item in result["items"])

    def evaluate(self, predictor, split):
        from dlapps_plugins.recommendation.ranking_metrics import evaluate_rankings

        return evaluate_rankings(self, predictor.model, split, max_users=int(self.config["max_eval_users"]))

    def format_metrics(self, metrics):
        from dlapps_plugins.recommendation.ranking_metrics import format_ranking_metrics

        return format_ranking_metrics(metrics)

    # -- UI ----------------------------------------------------------------
    def example_inputs(self, split, limit=8):
        """A few test users' ids (the default would save whole queries with their histories)."""
        users = [int(split.inputs[i]["user"]) for i in range(min(limit, len(split)))]
        return [(user, str(user)) for user in users]

    def ui(self, predictor):
        from dlapps_plugins.recommendation.recommendation_ui import recommendation_ui

        recommendation_ui(self, predictor)


def _left_pad(indices, length: int) -> np.ndarray:
    """The last ``length`` indices, most recent last, with zeros in front."""
    out = np.zeros(length, np.int32)
    indices = np.asarray(indices, np.int32)[-length:] if length else []
    if len(indices):
        out[-len(indices):] = indices
    return out
