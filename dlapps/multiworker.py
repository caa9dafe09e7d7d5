"""Training on several machines with TensorFlow's ``MultiWorkerMirroredStrategy``.

The strategy is chosen when ``TF_CONFIG`` names the cluster (``dlapps train --workers`` writes it). Keras 3's
``model.fit`` fails under that strategy (keras-team/keras#20585), so multi-worker training runs its own loop:
the model's ``train_step`` in ``strategy.run``, gradients all-reduced across every worker, the same number of
steps on each (collectives hang if one worker stops early). Only worker 0, the chief, saves the model.
One machine keeps ``model.fit`` and its callbacks.
"""

from __future__ import annotations

import json
import math
import os
import sys

from dlapps.errors import DataError


def tf_config(workers: str | list[str], index: int) -> str:
    """``TF_CONFIG`` for worker ``index`` of ``workers`` (``host1:port,host2:port``, the same list, in the same
    order, on every worker)."""
    addresses = [w.strip() for w in workers.split(",")] if isinstance(workers, str) else list(workers)
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise DataError(f"expected --workers as HOST:PORT,HOST:PORT,..., received {address!r} in {workers!r}")
    if len(set(addresses)) != len(addresses):
        raise DataError(f"expected each worker once in --workers, received {workers!r}")
    if not 0 <= index < len(addresses):
        raise DataError(f"expected --worker-index from 0 to {len(addresses) - 1} (one per worker in --workers), "
                        f"received {index}")
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def is_multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief() -> bool:
    """Whether this process saves the model: worker 0 (or the ``chief``) of ``TF_CONFIG``, or no cluster."""
    tf_config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):  # a cluster with a chief: it alone saves
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def fit(model, train_ds, val_ds, strategy, epochs: int, train_size: int, val_size: int, global_batch: int,
        verbose: int = 1) -> dict:
    """Train ``model`` (built and compiled in ``strategy.scope()``) for ``epochs`` on several workers; the
    Keras-style history: the mean training loss of each epoch and the validation loss after it.

    Each epoch takes ``ceil(train_size / global_batch)`` steps of ``global_batch`` examples across the cluster,
    the datasets repeating so that every worker takes the same number of steps.
    """
    import tensorflow as tf

    train_steps = max(1, math.ceil(train_size / global_batch))
    val_steps = max(1, math.ceil(val_size / global_batch))
    train_iter = iter(strategy.experimental_distribute_dataset(_sharded(train_ds.repeat())))
    val_iter = iter(strategy.experimental_distribute_dataset(_sharded(val_ds.repeat())))

    def mean_loss(logs):
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, logs["loss"], axis=None)

    @tf.function
    def train_step(iterator):
        return mean_loss(strategy.run(model.train_step, args=(next(iterator),)))

    @tf.function
    def test_step(iterator):
        return mean_loss(strategy.run(model.test_step, args=(next(iterator),)))

    # Each worker updates state that is not trained (batch normalization's moving statistics) from its own
    # batches; averaged across the workers after each epoch, it ends the same everywhere, as the weights do.
    state = [v.value for v in model.non_trainable_variables if v.dtype in ("float16", "bfloat16", "float32",
                                                                            "float64")]

    @tf.function
    def average_state():
        for variable in state:
            local = strategy.run(tf.identity, args=(variable,))
            variable.assign(strategy.reduce(tf.distribute.ReduceOp.MEAN, local, axis=None))

    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    for epoch in range(epochs):
        model.reset_metrics()
        losses = [float(train_step(train_iter)) for _ in range(train_steps)]
        if state:
            average_state()
        model.reset_metrics()
        val_losses = [float(test_step(val_iter)) for _ in range(val_steps)]
        history["loss"].append(losses[-1])  # the loss metric is the mean over the epoch's steps so far
        history["val_loss"].append(val_losses[-1])
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.4f}, val_loss "
                  f"{history['val_loss'][-1]:.4f} ({train_steps} steps on {strategy.num_replicas_in_sync} "
                  "replicas)", file=sys.stderr, flush=True)
    return history


def _sharded(dataset):
    """``dataset`` sharded by element across the workers (its source is in memory, not files)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
