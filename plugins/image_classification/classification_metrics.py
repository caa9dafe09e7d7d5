"""Accuracy, per-class precision / recall and the confusion matrix, by scikit-learn."""

from __future__ import annotations

import numpy as np


def classification_report(predictor, split, labels: list[str], classical=None) -> dict:
    """Accuracy, macro-F1, per-class scores and the confusion matrix of the model on ``split``, beside the
    majority class's accuracy and, when ``classical`` (a fitted ``ClassicalBaseline``) is given, its accuracy
    and macro-F1 on the same images."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    index = {label: i for i, label in enumerate(labels)}
    predicted, expected, unreadable, readable = [], [], [], []
    targets = np.asarray(split.targets)
    for i, result in predictor.iter_predict(split.inputs, batch_size=64):
        if isinstance(result, Exception):
            unreadable.append(f"{split.name(i)}: {result}")
            continue
        predicted.append(index[result["label"]])
        expected.append(int(targets[i]))
        readable.append(i)
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        expected, predicted, labels=classes, zero_division=0)
    majority = np.bincount(expected, minlength=len(labels)).max() / len(expected) if expected else 0.0
    baseline = {}
    if classical is not None and expected:
        from dlapps.plugin import read_image

        guessed = classical.predict([read_image(split.inputs[i]) for i in readable])
        baseline = {"classical_accuracy": float(accuracy_score(expected, guessed)),
                    "classical_macro_f1": float(f1_score(expected, guessed, labels=classes, average="macro",
                                                         zero_division=0))}
    return {
        "accuracy": float(accuracy_score(expected, predicted)) if expected else 0.0,
        "macro_f1": float(f1_score(expected, predicted, labels=classes, average="macro", zero_division=0))
        if expected else 0.0,
        "majority_accuracy": float(majority),
        **baseline,
        "examples": len(expected),
        "unreadable": unreadable,
        "per_class": {
            label: {"precision": float(precision[i]), "recall": float(recall[i]),
                    "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {"labels": labels,
                             "matrix": confusion_matrix(expected, predicted, labels=classes).tolist()},
    }


def format_report(metrics: dict) -> str:
    lines = [f"accuracy: {metrics['accuracy']:.4f} on {metrics['examples']} examples "
             f"(always predicting the most frequent class: {metrics.get('majority_accuracy', float('nan')):.4f})"]
    if "macro_f1" in metrics:
        lines.append(f"macro-F1: {metrics['macro_f1']:.4f}")
    if "classical_accuracy" in metrics:
        lines.append(f"classical baseline (logistic regression on gradient and colour histograms): accuracy "
                     f"{metrics['classical_accuracy']:.4f}, macro-F1 {metrics['classical_macro_f1']:.4f}")
    if metrics.get("unreadable"):
        lines.append(f"unreadable: {len(metrics['unreadable'])} (first: {metrics['unreadable'][0]})")
    lines += ["", f"{'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}"]
    for label, row in metrics["per_class"].items():
        lines.append(f"{label:<20} {row['precision']:>9.4f} {row['recall']:>9.4f} {row['f1']:>9.4f} "
                     f"{row['support']:>8}")
    labels = metrics["confusion_matrix"]["labels"]
    width = max(5, *(len(label) for label in labels)) + 1
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * width + "".join(f"{label:>{width}}" for label in labels)]
    for label, row in zip(labels, metrics["confusion_matrix"]["matrix"]):
        lines.append(f"{label:>{width}}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
