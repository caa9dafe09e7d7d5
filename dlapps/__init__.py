"""dlapps: deep-learning applications behind one plugin host.

Script users::

    import dlapps
    dlapps.tasks()                                   # what is installed
    p = dlapps.load("image-classification")          # a Predictor
    p.predict("a.png"); p.predict([path, array, pil_image])

Plugin authors subclass ``dlapps.Task`` and implement ``dlapps_register_tasks``
with ``@dlapps.hookimpl``. Importing this package does not import TensorFlow.
"""

from dlapps.errors import (
    DataError,
    DlappsError,
    InvalidInputError,
    ModelNotFoundError,
    PresetError,
    UnknownTaskError,
    UnsafeModelError,
)
from dlapps.hookspecs import hookimpl
from dlapps.inference import Predictor, load
from dlapps.task import Dataset, Split, Task

__version__ = "0.1.0"


def tasks() -> list[str]:
    """The names of every installed task."""
    from dlapps.host import get_host

    return get_host().task_names()


def train(task_name: str, data=None, **options) -> Predictor:
    """Train a task (see ``dlapps.training.train`` for the options) and return its Predictor."""
    from dlapps.training import train as _train

    return _train(task_name, data, **options)


def evaluate(task_name: str, model_dir=None, data=None) -> dict:
    """Evaluate a saved model on its held-out split, or on ``data``; returns the metrics."""
    from dlapps.training import evaluate as _evaluate

    return _evaluate(task_name, model_dir, data)


__all__ = [
    "DataError", "Dataset", "DlappsError", "InvalidInputError", "ModelNotFoundError", "Predictor",
    "PresetError", "Split", "Task", "UnknownTaskError", "UnsafeModelError", "evaluate", "hookimpl",
    "load", "tasks", "train",
]
