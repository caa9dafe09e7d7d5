"""Training, shared by every task: data pipeline, strategy scope, callbacks,
resume after interruption, evaluation and the atomic save of the artifact.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dlapps import multiworker
from dlapps import runtime as runtime_mod
from dlapps import store
from dlapps.errors import DataError
from dlapps.inference import Predictor

#: Settings every task has; a task's default_config may override the values.
TRAINING_DEFAULTS = {"epochs": 20, "batch_size": 32, "patience": 5, "learning_rate": 1e-3}


def train(task, data=None, *, epochs: int | None = None, seed: int = 0, out=None,
          preset: str | None = None, batch_size: int | None = None, config: dict | None = None,
          limit: int | None = None, callbacks=(), verbose: int | None = None, progress=None,
          prepare=None, info: dict | None = None) -> Predictor:
    """Train ``task`` (a Task) on ``data`` (default: its own offline data) and save it.

    ``limit`` keeps at most that many examples per split (quick runs).
    Resumes from the last completed epoch when the same command was interrupted.
    ``progress(stage)`` is told each stage as it starts (reading data, building the model, training,
    evaluating, saving); epochs are reported by Keras callbacks.
    ``prepare(dataset) -> dataset`` changes the data once read (a tuned model's final training adds the
    validation split to the training split); ``info`` adds facts to task.json (the search that chose the config).
    Returns a Predictor for the trained model.
    """
    progress = progress or (lambda stage: None)
    started = time.time()
    task_name = task.name
    task.config.update(config or {})
    settings = fit_settings(task, epochs, batch_size)

    rt = runtime_mod.configure(seed)
    progress("reading the data" if data else "preparing the default data")
    dataset = read_dataset(task, data, seed, limit)
    if prepare is not None:
        dataset = prepare(dataset)
    task.config.update({**dataset.config, **(config or {})})  # what the user set wins over the data's suggestion
    out = Path(out).expanduser() if out else store.default_model_dir(task_name)
    run_dir = _run_dir(task_name, data, seed, preset, out, task.config, limit, getattr(prepare, "__name__", None))
    model, fitted = fit(task, dataset, settings, run_dir, seed=seed, preset=preset, callbacks=callbacks,
                        verbose=verbose, progress=progress)

    progress("evaluating on the held-out test split")
    predictor = Predictor(task, model)
    metrics = with_baseline_check(task, task.evaluate(predictor, dataset.test))
    training = {
        "seed": seed, "preset": preset, "epochs": settings["epochs"], "epochs_run": fitted["epochs_run"],
        "resumed_from_epoch": fitted["resumed_from_epoch"], "batch_size": settings["batch_size"],
        "global_batch_size": fitted["global_batch_size"], "seconds": round(time.time() - started, 1),
        "hardware": hardware(rt), "strategy": rt.strategy_name, "replicas": rt.replicas,
        "precision": rt.precision, "logs": str(run_dir / "logs"),
    }
    progress("saving")
    # Of several workers only the chief keeps the model; the others save to a scratch folder, as TF advises.
    scratch = None if multiworker.is_chief() else Path(tempfile.mkdtemp(prefix="dlapps-worker-"))
    try:
        predictor.model_dir = store.save(scratch / "model" if scratch else out, model, task,
                                         {**_artifact_info(data, seed, dataset, training), **(info or {})}, metrics,
                                         dataset, predict=predictor.predict if _checks_examples(task) else None)
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        predictor.meta, predictor.metrics = store.read_meta(predictor.model_dir), metrics
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    if scratch:
        predictor.model_dir = None
    return predictor


def fit_settings(task, epochs: int | None = None, batch_size: int | None = None) -> dict:
    """The fit settings (``TRAINING_DEFAULTS`` keys) from the task config, ``epochs`` and ``batch_size`` winning."""
    settings = {**TRAINING_DEFAULTS, **{k: task.config[k] for k in TRAINING_DEFAULTS if k in task.config}}
    if epochs is not None:
        settings["epochs"] = epochs
    if batch_size is not None:
        settings["batch_size"] = batch_size
    _check_positive(settings)
    return settings


def read_dataset(task, data=None, seed: int = 0, limit: int | None = None):
    """The task's ``data`` (default: its own offline data), at most ``limit`` examples per split, checked."""
    dataset = task.load_data(str(data), seed=seed) if data else task.default_data(seed=seed)
    if limit:
        dataset = dataset.head(limit)
    _check_dataset(dataset)
    return dataset


