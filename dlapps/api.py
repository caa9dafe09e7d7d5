"""What scripts call: find a task, load a trained model, train, evaluate."""

from __future__ import annotations

from pathlib import Path

from dlapps.errors import ModelNotFoundError, PresetError
from dlapps.inference import Predictor


def tasks() -> list[str]:
    """The names of every installed task."""
    from dlapps.host import get_host

    return get_host().task_names()


def task_class(task) -> type:
    """The Task class of ``task``: a task name (looked up in the installed plugins), a Task class or a Task."""
    from dlapps.host import get_host
    from dlapps.task import Task

    if isinstance(task, Task):
        return type(task)
    if isinstance(task, type) and issubclass(task, Task):
        return task
    return get_host().task_class(task)


def resolve_task(task, config: dict | None = None):
    """A Task instance: ``task`` itself if it is one, else a new one of its class with ``config``."""
    from dlapps.task import Task

    if isinstance(task, Task):
        task.config.update(config or {})
        return task
    return task_class(task)(config)


def load(task, model_dir=None, preset: str | None = None) -> Predictor:
    """The predictor for ``task`` (a name or a Task class), from ``model_dir`` or the default location;
    or, with ``preset``, straight from a pretrained preset (a name or a local directory), untrained, for a
    task that predicts from one as it is (``Task.load_pretrained``)."""
    from dlapps import runtime, store

    task_cls = task_class(task)
    if preset is not None:
        if model_dir is not None:
            raise PresetError(f"expected a model directory or a preset, received both: '{model_dir}' and {preset!r}")
        runtime.configure()
        instance = task_cls()
        model = instance.load_pretrained(str(preset), instance.config)
        return Predictor(instance, model, meta={"task": task_cls.name, "preset": str(preset),
                                                "config": instance.config})
    path = Path(model_dir).expanduser() if model_dir else store.default_model_dir(task_cls.name)
    if not store.exists(path):
        out = f" --out {path}" if model_dir else ""
        raise ModelNotFoundError(
            f"no trained {task_cls.name!r} model at '{path}'; train one with: dlapps train {task_cls.name}{out}")
    runtime.configure()
    instance, model, meta, metrics = store.load(path, task_cls)
    return Predictor(instance, model, path, meta, metrics)


def train(task, data=None, **options) -> Predictor:
    """Train ``task`` (a name, a Task class or a Task) on ``data`` (default: its offline data) and save it.

    Options: ``epochs``, ``seed``, ``out``, ``preset``, ``batch_size``, ``config``
    (task config values), ``limit`` (examples per split), ``callbacks``, ``verbose``.
    Returns the trained model's Predictor.
    """
    from dlapps.training import train as train_task

    return train_task(resolve_task(task), data, **options)


def evaluate(task, model_dir=None, data=None) -> dict:
    """Evaluate a saved model on its held-out test split (updating metrics.json), or on ``data``."""
    from dlapps.training import evaluate as evaluate_predictor

    return evaluate_predictor(load(task, model_dir), data)
