"""Learning the out-of-distribution check after training (``dlapps.ood`` scores and flags predictions):
the training split's features give the density, the validation split the threshold, the test split the
false-alarm rate."""

from __future__ import annotations

import numpy as np

from dlapps.inference import _row, preprocess_each, stack_inputs
from dlapps.ood import CALIBRATION_QUANTILE, MAX_HELD_OUT_INPUTS, MAX_TRAINING_INPUTS, FeatureDensity
from dlapps.task import Pieces, Task


def fit(task, predictor, dataset) -> dict:
    """Learn ``task``'s density from ``dataset.train`` and calibrate its threshold on the validation split;
    returns (and puts into ``task.config["ood"]``) what the model card shows: what the score measures, the
    threshold, the share of test inputs flagged (false alarms). A task without ``ood_features`` gets
    ``{"available": False, "why": task.ood_note}``."""
    task.feature_density = None
    task.config.pop("ood", None)
    if type(task).ood_features is Task.ood_features:  # no features to measure: nothing to run
        task.config["ood"] = ({"available": True, "rule": task.ood_note} if task.ood_by_rule else
                              {"available": False, "why": task.ood_note or "this task has no out-of-distribution check"})
        return task.config["ood"]
    train = dataset.train.take(_evenly(len(dataset.train), MAX_TRAINING_INPUTS))
    measured = feature_rows(task, predictor, train.inputs)
    kept = [i for i, f in enumerate(measured) if f is not None]
    if len(kept) < 2:
        task.config["ood"] = {"available": False, "why": f"this {type(predictor.model).__name__} model gives no "
                              "features to measure"}
        return task.config["ood"]
    groups = task.ood_groups(train)
    task.feature_density = FeatureDensity.fit(np.stack([measured[i] for i in kept]),
                                              None if groups is None else np.asarray(groups)[kept])
    validation = _scores(predictor, dataset.validation.take(_evenly(len(dataset.validation), MAX_HELD_OUT_INPUTS)))
    test = _scores(predictor, dataset.test.take(_evenly(len(dataset.test), MAX_HELD_OUT_INPUTS)))
    if not validation:
        task.feature_density = None
        task.config["ood"] = {"available": False, "why": "no validation input could be scored to calibrate the check"}
        return task.config["ood"]
    threshold = float(np.quantile(validation, CALIBRATION_QUANTILE))
    task.config["ood"] = {
        "available": True, "measures": task.ood_note, "threshold": round(threshold, 4),
        "calibrated_on": len(validation), "quantile": CALIBRATION_QUANTILE,
        "false_alarm_rate": round(float(np.mean(np.asarray(test) < threshold)), 4) if test else None,
        "checked_on": len(test),
    }
    return task.config["ood"]


def feature_rows(task, predictor, inputs, batch_size: int = 32) -> list:
    """``task.ood_features`` of the model's output for each input (None for one that cannot be read or has
    no features); an input split into pieces gives the mean of its pieces' features."""
    options = predictor.options()
    out = []
    for start in range(0, len(inputs), batch_size):
        prepared = preprocess_each(task, list(inputs[start:start + batch_size]), options)
        rows = [(n, x) for n, item in enumerate(prepared) if not isinstance(item, Exception)
                for x, _ in (item if isinstance(item, Pieces) else [item])]
        by_input: dict[int, list] = {}
        for chunk in range(0, len(rows), batch_size):
            part = rows[chunk:chunk + batch_size]
            outputs = predictor.forward(stack_inputs([x for _, x in part], task.pad_values), options)
            for i, (n, _) in enumerate(part):
                features = task.ood_features(_row(outputs, i))
                if features is not None:
                    by_input.setdefault(n, []).append(np.asarray(features, dtype=np.float64).ravel())
        out += [np.mean(by_input[n], axis=0) if n in by_input else None for n in range(len(prepared))]
    return out


def _scores(predictor, split) -> list[float]:
    scores = []
    for _, result in predictor.iter_predict(list(split.inputs)):
        if isinstance(result, dict) and isinstance(result.get("in_distribution"), (int, float)):
            scores.append(float(result["in_distribution"]))
    return scores


def _evenly(n: int, most: int) -> list[int]:
    return list(range(n)) if n <= most else [int(i) for i in np.linspace(0, n - 1, most).round()]
