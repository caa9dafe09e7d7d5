"""The core's tf.data pipeline for training: a task's examples, batched, padded, shuffled and augmented."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from dlapps.errors import DataError, DlappsError

#: Prepared splits up to this size are held in memory; larger ones stream from disk.
IN_MEMORY_BYTES = 1 << 30


def make_tf_dataset(task, split, batch_size: int, training: bool = False, seed: int = 0):
    """The core's batched tf.data pipeline of ``task.training_example`` for every example of a split.

    Small splits are prepared once, in parallel, and kept in memory; larger
    ones (of single-array inputs with fixed-shape targets, such as image files)
    are prepared on the fly. When ``training``, examples are shuffled and
    ``task.augment`` is applied, both drawn anew each epoch. Leaves of different
    shapes are padded per batch with ``task.pad_values`` (0 for leaves it does
    not name); when an input leaf varies (waveforms, token ids), examples of
    similar length are batched together.
    """
    import tensorflow as tf

    first = task.training_example(split.inputs[0], split.target(0))
    if _streams(first, split):
        ds = _streaming_examples(task, split, first, _example_order(len(split), seed, training))
        return _augmented(task, ds, training).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    examples = prepare_examples(task, split)
    structure = examples[0]
    columns = [list(c) for c in zip(*(tf.nest.flatten(example) for example in examples))]
    varying = [k for k, column in enumerate(columns) if len({np.shape(x) for x in column}) > 1]
    rows = [_ConcatenatedRows(column) for column in columns]
    ds = _example_order(len(examples), seed, training).map(lambda i: tf.nest.pack_sequence_as(structure, [r.row(i) for r in rows]),
                num_parallel_calls=tf.data.AUTOTUNE)
    ds = _augmented(task, ds, training)
    pads = _padding_values(task, structure) if varying else None
    measured = [k for k in varying if k < len(tf.nest.flatten(structure[0]))]  # varying input leaves
    if measured:
        lengths = np.array([len(x) for x in columns[measured[0]]])
        return _length_bucketed(ds, lengths, measured[0], batch_size, pads)
    if varying:
        return ds.padded_batch(batch_size, padding_values=pads).prefetch(tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _streams(first, split) -> bool:
    """Whether a split is too large to hold prepared in memory and can stream: examples of one input
    array and one target array, each of one shape."""
    return len(first) == 2 and all(isinstance(part, (np.ndarray, np.generic)) for part in first) \
        and first[0].nbytes * len(split) > IN_MEMORY_BYTES


def _example_order(count: int, seed: int, training: bool):
    """The example indices 0 .. count - 1: in order, or for training in a new random order each epoch, a
    full shuffle (its buffer holds every index), so that data stored in order (one source after another)
    is mixed across the whole split, not only within a window of it."""
    import tensorflow as tf

    indices = tf.data.Dataset.range(count)
    return indices.shuffle(count, seed=seed, reshuffle_each_iteration=True) if training else indices


def _streaming_examples(task, split, first, indices):
    """Examples made on the fly by ``task.training_example`` (input and target both), in parallel, in the
    order of ``indices`` (a dataset of example indices)."""
    import tensorflow as tf

    x0, y0 = (np.asarray(part) for part in first)

    def load(i):
        x, y = task.training_example(split.inputs[int(i)], split.target(int(i)))
        return np.asarray(x, dtype=x0.dtype), np.asarray(y, dtype=y0.dtype)

    def to_example(i):
        x, y = tf.numpy_function(load, [i], (tf.as_dtype(x0.dtype), tf.as_dtype(y0.dtype)))
        return tf.ensure_shape(x, x0.shape), tf.ensure_shape(y, y0.shape)

    return indices.map(to_example, num_parallel_calls=tf.data.AUTOTUNE)


def _augmented(task, ds, training: bool):
    """``ds`` with the task's random augmentation applied to each example (training only)."""
    import tensorflow as tf

    if not training or task.augment is None:
        return ds
    return ds.map(lambda *example: task.augment(tuple(example)),
                  num_parallel_calls=tf.data.AUTOTUNE)


