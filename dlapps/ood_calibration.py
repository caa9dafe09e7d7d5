"""Learning the out-of-distribution check after training (``dlapps.ood`` scores and flags predictions):
the training split's features give the density, the validation split the threshold, the test split the
false-alarm rate."""

from __future__ import annotations

import numpy as np

from dlapps.inference import _row, preprocess_each, stack_inputs
from dlapps.ood import CALIBRATION_QUANTILE, MAX_HELD_OUT_INPUTS, MAX_TRAINING_INPUTS, InDistribution, blocks_of
from dlapps.task import Pieces, Task

#: The first training inputs are measured alone first: a model without features is found out at once.
PROBE = 32


def fit(task, predictor, dataset, validation_held_out: bool = True) -> dict:
    """Learn ``task``'s density from ``dataset.train`` and calibrate its threshold on the validation split;
    returns (and puts into ``task.config["ood"]``) what the model card shows: what the score measures, the
    threshold, the share of test inputs flagged (false alarms). A task without ``ood_features`` gets
    ``{"available": False, "why": task.ood_note}`` (or its rule, ``ood_by_rule``). ``validation_held_out`` False:
    the model was trained on the validation split too (``dlapps tune``'s final model), which the card says."""
    task.feature_density = None
    task.config.pop("ood", None)
    if type(task).ood_features is Task.ood_features:  # no features to measure: nothing to run
        task.config["ood"] = ({"available": True, "rule": task.ood_note} if task.ood_by_rule else
                              {"available": False, "why": task.ood_note or "the task gives no features to measure (Task.ood_features)"})
        return task.config["ood"]
    train = dataset.train.take(_evenly(len(dataset.train), MAX_TRAINING_INPUTS))
    probe = feature_rows(task, predictor, list(train.inputs[:PROBE]))
    if not any(probe):  # a model of a family without features (a preset), or inputs that cannot be read
        read = sum(1 for pieces in probe if pieces is not None)
        task.config["ood"] = {"available": False, "why": (
            f"this {type(predictor.model).__name__} model gives no features to measure" if read else
            f"none of the first {len(probe)} training inputs could be read to measure them")}
        return task.config["ood"]
    rows = probe + feature_rows(task, predictor, list(train.inputs[PROBE:]))
    groups = task.ood_groups(train)
    # Every piece (a long recording's windows) is a sample of the density, as every piece is scored.
    measured = [(piece, None if groups is None else groups[i]) for i, pieces in enumerate(rows)
                for piece in pieces or []]
    if len(measured) < 2:
        task.config["ood"] = {"available": False, "why": "fewer than 2 training inputs could be measured"}
        return task.config["ood"]
    density = InDistribution.fit([piece for piece, _ in measured],
                                 None if groups is None else np.asarray([group for _, group in measured]))
    validation = [pieces for pieces in feature_rows(task, predictor, _held_out(dataset.validation)) if pieces]
    if not validation:
        task.config["ood"] = {"available": False, "why": "no validation input could be scored to calibrate the check"}
        return task.config["ood"]
    # Each block's distances in units of the median held-out one, so that no block outweighs the others.
    distances = [density.block_scores(piece) for pieces in validation for piece in pieces]
    density.typical = {name: float(np.median([-d[name] for d in distances])) or 1.0 for name in density.densities}
    task.feature_density = density

    def input_scores(rows):
        return [float(np.mean([density.score(piece) for piece in pieces])) for pieces in rows]

    calibration = input_scores(validation)
    test = input_scores([pieces for pieces in feature_rows(task, predictor, _held_out(dataset.test)) if pieces])
    threshold = float(np.quantile(calibration, CALIBRATION_QUANTILE))
    task.config["ood"] = {
        "available": True, "measures": task.ood_note, "threshold": round(threshold, 4),
        "calibrated_on": len(calibration), "quantile": CALIBRATION_QUANTILE,
        "false_alarm_rate": round(float(np.mean(np.asarray(test) < threshold)), 4) if test else None,
        "checked_on": len(test),
    }
    if not validation_held_out:
        task.config["ood"]["validation_trained_on"] = True
    return task.config["ood"]


def feature_rows(task, predictor, inputs, batch_size: int = 32) -> list:
    """For each input, the ``blocks_of(task.ood_features(...))`` of each of its pieces (one for an input not
    split into pieces): an empty list when it gives no features, None when it cannot be read."""
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
                    by_input.setdefault(n, []).append(blocks_of(features))
        out += [None if isinstance(item, Exception) else by_input.get(n, []) for n, item in enumerate(prepared)]
    return out


def _held_out(split) -> list:
    return list(split.take(_evenly(len(split), MAX_HELD_OUT_INPUTS)).inputs)


def _evenly(n: int, most: int) -> list[int]:
    return list(range(n)) if n <= most else [int(i) for i in np.linspace(0, n - 1, most).round()]