def fit(task, dataset, settings: dict, run_dir: Path, *, seed: int = 0, preset: str | None = None,
        callbacks=(), verbose: int | None = None, progress=None):
    """Build the task's model (adapting the task to ``dataset`` first, or from ``preset``), compile it and fit it
    on the training split with early stopping on the validation split and the core's callbacks; resumes from
    the backup in ``run_dir``. Returns ``(model, facts)``: ``epochs_run``, ``resumed_from_epoch``,
    ``global_batch_size`` and the Keras ``history`` (of this run's epochs)."""
    progress = progress or (lambda stage: None)
    rt = runtime_mod.configure(seed)
    global_batch = rt.global_batch_size(settings["batch_size"])
    progress("building the model")
    if not preset:
        task.adapt(dataset)
    with rt.strategy.scope():
        model = task.load_preset(preset, task.config) if preset else task.build_model(task.config)
        task.compile_model(model, jit_compile=rt.jit_compile)
    train_ds = task.make_dataset(dataset.train, training=True, batch_size=global_batch, seed=seed)
    val_ds = task.make_dataset(dataset.validation, training=False, batch_size=global_batch, seed=seed)

    progress("training")
    if multiworker.is_multi_worker(rt.strategy):  # model.fit fails under it: a loop of our own, no callbacks
        if callbacks:
            print(f"dlapps: WARNING: multi-worker training runs its own loop, which calls no Keras callbacks: "
                  f"{', '.join(type(c).__name__ for c in callbacks)} will not run", file=sys.stderr)
        history = multiworker.fit(model, train_ds, val_ds, rt.strategy, settings["epochs"], len(dataset.train),
                                  len(dataset.validation), global_batch, verbose=_verbosity(verbose))
        return model, {"epochs_run": settings["epochs"], "resumed_from_epoch": 0, "global_batch_size": global_batch,
                       "history": history}
    repair_backup(run_dir / "backup")
    resumed_from = _completed_epochs(run_dir / "backup")
    if resumed_from:
        print(f"Resuming {task.name} training from epoch {resumed_from} (state in {run_dir})", file=sys.stderr)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=settings["epochs"],
        callbacks=[*task.callbacks(default_callbacks(task, run_dir, settings["patience"],
                                                     steps_per_epoch=math.ceil(len(dataset.train) / global_batch)),
                                   run_dir), *callbacks],
        verbose=_verbosity(verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    epochs_run = resumed_from + len(history.history.get("loss", []))
    return model, {"epochs_run": epochs_run, "resumed_from_epoch": resumed_from, "global_batch_size": global_batch,
                   "history": history.history}


def _checks_examples(task) -> bool:
    """Whether the task ships only examples its model gets right (it overrides ``Task.example_is_right``), so
    that the examples are predicted at save time; for the others that would be work thrown away."""
    from dlapps.task import Task

    return type(task).example_is_right is not Task.example_is_right


def _artifact_info(data, seed: int, dataset, training: dict) -> dict:
    """What task.json records besides the task config: versions, data and training facts."""
    return {
        "versions": versions(),
        "data": {"source": str(Path(data).resolve()) if data else "default", "seed": seed,
                 "description": dataset.description,
                 "sizes": {s: len(getattr(dataset, s)) for s in ("train", "validation", "test")}},
        "training": training,
    }


def evaluate(predictor, data=None) -> dict:
    """Evaluate a loaded model on its held-out test split (or on ``data``); the held-out metrics are
    merged into its metrics.json and model card."""
    task, meta = predictor.task, predictor.meta
    if data:
        split = task.load_eval_data(str(data))
    else:
        source = meta.get("data", {}).get("source", "default")
        seed = meta.get("data", {}).get("seed", 0)
        dataset = task.default_data(seed=seed) if source == "default" else task.load_data(source, seed=seed)
        split = dataset.test
    metrics = with_baseline_check(task, task.evaluate(predictor, split))
    if not data:
        store.update_metrics(predictor.model_dir, metrics)
    return metrics


def with_baseline_check(task, metrics: dict) -> dict:
    """``metrics`` with ``baseline_check`` (see ``Task.baseline``); a model that is not clearly better than
    the trivial baseline is reported loudly on stderr."""
    check = task.baseline.check(metrics) if task.baseline is not None else None
    if check is None:
        return metrics
    if not check["better"]:
        print(f"\ndlapps: WARNING: this {task.name} model looks useless: {check['message']}. Check the data "
              "(labels, balance, size) and the training settings before using it.\n", file=sys.stderr)
    return {**metrics, "baseline_check": check}


#: Early stopping and learning-rate cuts wait at least this many optimizer steps, whatever the epoch count says.
MIN_PATIENCE_STEPS = 100


def patience_epochs(patience: int, steps_per_epoch: int | None) -> int:
    """``patience`` (epochs), raised so that at least ``MIN_PATIENCE_STEPS`` steps pass. An epoch of a tiny
    dataset is one or two steps: too few for the weights, and BatchNorm's moving statistics that validation
    uses, to catch up, so validation sits at chance for the first epochs while training improves; counted in
    epochs, patience would halve the learning rate and stop training before the model had learned anything."""
    if not steps_per_epoch:
        return patience
    return max(patience, math.ceil(MIN_PATIENCE_STEPS / steps_per_epoch))


def repair_backup(folder: Path) -> None:
    """Make the backup of a killed run loadable before resuming from it. Keras' ``BackupAndRestore`` keeps the
    previous weights and epoch as ``*.bkp``; a kill while the latest were written leaves them cut short: the
    previous pair is put back, or, when there is none (a kill during the very first save), the backup is set
    aside with a message and training starts over."""
    import h5py

    weights = folder / "latest.weights.h5"
    if not weights.exists():
        return
    try:
        with h5py.File(weights, "r"):
            return
    except OSError as error:
        problem = error
    previous = Path(f"{weights}.bkp")
    try:
        with h5py.File(previous, "r"):
            pass
        shutil.copyfile(previous, weights)
        metadata = folder / "training_metadata.json"
        if Path(f"{metadata}.bkp").exists():
            shutil.copyfile(f"{metadata}.bkp", metadata)
        print(f"dlapps: the last training backup in {folder} was cut short ({problem}); resuming from the one "
              "before", file=sys.stderr)
    except OSError:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"dlapps: the training backup in {folder} was cut short ({problem}) with nothing older to go back "
              "to; training starts over from the first epoch", file=sys.stderr)


