"""What scripts call: find a task, load a trained model, train, evaluate."""

from __future__ import annotations

from pathlib import Path

from dlapps.errors import InvalidInputError, ModelNotFoundError, PresetError
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
    from dlapps import store

    task_cls = task_class(task)
    if preset is not None:
        if model_dir is not None:
            raise PresetError(f"expected a model directory or a preset, received both: '{model_dir}' and {preset!r}")
        return Predictor.from_preset(task_cls, preset)
    path = Path(model_dir).expanduser() if model_dir else store.default_model_dir(task_cls.name)
    if not store.exists(path):
        out = f" --out {path}" if model_dir else ""
        raise ModelNotFoundError(
            f"no trained {task_cls.name!r} model at '{path}'; train one with: dlapps train {task_cls.name}{out}")
    return Predictor.from_artifact(task_cls, path)


def batch_predict(task, inputs=(), output=None, *, model_dir=None, preset: str | None = None, input_file=None,
                  output_dir=None, batch_size: int = 32, engine: str = "local", ray_address: str | None = None,
                  ray_actors: int | None = None, retry_errors: bool = False, progress: bool = False, **options):
    """What ``dlapps predict`` does: predict files, folders or literal inputs (and the lines of ``input_file``),
    appending one JSON record per input to ``output`` (a rerun skips the inputs already there), file results
    under ``output_dir``. ``engine="ray"`` runs it on Ray Data (``ray_address``: the cluster to join, default a
    new local Ray). ``options`` are the task's predict options. Returns the run's ``BatchSummary``."""
    from dlapps.batch import collect_inputs

    runner, settings = batch_runner(engine, ray_address, ray_actors)
    predictor = load(task, model_dir, preset=preset)
    options = predictor.options(options)
    items = collect_inputs(predictor.task, [inputs] if isinstance(inputs, (str, Path)) else inputs, input_file)
    return runner(predictor, items, output, batch_size=batch_size, progress=progress, options=options,
                  output_dir=output_dir, retry_errors=retry_errors, **settings)


def batch_runner(engine: str = "local", ray_address: str | None = None, ray_actors: int | None = None):
    """``(run, settings)`` of a batch engine: ``run(predictor, items, output, ..., **settings)`` is
    ``dlapps.batch.run_batch`` for ``local``, ``dlapps.ray_batch.run_batch_on_ray`` for ``ray`` (checked to be
    installed, before any model loads)."""
    from dlapps.batch import run_batch

    if engine not in ("local", "ray"):
        raise InvalidInputError(f"expected engine 'local' or 'ray', received {engine!r}")
    if engine == "local":
        if ray_address or ray_actors:
            raise InvalidInputError("expected engine 'ray' with a Ray address or actors, received engine 'local'")
        return run_batch, {}
    from dlapps.ray_batch import import_ray, run_batch_on_ray

    import_ray()
    return run_batch_on_ray, {"address": ray_address, "actors": ray_actors}


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
