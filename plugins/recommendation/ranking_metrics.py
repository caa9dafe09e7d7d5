"""Recall@10, NDCG@10 and MRR over the whole catalogue, for the model and a most-popular baseline.

Both rankers go through the same code: ``Recommendation.score_matrix`` scores
every movie (movies the user has already watched excluded) and keras-rs's
ranking metrics compare the scores with the held-out movies.
"""

from __future__ import annotations

import numpy as np

from dlapps.plugin import metric_label, stack_inputs

K = 10
#: The logs key the validation callback (validation_ranking.py) writes and the task's early stopping watches.
MONITOR = f"val_recall_at_{K}"
RANKERS = {"model": False, "popularity": True}  # name -> score by popularity
LOW = -1e9  # stands in for -inf: excluded movies rank last


def evaluate_rankings(task, model, split, batch_size: int = 256, max_users: int = 10_000,
                      rankers: tuple = tuple(RANKERS)) -> dict:
    """Both rankers (or those named) on every test user, or on ``max_users`` of them spread evenly over a
    larger split."""
    import keras_rs

    if len(split) > max_users:
        split = split.take(even_sample(len(split), max_users))

    metrics = {name: {f"recall_at_{K}": keras_rs.metrics.RecallAtK(k=K, shuffle_ties=False),
                      f"ndcg_at_{K}": keras_rs.metrics.NDCG(k=K),
                      "mrr": keras_rs.metrics.MeanReciprocalRank(shuffle_ties=False)} for name in rankers}
    catalogue, evaluated, dropped = task.require_knowledge().catalogue, 0, 0
    options = task.default_options()
    for start in range(0, len(split), batch_size):
        queries, relevant = [], []
        for query, targets in zip(split.inputs[start:start + batch_size], split.targets[start:start + batch_size]):
            known = catalogue.indices(query["history"]) > 0
            wanted = catalogue.indices(np.atleast_1d(targets))  # a validation event holds one movie
            dropped += int(np.sum(~known) + np.sum(wanted == 0))
            if np.any(wanted):
                queries.append({"user": query["user"], "history": np.asarray(query["history"])[known]})
                relevant.append(wanted[wanted > 0])
        if not queries:
            continue
        batch = stack_inputs([task.preprocess(q, options)[0] for q in queries])
        truth = np.zeros((len(queries), len(catalogue) + 1), np.float32)
        for row, wanted in enumerate(relevant):
            truth[row, wanted] = 1.0
        for name in rankers:
            scores = task.score_matrix(model, batch, popularity=RANKERS[name])
            scores = np.where(np.isfinite(scores), scores, LOW)
            for metric in metrics[name].values():
                metric.update_state(truth[:, 1:], scores[:, 1:])
        evaluated += len(queries)
    result = {}
    for name in rankers:
        prefix = "" if name == "model" else f"{name}_"
        result.update({prefix + key: round(float(m.result()), 4) for key, m in metrics[name].items()})
    if set(RANKERS) <= set(rankers):
        baseline = result[f"popularity_recall_at_{K}"]
        result[f"recall_at_{K}_vs_popularity"] = round(result[f"recall_at_{K}"] / baseline, 2) if baseline else None
    result["users_evaluated"] = evaluated
    if dropped:
        result["unknown_movies_dropped"] = dropped
    return result


def even_sample(size: int, count: int) -> np.ndarray:
    """``count`` positions spread evenly over ``0 .. size - 1``, first and last included; always the same."""
    return np.linspace(0, size - 1, count).astype(np.int64)


def format_ranking_metrics(metrics: dict) -> str:
    lines = [f"{'metric':<14}{'model':>9}{'popularity':>12}"]
    for key in (f"recall_at_{K}", f"ndcg_at_{K}", "mrr"):
        if key in metrics:
            lines.append(f"{metric_label(key):<14}{metrics[key]:>9.4f}"
                         f"{metrics.get('popularity_' + key, float('nan')):>12.4f}")
    ratio = metrics.get(f"recall_at_{K}_vs_popularity")
    if ratio is not None:
        lines.append(f"Recall@{K} is {ratio:.2f}x the most-popular baseline's "
                     f"({metrics.get('users_evaluated', 0):,} users, held out by time).")
    return "\n".join(lines)