def default_callbacks(task, run_dir: Path, patience: int, steps_per_epoch: int | None = None) -> list:
    import keras

    patience = patience_epochs(patience, steps_per_epoch)
    return [
        # Saves weights and epoch after every epoch: a rerun continues from there.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True),
        keras.callbacks.ReduceLROnPlateau(monitor=task.monitor, factor=0.5, patience=max(2, patience // 3)),
        keras.callbacks.EarlyStopping(monitor=task.monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")),
    ]


def versions() -> dict:
    from importlib import metadata

    import keras
    import tensorflow as tf

    try:
        dlapps_version = metadata.version("dlapps")
    except metadata.PackageNotFoundError:
        dlapps_version = "unknown"
    return {"dlapps": dlapps_version, "python": platform.python_version(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


def hardware(rt) -> str:
    gpus = f", GPUs: {', '.join(rt.gpus)}" if rt.gpus else ", no GPU"
    return f"{platform.machine()} {platform.processor() or ''} ({_cpu_count()} CPU cores{gpus})".replace("  ", " ")


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _check_positive(settings: dict) -> None:
    for key in ("epochs", "batch_size"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise DataError(f"expected {key} to be a positive integer, received {key}={settings[key]!r}")


def _check_dataset(dataset) -> None:
    for name in ("train", "validation", "test"):
        if len(getattr(dataset, name)) == 0:
            raise DataError(f"expected a non-empty {name} split, received 0 examples; add more data")


def _run_dir(task_name, data, seed, preset, out, config, limit, prepared=None) -> Path:
    """Where one training command keeps its resumable state: the same command finds it again."""
    key = json.dumps([task_name, str(Path(data).resolve()) if data else None, seed, preset,
                      str(Path(out).resolve()), config, limit, *([prepared] if prepared else [])],
                     sort_keys=True, default=str)
    digest = hashlib.sha1(key.encode()).hexdigest()[:12]
    return store.home() / "runs" / f"{task_name}-{digest}"


def _completed_epochs(backup_dir: Path) -> int:
    try:
        return int(json.loads((backup_dir / "training_metadata.json").read_text())["epoch"])
    except (FileNotFoundError, KeyError, ValueError):
        return 0


def _verbosity(verbose: int | None) -> int:
    if verbose is not None:
        return verbose
    return 1 if sys.stdout.isatty() else 2
