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

from dlapps import label_outputs, multiworker, ood, ood_calibration
from dlapps import runtime as runtime_mod
from dlapps import store
from dlapps.errors import DataError
from dlapps.inference import Predictor
from dlapps.recipes import (MIN_PATIENCE_STEPS, PLAN_DEFAULTS, Recipe, TrainingClock, apply_schedule, patience_epochs,
                            plan_training)
from dlapps.recipes import schedule_of

#: Settings every task has (see ``dlapps.recipes.PLAN_DEFAULTS``); a task's default_config may override them.
TRAINING_DEFAULTS = PLAN_DEFAULTS


def train(task, data=None, *, epochs: int | None = None, seed: int = 0, out=None,
          preset: str | None = None, batch_size: int | None = None, config: dict | None = None,
          limit: int | None = None, callbacks=(), verbose: int | None = None, progress=None,
          prepare=None, info: dict | None = None, time_budget: float | None = None) -> Predictor:
    """Train ``task`` (a Task) on ``data`` (default: its own offline data) and save it.

    ``limit`` keeps at most that many examples per split (quick runs).
    Resumes from the last completed epoch when the same command was interrupted.
    ``progress(stage)`` is told each stage as it starts (reading data, building the model, training,
    evaluating, saving); epochs are reported by Keras callbacks.
    ``prepare(dataset) -> dataset`` changes the data once read (a tuned model's final training adds the
    validation split to the training split); ``info`` adds facts to task.json (the search that chose the config).
    The training plan (steps, batch, patience, schedule and the task's own choices) follows the data
    (``dlapps.recipes``); ``config``, ``epochs``, ``batch_size`` and ``time_budget`` (seconds) are the user's and
    win over it. Returns a Predictor for the trained model.
    """
    progress = progress or (lambda stage: None)
    started = time.time()
    task_name = task.name
    config = {**(config or {}), **({"time_budget": time_budget} if time_budget is not None else {})}
    task.config.update(config)
    settings = fit_settings(task, epochs, batch_size)
    user = set(config) | ({"epochs"} if epochs is not None else set()) | (
        {"batch_size"} if batch_size is not None else set())

    rt = runtime_mod.configure(seed)
    progress("reading the data" if data else "preparing the default data")
    dataset = read_dataset(task, data, seed, limit)
    if prepare is not None:
        dataset = prepare(dataset)
    task.config.update({**dataset.config, **config})  # what the user set wins over the data's suggestion
    out = Path(out).expanduser() if out else store.default_model_dir(task_name)
    run_dir = _run_dir(task_name, data, seed, preset, out, task.config, limit, getattr(prepare, "__name__", None))
    model, fitted = fit(task, dataset, settings, run_dir, seed=seed, preset=preset, callbacks=callbacks,
                        verbose=verbose, progress=progress, user=user)

    predictor = Predictor(task, model)
    progress("learning what the training data looks like (out-of-distribution check)")
    try:
        # A tuned model's final training learns the validation split too: its threshold is then tighter.
        calibrated = ood_calibration.fit(task, predictor, dataset, validation_held_out=prepare is None)
    except Exception as error:  # noqa: BLE001  (the trained model is kept, without a check)
        task.feature_density = None
        calibrated = task.config["ood"] = {"available": False,
                                           "why": f"it could not be learnt ({type(error).__name__}: {error})"}
    report_ood(task, calibrated)
    progress("evaluating on the held-out test split")
    metrics = with_baseline_check(task, task.evaluate(predictor, dataset.test))
    training = {
        "seed": seed, "preset": preset, "epochs": settings["epochs"], "epochs_run": fitted["epochs_run"],
        "resumed_from_epoch": fitted["resumed_from_epoch"], "batch_size": settings["batch_size"],
        "global_batch_size": fitted["global_batch_size"], "seconds": round(time.time() - started, 1),
        "hardware": hardware(rt), "strategy": rt.strategy_name, "replicas": rt.replicas,
        "precision": rt.precision, "logs": str(run_dir / "logs"), "steps": fitted["steps"],
        "recipe": fitted["recipe"], "finished": time.strftime("%Y-%m-%d %H:%M"),
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
        callbacks=(), verbose: int | None = None, progress=None, user=()):
    """Build the task's model (adapting the task to ``dataset`` first, or from ``preset``), plan the training
    from the data (``dlapps.recipes``; the keys in ``user`` keep their values), compile it and fit it on the
    training split with early stopping on the validation split and the core's callbacks; resumes from the
    backup in ``run_dir``. Returns ``(model, facts)``: ``epochs_run``, ``resumed_from_epoch``,
    ``global_batch_size``, ``steps``, ``recipe`` (the plan, for task.json) and the Keras ``history`` (of this
    run's epochs)."""
    progress = progress or (lambda stage: None)
    rt = runtime_mod.configure(seed)
    progress("building the model")
    if not preset:
        task.adapt(dataset)
    recipe = plan(task, dataset, settings, user, rt.replicas)
    global_batch = rt.global_batch_size(settings["batch_size"])
    with rt.strategy.scope():
        model = task.load_preset(preset, task.config) if preset else task.build_model(task.config)
        task.compile_model(model, jit_compile=rt.jit_compile)
        apply_schedule(model, task.config)
    train_ds = task.make_dataset(dataset.train, training=True, batch_size=global_batch, seed=seed)
    val_ds = task.make_dataset(dataset.validation, training=False, batch_size=global_batch, seed=seed)

    progress("training")
    if multiworker.is_multi_worker(rt.strategy):  # model.fit fails under it: a loop of our own, no callbacks
        if callbacks:
            print(f"dlapps: WARNING: multi-worker training runs its own loop, which calls no Keras callbacks: "
                  f"{', '.join(type(c).__name__ for c in callbacks)} will not run", file=sys.stderr)
        planned = int(task.config.get("steps_per_epoch") or 0) * global_batch  # the plan's epoch, in examples
        history = multiworker.fit(model, train_ds, val_ds, rt.strategy, settings["epochs"],
                                  max(len(dataset.train), planned),
                                  len(dataset.validation), global_batch, verbose=_verbosity(verbose))
        return model, {"epochs_run": settings["epochs"], "resumed_from_epoch": 0, "global_batch_size": global_batch,
                       "history": history, "steps": task.config.get("steps"), "recipe": recipe.record()}
    per_pass = math.ceil(len(dataset.train) / global_batch)
    steps_per_epoch = int(task.config.get("steps_per_epoch") or 0)
    if steps_per_epoch > per_pass and task.config.get("schedule") != "own":
        train_ds = train_ds.repeat()  # an epoch of several passes (the plan's steps_per_epoch)
    else:
        steps_per_epoch = None
    repair_backup(run_dir / "backup")
    keep_backup_of_the_same_plan(run_dir / "backup", task.config)
    resumed_from = _completed_epochs(run_dir / "backup")
    if resumed_from:
        print(f"Resuming {task.name} training from epoch {resumed_from} (state in {run_dir})", file=sys.stderr)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=settings["epochs"],
        steps_per_epoch=steps_per_epoch,
        callbacks=[*task.callbacks(default_callbacks(task, run_dir, settings["patience"],
                                                     steps_per_epoch=steps_per_epoch or per_pass,
                                                     model=model),
                                   run_dir), *callbacks],
        verbose=_verbosity(verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    epochs_run = resumed_from + len(history.history.get("loss", []))
    return model, {"epochs_run": epochs_run, "resumed_from_epoch": resumed_from, "global_batch_size": global_batch,
                   "history": history.history, "steps": task.config.get("steps"), "recipe": recipe.record()}


def plan(task, dataset, settings: dict, user=(), replicas: int = 1) -> Recipe:
    """The training plan for ``dataset``: the task's own choices (``Task.plan``), then the core's (batch, steps,
    epochs, patience, warm-up); printed, and folded into ``settings`` and the task config. Keys in ``user``
    and in the dataset's own config keep their values."""
    for key, value in TRAINING_DEFAULTS.items():
        task.config.setdefault(key, value)
    for key in ("epochs", "batch_size", "patience"):
        task.config[key] = settings[key]
    recipe = Recipe(task.config, user=user, given=dataset.config)
    task.plan(dataset, recipe)
    label_outputs.fit_text_baseline(task, dataset.train, recipe)
    if task.config.get("schedule") != "own":
        plan_training(recipe, len(dataset.train), replicas)
    settings.update({key: task.config[key] for key in ("epochs", "batch_size", "patience")})
    _check_positive(settings)
    recipe.print(task.name)
    return recipe


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
        store.update_metrics(predictor.model_dir, metrics, task)
    return metrics


def report_ood(task, calibrated: dict) -> None:
    """One stderr line on the out-of-distribution check just calibrated (``dlapps.ood.fit``)."""
    if "rule" in calibrated:
        print(f"dlapps: {task.name} flags inputs {ood.FLAG_TEXT} by its own rules: {calibrated['rule']}",
              file=sys.stderr)
    elif calibrated.get("available"):
        rate = calibrated.get("false_alarm_rate")
        print(f"dlapps: {task.name} flags inputs {ood.FLAG_TEXT} by {calibrated['measures']}; threshold "
              f"{calibrated['threshold']:.4g}" + (f", {rate:.1%} of {calibrated['checked_on']} held-out test inputs "
                                                 "flagged" if rate is not None else ""), file=sys.stderr)
    else:
        print(f"dlapps: {task.name} has no out-of-distribution check: {calibrated.get('why')}", file=sys.stderr)


def with_baseline_check(task, metrics: dict) -> dict:
    """``metrics`` with ``baseline_checks`` (one per ``Task.baseline``) and ``baseline_check`` (the first, the
    trivial one); a model that is not clearly better than one of them is reported loudly on stderr."""
    from dlapps.task import baselines_of

    checks = [check for check in (b.check(metrics, task) for b in baselines_of(task)) if check is not None]
    if not checks:
        return metrics
    failed = [check for check in checks if not check["better"]]
    trivial = "; ".join(check["message"] for check in failed if check.get("kind") != "classical")
    classical = "; ".join(check["message"] for check in failed if check.get("kind") == "classical")
    if trivial:  # one warning for all the trivial baselines a model does not beat
        print(f"\ndlapps: WARNING: this {task.name} model looks useless: {trivial}. Check the data (labels, "
              "balance, size) and the training settings before using it.\n", file=sys.stderr)
    if classical:
        print(f"\ndlapps: WARNING: this {task.name} model is no better than a cheap classical model: {classical}. "
              "Use more data, more training steps (--set steps=N) or a preset, or use the classical model.\n",
              file=sys.stderr)
    return {**metrics, "baseline_check": checks[0], "baseline_checks": checks}


PLAN_FILE = "dlapps_plan.json"


def keep_backup_of_the_same_plan(folder: Path, config: dict) -> None:
    """Resume only a run of the same plan: the task config after planning is kept beside Keras' backup, and a
    backup made under another plan (the data or dlapps changed what the plan chooses) is set aside with a
    message, so that weights are never resumed into a different model or schedule."""
    path = folder / PLAN_FILE
    planned = json.dumps(config, sort_keys=True, default=str)
    if (folder / "training_metadata.json").is_file():
        try:
            same = path.read_text(encoding="utf-8") == planned
        except OSError:
            same = False
        if not same:
            shutil.rmtree(folder, ignore_errors=True)
            print(f"dlapps: the training backup in {folder} was made under another plan; training starts over from "
                  "the first epoch", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(planned, encoding="utf-8")


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


#: With a learning-rate schedule, early stopping watches only the epochs past this share of the plan.
EARLY_STOPPING_FROM = 0.5


def default_callbacks(task, run_dir: Path, patience: int, steps_per_epoch: int | None = None, model=None) -> list:
    """Backup for resume, the learning-rate plan, early stopping and TensorBoard. A model whose optimizer
    follows a schedule (``warmup_cosine``) gets the ``TrainingClock`` (time budget, the schedule's clock) in
    place of halving the rate on plateaus, which would fight the schedule."""
    import keras

    patience = patience_epochs(patience, steps_per_epoch, int(task.config.get("patience_steps", MIN_PATIENCE_STEPS)))
    schedule = schedule_of(model) if model is not None else None
    seconds = float(task.config.get("time_budget") or 0)
    pace = ([TrainingClock(seconds, run_dir / "backup", schedule)] if schedule is not None or seconds else [])
    if schedule is None:
        pace.insert(0, keras.callbacks.ReduceLROnPlateau(monitor=task.monitor, mode=task.monitor_mode, factor=0.5,
                                                         patience=max(2, patience // 3)))
    return [
        # Saves weights and epoch after every epoch: a rerun continues from there.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True),
        # With a schedule, not in the first half of the plan: the rate is still high, validation is still noisy,
        # and a model that guesses uniformly has the lowest loss (the best weights must not be the first ones).
        keras.callbacks.EarlyStopping(monitor=task.monitor, mode=task.monitor_mode, patience=patience,
                                      restore_best_weights=True,
                                      start_from_epoch=int(task.config.get("epochs", 0) * EARLY_STOPPING_FROM)
                                      if schedule is not None else 0),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")),
        # Last: it reads the step the backup restored, and saves its time after the backup's epoch.
        *pace,
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
