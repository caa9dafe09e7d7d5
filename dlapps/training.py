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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from dlapps import runtime as runtime_mod
from dlapps import store
from dlapps.errors import DataError, DlappsError
from dlapps.inference import Predictor, stack_inputs

#: Preprocessed splits up to this size are held in memory; larger ones stream from disk.
IN_MEMORY_BYTES = 1 << 30

#: Settings every task has; a task's default_config may override the values.
TRAINING_DEFAULTS = {"epochs": 20, "batch_size": 32, "patience": 5, "learning_rate": 1e-3}


def train(task, data=None, *, epochs: int | None = None, seed: int = 0, out=None,
          preset: str | None = None, batch_size: int | None = None, config: dict | None = None,
          limit: int | None = None, callbacks=(), verbose: int | None = None) -> Predictor:
    """Train ``task`` (a name or a Task) on ``data`` (default: its own offline data) and save it.

    ``limit`` keeps at most that many examples per split (quick runs).
    Resumes from the last completed epoch when the same command was interrupted.
    Returns a Predictor for the trained model.
    """
    started = time.time()
    task = resolve_task(task)
    task_name = task.name
    task.config.update(config or {})
    settings = {**TRAINING_DEFAULTS, **{k: task.config[k] for k in TRAINING_DEFAULTS if k in task.config}}
    if epochs is not None:
        settings["epochs"] = epochs
    if batch_size is not None:
        settings["batch_size"] = batch_size
    _check_positive(settings)

    rt = runtime_mod.configure(seed)
    dataset = task.load_data(str(data), seed=seed) if data else task.default_data(seed=seed)
    if limit:
        dataset = dataset.head(limit)
    _check_dataset(dataset)
    task.config.update({**dataset.config, **(config or {})})  # what the user set wins over the data's suggestion
    out = Path(out).expanduser() if out else store.default_model_dir(task_name)
    run_dir = _run_dir(task_name, data, seed, preset, out, task.config, limit)
    global_batch = rt.global_batch_size(settings["batch_size"])

    if not preset:
        task.adapt(dataset)
    with rt.strategy.scope():
        model = task.load_preset(preset, task.config) if preset else task.build_model(task.config)
        task.compile_model(model, jit_compile=rt.jit_compile)
    train_ds = make_tf_dataset(task, dataset.train, global_batch, shuffle=True, seed=seed)
    val_ds = make_tf_dataset(task, dataset.validation, global_batch)

    resumed_from = _completed_epochs(run_dir / "backup")
    if resumed_from:
        print(f"Resuming {task_name} training from epoch {resumed_from} (state in {run_dir})", file=sys.stderr)
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=settings["epochs"],
        callbacks=[*default_callbacks(task, run_dir, settings["patience"]), *callbacks],
        verbose=_verbosity(verbose),
        shuffle=False,  # the tf.data pipeline shuffles
    )
    epochs_run = resumed_from + len(history.history.get("loss", []))

    predictor = Predictor(task, model)
    metrics = task.evaluate(predictor, dataset.test)
    training = {
        "seed": seed, "preset": preset, "epochs": settings["epochs"], "epochs_run": epochs_run,
        "resumed_from_epoch": resumed_from, "batch_size": settings["batch_size"],
        "global_batch_size": global_batch, "seconds": round(time.time() - started, 1),
        "hardware": hardware(rt), "strategy": rt.strategy_name, "replicas": rt.replicas,
        "precision": rt.precision, "logs": str(run_dir / "logs"),
    }
    predictor.model_dir = store.save(out, model, task, _artifact_info(data, seed, dataset, training),
                                     metrics, dataset)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)
    task.assets_dir = predictor.model_dir / store.ASSETS_DIR
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


def resolve_task(task):
    """A Task instance from a task name (looked up in the installed plugins) or a Task."""
    from dlapps.host import get_host
    from dlapps.task import Task

    if isinstance(task, Task):
        return task
    if isinstance(task, type) and issubclass(task, Task):
        return task()
    return get_host().task(task)


def evaluate(task_name: str, model_dir=None, data=None) -> dict:
    """Evaluate a saved model on its held-out test split (or on ``data``) and update metrics.json."""
    from dlapps.inference import load

    predictor = load(task_name, model_dir)
    task, meta = predictor.task, predictor.meta
    if data:
        split = task.load_eval_data(str(data))
    else:
        source = meta.get("data", {}).get("source", "default")
        seed = meta.get("data", {}).get("seed", 0)
        dataset = task.default_data(seed=seed) if source == "default" else task.load_data(source, seed=seed)
        split = dataset.test
    metrics = task.evaluate(predictor, split)
    if not data:
        store.update_metrics(predictor.model_dir, metrics)
    return metrics


