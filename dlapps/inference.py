"""Predictor: preprocess -> forward -> postprocess, for one input or many.

Only ``forward`` touches the device. Preprocessing runs in a thread pool and
overlaps with the forward pass of the previous batch (OpenCV, PIL and
TensorFlow release the GIL while they work), so batch runs keep both busy.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from dlapps import ood
from dlapps.errors import DlappsError, InvalidInputError
from dlapps.options import check_options
from dlapps.task import Pieces


class Predictor:
    """A trained model and its task, ready to predict."""

    def __init__(self, task, model, model_dir: Path | None = None, meta: dict | None = None,
                 metrics: dict | None = None, workers: int | None = None):
        self.task = task
        self.model = model
        self.model_dir = Path(model_dir) if model_dir else None
        self.meta = meta or {}
        self.metrics = metrics or {}
        self.workers = workers or min(8, (os.cpu_count() or 2) + 2)
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def from_artifact(cls, task_cls, path) -> "Predictor":
        """The predictor of the model saved at ``path`` for ``task_cls`` (see ``store.load``)."""
        from dlapps import runtime, store

        runtime.configure()
        task, model, meta, metrics = store.load(path, task_cls)
        return cls(task, model, Path(path), meta, metrics)

    @classmethod
    def from_preset(cls, task_cls, preset: str) -> "Predictor":
        """A predictor straight from a pretrained preset (``Task.load_pretrained``), untrained."""
        from dlapps import runtime

        runtime.configure()
        task = task_cls()
        model = task.load_pretrained(str(preset), task.config)
        return cls(task, model, meta={"task": task_cls.name, "preset": str(preset), "config": task.config})

    # -- public API ----------------------------------------------------------
    def predict(self, inputs, batch_size: int = 32, **options):
        """One input -> one result; a list of inputs -> a list of results.

        Only a ``list`` is many inputs: anything else (a path, a string, an
        array, a ``(sample_rate, waveform)`` tuple, a dict) is one. ``options``
        are the task's predict options (e.g. ``beam_size=4``). A bad input
        raises InvalidInputError naming it; use ``iter_predict`` to get the
        errors in place of results and go on.
        """
        if not isinstance(inputs, list):
            return self.predict_batch([inputs], **options)[0]
        results = []
        for index, result in self.iter_predict(inputs, batch_size=batch_size, **options):
            if isinstance(result, Exception):
                raise InvalidInputError(f"input {index}: {result}") from result
            results.append(result)
        return results

    def predict_batch(self, inputs: list, **options) -> list:
        """Predict a list small enough to be one batch; raises on the first bad input."""
        options = self.options(options)
        prepared = [self.task.preprocess(raw, options) for raw in inputs]
        return self.predict_prepared(prepared, options, len(inputs))

    def iter_predict(self, inputs: Iterable, batch_size: int = 32, prefetch: int = 2, **options
                     ) -> Iterator[tuple[int, Any]]:
        """Stream (index, result-or-exception) in input order with bounded memory.

        At most ``prefetch + 1`` batches are read ahead; a bad input yields its
        exception and the others still get results.
        """
        if batch_size < 1:
            raise InvalidInputError(f"expected batch_size >= 1, received {batch_size}")
        options = self.options(options)
        pool = self._executor()
        batches = _chunks(enumerate(inputs), batch_size)
        pending: deque = deque()
        for chunk in itertools.islice(batches, prefetch + 1):
            pending.append(self._submit(pool, chunk, options))
        while pending:
            indices, futures = pending.popleft()
            next_chunk = next(batches, None)
            if next_chunk is not None:
                pending.append(self._submit(pool, next_chunk, options))
            prepared = [item for future in futures for item in future.result()]
            yield from self._run(indices, prepared, batch_size, options)

    def predict_prepared(self, prepared: list, options: dict, batch_size: int = 32) -> list:
        """Forward and postprocess inputs already preprocessed (``preprocess_each``'s output), in order; an
        exception among them stays in its place. ``options`` must be checked already (``options()``)."""
        return [result for _, result in self._run(range(len(prepared)), prepared, batch_size, options)]

    def options(self, given: dict | None = None) -> dict:
        """The task's predict options with ``given`` applied, each checked; an unknown name is an error."""
        return check_options(self.task.predict_options, given, self.task.config, self.task.name)

    def forward(self, batch, options: dict):
        """The model on one batch; the only step that touches the device."""
        return self.task.forward(self.model, batch, options)

    def examples(self) -> list:
        """The example inputs saved with the model (paths of files, or values), for UIs and docs."""
        from dlapps.store import read_examples

        return read_examples(self.model_dir) if self.model_dir else []

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- internals -----------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dlapps-preprocess")
        return self._pool

    def _submit(self, pool, chunk, options: dict):
        """Preprocess a batch as a few slices in parallel: one future per slice, not per input."""
        indices = [i for i, _ in chunk]
        raws = [raw for _, raw in chunk]
        step = -(-len(raws) // min(self.workers, len(raws)))
        return indices, [pool.submit(self._preprocess_slice, raws[i:i + step], options)
                         for i in range(0, len(raws), step)]

    def _preprocess_slice(self, raws: list, options: dict) -> list:
        return preprocess_each(self.task, raws, options)

    def _run(self, indices, prepared: list, batch_size: int, options: dict):
        """(index, result or exception) for preprocessed inputs, in order.

        Pieces of split inputs are batched with the other inputs, at most
        ``batch_size`` model inputs per forward pass, then combined.
        """
        task = self.task
        rows = [(n, x, context) for n, item in enumerate(prepared) if not isinstance(item, Exception)
                for x, context in (item if isinstance(item, Pieces) else [item])]
        results = []
        for start in range(0, len(rows), max(1, batch_size)):
            chunk = rows[start:start + batch_size]
            outputs = self.forward(stack_inputs([x for _, x, _ in chunk], task.pad_values), options)
            for i, (_, _, context) in enumerate(chunk):
                row = _row(outputs, i)
                results.append(task.postprocess(row, context, options))
                ood.mark(task, results[-1], row)
        by_input: dict[int, list] = {}
        for (n, _, _), result in zip(rows, results):
            by_input.setdefault(n, []).append(result)
        for n, (index, item) in enumerate(zip(indices, prepared)):
            if isinstance(item, Exception):
                yield index, item
            elif isinstance(item, Pieces):
                result = task.combine(by_input.get(n, []), item.context, options)
                ood.mark_combined(task, result, by_input.get(n, []))
                yield index, result
            else:
                yield index, by_input[n][0]


def preprocess_each(task, raws: list, options: dict) -> list:
    """``task.preprocess`` of each raw input; a bad input gives its exception in its place (an exception
    among ``raws``, an input found bad before, passes through)."""
    out = []
    for raw in raws:
        if isinstance(raw, Exception):
            out.append(raw)
            continue
        try:
            out.append(task.preprocess(raw, options))
        except (DlappsError, ValueError, OSError, TypeError) as exc:
            out.append(exc)
    return out


def _chunks(iterable, size):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def stack_inputs(arrays, pad_values: dict | None = None):
    """Stack per-input model inputs: arrays, tuples of arrays, or dicts of arrays.

    Arrays of different lengths (waveforms, token ids, boxes) are padded at the
    end to the longest, with ``pad_values[key]`` for a dict leaf, else zeros.
    """
    first = arrays[0]
    if isinstance(first, dict):
        return {k: pad_and_stack([a[k] for a in arrays], (pad_values or {}).get(k, 0)) for k in first}
    if isinstance(first, tuple):
        return tuple(stack_inputs(list(parts), pad_values) for parts in zip(*arrays))
    return pad_and_stack(arrays)


def pad_and_stack(arrays, pad_value=0) -> np.ndarray:
    """``np.stack``, after padding each array with ``pad_value`` at the end of every axis to the largest shape."""
    arrays = [np.asarray(a) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1:
        return np.stack(arrays)
    if len({len(shape) for shape in shapes}) > 1:
        raise ValueError(f"cannot batch inputs with different numbers of axes: {sorted(shapes)}")
    largest = np.max([a.shape for a in arrays], axis=0)
    out = np.full((len(arrays), *largest), pad_value, dtype=np.result_type(*arrays))
    for row, a in zip(out, arrays):
        row[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _row(outputs, i):
    if isinstance(outputs, dict):
        return {k: np.asarray(v[i]) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return tuple(np.asarray(v[i]) for v in outputs)
    return np.asarray(outputs[i])
