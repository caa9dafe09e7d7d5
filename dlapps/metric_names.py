"""A person's name for every metric key: in the studio's tabs, the model card, ``dlapps eval`` and the
baseline warnings ("Recall@10 of recommending the most popular movies", not ``popularity_recall_at_10``)."""

from __future__ import annotations

#: A person's name for the metric keys tasks share (a task names its own in ``Task.metric_names``).
METRIC_NAMES = {
    "accuracy": "accuracy", "macro_f1": "macro-F1", "examples": "test examples",
    "map": "mAP@[.5:.95]", "map_50": "mAP@.5", "map_75": "mAP@.75", "map_small": "mAP@[.5:.95] of small objects",
    "map_medium": "mAP@[.5:.95] of medium objects", "map_large": "mAP@[.5:.95] of large objects",
    "images": "test images", "objects": "test objects",
    "bleu": "BLEU", "chrf": "chrF", "exact_match": "exact matches", "sentences": "test sentences",
    "wer": "word error rate", "cer": "character error rate", "exact": "exact transcripts",
    "utterances": "test utterances",
    "recall_at_10": "Recall@10", "ndcg_at_10": "NDCG@10", "mrr": "MRR", "users_evaluated": "test users",
    "frechet_distance": "Fréchet distance",
    "loss": "training loss", "val_loss": "validation loss", "val_accuracy": "validation accuracy",
    "val_recall_at_10": "validation Recall@10",
}


def metric_label(key: str, task=None) -> str:
    """A person's name for a metric key: the task's own (``metric_names``), a shared one (``METRIC_NAMES``), or,
    for a baseline's figure, the metric's name and what the baseline does ("Recall@10 of recommending the most
    popular movies" for ``popularity_recall_at_10``; the same prefix or suffix names the baseline's other
    figures: ``popularity_mrr``). Other keys read with spaces for underscores."""
    names = {**METRIC_NAMES, **(getattr(task, "metric_names", None) or {})}
    if key in names:
        return names[key]
    for baseline in baselines_of(task):
        if key == baseline.baseline:
            return f"{metric_label(baseline.metric, task)} of {baseline.what}"
        prefix, found, suffix = baseline.baseline.partition(baseline.metric)
        inner = key[len(prefix):len(key) - len(suffix)]
        if found and (prefix or suffix) and key.startswith(prefix) and key.endswith(suffix) and inner in names:
            return f"{names[inner]} of {baseline.what}"
    return key.replace("_", " ")


def baselines_of(task) -> tuple:
    """A task's baselines (``Task.baseline``: one ``Baseline``, a tuple of them, or None), as a tuple."""
    declared = getattr(task, "baseline", None)
    if declared is None:
        return ()
    return tuple(declared) if isinstance(declared, (tuple, list)) else (declared,)
