"""Training, shared by every task: data pipeline, strategy scope, callbacks,
resume after interruption, evaluation and the atomic save of the artifact.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from dlapps import runtime as runtime_mod
from dlapps import store
from dlapps.errors import DataError
from dlapps.inference import Predictor

#: Settings every task has; a task's default_config may override the values.
TRAINING_DEFAULTS = {"epochs": 20, "batch_size": 32, "patience": 5, "learning_rate": 1e-3}


def train(task, data=None, *, epochs: int | None = None, seed: int = 0, out=None,
          preset: str | None = None, batch_size: int | None = None, config: dict | None = None,
          limit: int | None = None, callbacks=(), verbose: int | None = None, progress=None) -> Predictor:
    """Train ``task`` (a Task) on ``data`` (default: its own offline data) and save it.

    ``limit`` keeps at most that many examples per split (quick runs).
    Resumes from the last completed epoch when the same command was interrupted.
    ``progress(stage)`` is told each stage as it starts (reading data, building the model, training,
    evaluating, saving); epochs are reported by Keras callbacks.
    Returns a Predictor for the trained model.
    """
    progress = progress or (lambda stage: None)
    started = time.time()
    task_name = task.name
    task.config.update(config or {})
    settings = {**TRAINING_DEFAULTS, **{k: task.config[k] for k in TRAINING_DEFAULTS if k in task.config}}
    if epochs is not None:
        settings["epochs"] = epochs
    if batch_size is not None:
        settings["batch_size"] = batch_size
    _check_positive(settings)

    rt = runtime_mod.configure(seed)
    progress("reading the data" if data else "preparing the default data")
    dataset = task.load_data(str(data), seed=seed) if data else task.default_data(seed=seed)
    if limit:
        dataset = dataset.head(limit)
    _check_dataset(dataset)
    task.config.update({**dataset.config, **(config or {})})  # what the user set wins over the data's suggestion
    out = Path(out).expanduser() if out else store.default_model_dir(task_name)
    run_dir = _run_dir(task_name, data, seed, preset, out, task.config, limit)
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
    resumed_from = _completed_epochs(run_dir / "backup")
    if resumed_from:
        print(f"Resuming {task_name} training from epoch {resumed_from} (state in {run_dir})", file=sys.stderr)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=settings["epochs"],
        callbacks=[*task.callbacks(default_callbacks(task, run_dir, settings["patience"]), run_dir), *callbacks],
        verbose=_verbosity(verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    epochs_run = resumed_from + len(history.history.get("loss", []))

    progress("evaluating on the held-out test split")
    predictor = Predictor(task, model)
    metrics = with_baseline_check(task, task.evaluate(predictor, dataset.test))
    training = {
        "seed": seed, "preset": preset, "epochs": settings["epochs"], "epochs_run": epochs_run,
        "resumed_from_epoch": resumed_from, "batch_size": settings["batch_size"],
        "global_batch_size": global_batch, "seconds": round(time.time() - started, 1),
        "hardware": hardware(rt), "strategy": rt.strategy_name, "replicas": rt.replicas,
        "precision": rt.precision, "logs": str(run_dir / "logs"),
    }
    progress("saving")
    predictor.model_dir = store.save(out, model, task, _artifact_info(data, seed, dataset, training),
                                     metrics, dataset)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    predictor.meta, predictor.metrics = store.read_meta(predictor.model_dir), metrics
    return predictor


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


def default_callbacks(task, run_dir: Path, patience: int) -> list:
    import keras

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


def _run_dir(task_name, data, seed, preset, out, config, limit) -> Path:
    """Where one training command keeps its resumable state: the same command finds it again."""
    key = json.dumps([task_name, str(Path(data).resolve()) if data else None, seed, preset,
                      str(Path(out).resolve()), config, limit], sort_keys=True, default=str)
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
