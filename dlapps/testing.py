"""The shared test harness: one call gives a plugin a full test of the contract.

In a plugin's tests::

    from dlapps.testing import run_task_test

    def test_contract(tmp_path):
        run_task_test(MyTask, tmp_path, config={"units": 4}, bad_inputs=[("", InvalidInputError)])

It builds the model, fits it for one epoch on a few examples, evaluates, predicts
one input and many, saves, reloads, checks predictions are equal after the
reload, and checks that each bad input raises its documented error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def run_task_test(task_cls, tmp_path, config: dict | None = None, bad_inputs=(), data=None,
                  limit: int = 64, preset: str | None = None, examples: list | None = None):
    """Exercise ``task_cls`` end to end with a tiny config; returns the reloaded Predictor."""
    import pytest

    from dlapps import store
    from dlapps.inference import load
    from dlapps.training import train

    task = task_cls(config)
    assert task.name, f"{task_cls.__name__} must set `name`"
    out = Path(tmp_path) / "model"
    trained = train(task, data, epochs=1, out=out, preset=preset, limit=limit, verbose=0)

    assert store.exists(out), "the artifact was not saved"
    for file in (store.TASK_FILE, store.METRICS_FILE, store.CARD_FILE):
        assert (out / file).is_file(), f"the artifact lacks {file}"
    assert trained.metrics, "evaluate() returned no metrics"
    json.dumps(trained.metrics)

    inputs = examples or _test_inputs(task, data, limit)
    one = trained.predict(inputs[0])
    many = trained.predict(list(inputs))
    assert isinstance(one, dict), f"predict(one input) must return a dict, returned {type(one).__name__}"
    assert len(many) == len(inputs), "predict(list) must return one result per input"
    json.dumps(many)
    _assert_same(one, many[0])

    reloaded = load(task_cls, out)
    _assert_same(many, reloaded.predict(list(inputs)))

    for raw, error in bad_inputs:
        with pytest.raises(error):
            reloaded.predict(raw)
    return reloaded


def _test_inputs(task, data, limit: int) -> list:
    dataset = task.load_data(str(data)) if data else task.default_data()
    return list(dataset.test.head(min(limit, 8)).inputs)


def _assert_same(a, b, path: str = "result") -> None:
    """Results equal, with float tolerance for scores computed on another run of the model."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys differ: {a} vs {b}"
        for key in a:
            _assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert np.isclose(a, b, rtol=1e-4, atol=1e-5), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
