"""What the benchmarks share: the models they measure, trained at full size or, in smoke mode
(``python benchmarks/run.py --smoke``), for one epoch on a few examples, so that every benchmark runs end to end in
seconds (the test suite runs them so, and a benchmark cannot rot unseen). Smoke figures mean nothing."""

from __future__ import annotations

#: Smoke mode: set by ``run.py --smoke``.
SMOKE = {"on": False}
#: How a smoke run trains: one epoch on the first examples of each split.
SMOKE_TRAINING = {"epochs": 1, "limit": 24}


def smoke() -> bool:
    return SMOKE["on"]


def sized(full, tiny):
    """``full`` in a real run, ``tiny`` in a smoke run."""
    return tiny if smoke() else full


def train(task, data=None, **options):
    """``dlapps.train`` quietly; in smoke mode for one epoch on a few examples."""
    import dlapps

    if smoke():
        options = {**options, **SMOKE_TRAINING}
    return dlapps.train(task, data, verbose=0, **options)


def load_or_train(task: str):
    """The default model of ``task`` from DLAPPS_HOME, trained first when there is none."""
    import dlapps
    from dlapps.errors import ModelNotFoundError

    try:
        return dlapps.load(task)
    except ModelNotFoundError:
        return train(task)