def _padding_values(task, structure):
    """The pad value of every leaf of an example, in its structure: ``task.pad_values`` by dict key, else 0."""
    import keras
    import tensorflow as tf

    leaves = []
    for path, leaf in keras.tree.flatten_with_path(structure):
        value = task.pad_values.get(path[-1], 0) if path else 0
        leaves.append(tf.cast(value, tf.as_dtype(np.asarray(leaf).dtype)))  # a cast: 0 pads a bool mask as False
    return tf.nest.pack_sequence_as(structure, leaves)


def _length_bucketed(ds, lengths: np.ndarray, measured: int, batch_size: int, pads, buckets: int = 6):
    """Batches of examples of similar length (the first axis of leaf ``measured``, in ``tf.nest.flatten``
    order), padded per batch with ``pads``."""
    import tensorflow as tf

    # No more buckets than full batches: some bucket fills, so the first batch is full and splits evenly
    # between replicas (Keras reduces the first batch across replicas to learn its shapes).
    buckets = max(1, min(buckets, len(lengths) // batch_size))
    boundaries = sorted({int(b) + 1 for b in np.quantile(lengths, np.linspace(0, 1, buckets + 1)[1:-1])})
    ds = ds.bucket_by_sequence_length(lambda *example: tf.shape(tf.nest.flatten(example)[measured])[0], boundaries,
                                      [batch_size] * (len(boundaries) + 1), padding_values=pads)
    # Each bucket holds a fixed set of examples, so the number of batches is known: Keras can show progress.
    per_bucket = np.bincount(np.searchsorted(boundaries, lengths, side="right"), minlength=len(boundaries) + 1)
    batches = int(np.sum(-(-per_bucket // batch_size)))
    return ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(tf.data.AUTOTUNE)


class _ConcatenatedRows:
    """Arrays of one example leaf; those of different shapes are kept as one concatenated tensor
    (flattened after the first axis) with each example's shape, so ``row(i)`` gives example ``i``'s
    array inside a tf.data map."""

    def __init__(self, arrays):
        import tensorflow as tf

        arrays = [np.asarray(a) for a in arrays]
        if len({a.shape for a in arrays}) == 1:
            self.values, self.starts = tf.constant(np.stack(arrays)), None
            return
        if len({a.ndim for a in arrays}) > 1 or not arrays[0].ndim:
            raise DataError(f"expected the examples' arrays of one part to have the same number of axes, "
                            f"received shapes {sorted({a.shape for a in arrays})[:4]}")
        sizes = np.array([a.size for a in arrays])
        self.values = tf.constant(np.concatenate([a.reshape(-1) for a in arrays]))
        self.ends = tf.constant(np.cumsum(sizes))
        self.starts = self.ends - sizes
        self.shapes = tf.constant(np.array([a.shape for a in arrays], dtype=np.int64))
        # The axes every example shares keep their static size (boxes stay (None, 4)), for code that reads it.
        self.static = [sizes.pop() if len(sizes) == 1 else None for sizes in map(set, zip(*(a.shape for a in arrays)))]

    def row(self, i):
        import tensorflow as tf

        if self.starts is None:
            return tf.gather(self.values, i)
        return tf.ensure_shape(tf.reshape(self.values[self.starts[i]:self.ends[i]], self.shapes[i]), self.static)


def prepare_examples(task, split) -> list:
    """Every training example of a split, prepared in a thread pool; failures are named."""
    failures = []

    def one(i):
        try:
            return task.training_example(split.inputs[i], split.target(i))
        except DlappsError as exc:
            failures.append(f"{split.name(i)}: {exc}")
            return None

    with ThreadPoolExecutor(min(8, len(split))) as pool:
        examples = list(pool.map(one, range(len(split))))
    if failures:
        shown = "\n  ".join(failures[:10])
        raise DataError(f"{len(failures)} of {len(split)} inputs could not be read:\n  {shown}")
    return examples