def default_callbacks(task, run_dir: Path, patience: int) -> list:
    import keras

    return [
        # Saves weights and epoch after every epoch: a rerun continues from there.
        keras.callbacks.BackupAndRestore(str(run_dir / "backup"), double_checkpoint=True),
        keras.callbacks.ReduceLROnPlateau(monitor=task.monitor, factor=0.5, patience=max(2, patience // 3)),
        keras.callbacks.EarlyStopping(monitor=task.monitor, patience=patience, restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "logs")),
    ]


def make_tf_dataset(task, split, batch_size: int, shuffle: bool = False, seed: int = 0):
    """A batched tf.data pipeline of ``task.training_example`` for every example of a split.

    Small splits are prepared once, in parallel, and kept in memory; larger
    ones (of single-array inputs, such as image files) are prepared on the fly.
    Examples of different lengths (waveforms, transcripts) are grouped into
    batches of similar length and padded with zeros to the longest in the batch.
    """
    import tensorflow as tf

    targets = np.asarray(split.targets)
    first = task.training_example(split.inputs[0], targets[0])
    if isinstance(first[0], np.ndarray) and first[0].nbytes * len(split) > IN_MEMORY_BYTES \
            and np.ndim(first[1]) == np.ndim(targets[0]):
        x0 = first[0]

        def load(i):
            return np.asarray(task.training_example(split.inputs[int(i)], targets[int(i)])[0], dtype=x0.dtype)

        def to_example(i):
            x = tf.numpy_function(load, [i], tf.as_dtype(x0.dtype))
            return tf.ensure_shape(x, x0.shape), tf.gather(targets, i)

        ds = tf.data.Dataset.range(len(split)).map(to_example, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        examples = prepare_examples(task, split)
        varying = _varying_leaves(examples)
        if varying:
            return _length_bucketed(examples, varying[0], batch_size, shuffle, seed)
        ds = tf.data.Dataset.from_tensor_slices(tuple(stack_inputs(list(part)) for part in zip(*examples)))
    if shuffle:
        ds = ds.shuffle(min(len(split), 10_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _varying_leaves(examples) -> list[int]:
    """Positions (in ``tf.nest.flatten`` order) of the example arrays whose shape differs between examples."""
    import tensorflow as tf

    columns = zip(*(tf.nest.flatten(example) for example in examples))
    return [k for k, column in enumerate(columns) if len({np.shape(x) for x in column}) > 1]


def _length_bucketed(examples, measured: int, batch_size: int, shuffle: bool, seed: int, buckets: int = 6):
    """Batches of examples of similar length (the first axis of array ``measured``, in ``tf.nest.flatten``
    order), zero-padded per batch. Examples may be tuples of arrays or of dicts of arrays (inputs by name)."""
    import tensorflow as tf

    structure = examples[0]
    columns = [list(c) for c in zip(*(tf.nest.flatten(example) for example in examples))]
    lengths = np.array([len(x) for x in columns[measured]])
    rows = [_ConcatenatedRows(column) for column in columns]
    ds = tf.data.Dataset.range(len(lengths))
    if shuffle:
        ds = ds.shuffle(min(len(lengths), 10_000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda i: tf.nest.pack_sequence_as(structure, [r.row(i) for r in rows]),
                num_parallel_calls=tf.data.AUTOTUNE)
    boundaries = sorted({int(b) + 1 for b in np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1])})
    ds = ds.bucket_by_sequence_length(lambda *example: tf.shape(tf.nest.flatten(example)[measured])[0], boundaries,
                                      [batch_size] * (len(boundaries) + 1))
    # Each bucket holds a fixed set of examples, so the number of batches is known: Keras can show progress.
    per_bucket = np.bincount(np.searchsorted(boundaries, lengths, side="right"), minlength=len(boundaries) + 1)
    batches = int(np.sum(-(-per_bucket // batch_size)))
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


class _ConcatenatedRows:
    """Arrays of one example part; those of different lengths are kept as one concatenated tensor.

    ``row(i)`` gives example ``i``'s array inside a tf.data map.
    """

    def __init__(self, arrays):
        import tensorflow as tf

        arrays = [np.asarray(a) for a in arrays]
        if len({a.shape for a in arrays}) == 1:
            self.values, self.starts = tf.constant(np.stack(arrays)), None
        else:
            lengths = np.array([len(a) for a in arrays])
            self.values = tf.constant(np.concatenate(arrays))
            self.ends = tf.constant(np.cumsum(lengths))
            self.starts = self.ends - lengths

    def row(self, i):
        import tensorflow as tf

        if self.starts is None:
            return tf.gather(self.values, i)
        return self.values[self.starts[i]:self.ends[i]]


def prepare_examples(task, split) -> list:
    """Every training example of a split, prepared in a thread pool; failures are named."""
    failures = []
    targets = split.targets

    def one(i):
        try:
            return task.training_example(split.inputs[i], targets[i])
        except DlappsError as exc:
            failures.append(f"{split.name(i)}: {exc}")
            return None

    with ThreadPoolExecutor(min(8, len(split))) as pool:
        examples = list(pool.map(one, range(len(split))))
    if failures:
        shown = "\n  ".join(failures[:10])
        raise DataError(f"{len(failures)} of {len(split)} inputs could not be read:\n  {shown}")
    return examples


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
