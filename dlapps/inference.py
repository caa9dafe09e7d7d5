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

from dlapps.errors import DlappsError, InvalidInputError
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

    # -- public API ----------------------------------------------------------
    def predict(self, inputs, batch_size: int = 32, **options):
        """One input -> one result dict; a list of inputs -> a list of result dicts.

        ``options`` are the task's ``predict_options`` (e.g. ``beam_size=4``).
        A bad input raises InvalidInputError naming it; use ``iter_predict`` to
        get error records instead and go on.
        """
        if self.task.is_single(inputs):
            return self.predict_batch([inputs], **options)[0]
        results = []
        for index, result in self.iter_predict(inputs, batch_size=batch_size, **options):
            if isinstance(result, Exception):
                raise InvalidInputError(f"input {index}: {result}") from result
            results.append(result)
        return results

    def predict_batch(self, inputs: list, **options) -> list[dict]:
        """Predict a list small enough to be one batch; raises on the first bad input."""
        options = self.options(options)
        prepared = [self.task.preprocess(raw) for raw in inputs]
        return [result for _, result in self._run(range(len(inputs)), prepared, len(inputs), options)]

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
            pending.append(self._submit(pool, chunk))
        while pending:
            indices, futures = pending.popleft()
            next_chunk = next(batches, None)
            if next_chunk is not None:
                pending.append(self._submit(pool, next_chunk))
            prepared = [item for future in futures for item in future.result()]
            yield from self._run(indices, prepared, batch_size, options)

    def options(self, given: dict | None = None) -> dict:
        """The task's predict options with ``given`` applied; an unknown name is an error."""
        defaults = self.task.predict_options
        unknown = sorted(set(given or {}) - set(defaults))
        if unknown:
            expected = ", ".join(defaults) or "none"
            raise InvalidInputError(
                f"unknown predict option {', '.join(map(repr, unknown))} for task {self.task.name!r}; "
                f"expected one of: {expected}")
        return self.task.check_options({**defaults, **(given or {})})

    def forward(self, batch, **options):
        """The model on one batch; the only step that touches the device."""
        return self.task.forward(self.model, batch, **options)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # -- internals -----------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dlapps-preprocess")
        return self._pool

    def _submit(self, pool, chunk):
        """Preprocess a batch as a few slices in parallel: one future per slice, not per input."""
        indices = [i for i, _ in chunk]
        raws = [raw for _, raw in chunk]
        step = -(-len(raws) // min(self.workers, len(raws)))
        return indices, [pool.submit(self._preprocess_slice, raws[i:i + step]) for i in range(0, len(raws), step)]

    def _preprocess_slice(self, raws: list) -> list:
        out = []
        for raw in raws:
            if isinstance(raw, Exception):  # an input found bad before it got here
                out.append(raw)
                continue
            try:
                out.append(self.task.preprocess(raw))
            except (DlappsError, ValueError, OSError, TypeError) as exc:
                out.append(exc)
        return out

    def _run(self, indices, prepared: list, batch_size: int, options: dict):
        """(index, result or exception) for preprocessed inputs, in order.

        Pieces of split inputs are batched with the other inputs, at most
        ``batch_size`` model inputs per forward pass, then combined.
        """
        rows = [(n, x) for n, item in enumerate(prepared) if not isinstance(item, Exception)
                for x in (item if isinstance(item, Pieces) else [item])]
        outputs = []
        for start in range(0, len(rows), max(1, batch_size)):
            chunk = [x for _, x in rows[start:start + batch_size]]
            outputs += self._postprocess_all(self.forward(stack_inputs(chunk), **options))
        by_input: dict[int, list] = {}
        for (n, _), result in zip(rows, outputs):
            by_input.setdefault(n, []).append(result)
        for n, (index, item) in enumerate(zip(indices, prepared)):
            if isinstance(item, Exception):
                yield index, item
            elif isinstance(item, Pieces):
                yield index, self.task.combine(by_input.get(n, []))
            else:
                yield index, by_input[n][0]

    def _postprocess_all(self, outputs) -> list[dict]:
        return [self.task.postprocess(_row(outputs, i)) for i in range(_batch_len(outputs))]


def _chunks(iterable, size):
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def stack_inputs(arrays):
    """Stack per-input model inputs: arrays, tuples of arrays, or dicts of arrays.

    Arrays of different lengths (waveforms, token ids) are padded with zeros at
    the end to the longest.
    """
    first = arrays[0]
    if isinstance(first, dict):
        return {k: pad_and_stack([a[k] for a in arrays]) for k in first}
    if isinstance(first, tuple):
        return tuple(pad_and_stack(parts) for parts in zip(*arrays))
    return pad_and_stack(arrays)


def pad_and_stack(arrays) -> np.ndarray:
    """``np.stack``, after padding each array with zeros at the end of every axis to the largest shape."""
    arrays = [np.asarray(a) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) == 1:
        return np.stack(arrays)
    if len({len(shape) for shape in shapes}) > 1:
        raise ValueError(f"cannot batch inputs with different numbers of axes: {sorted(shapes)}")
    largest = np.max([a.shape for a in arrays], axis=0)
    out = np.zeros((len(arrays), *largest), dtype=np.result_type(*arrays))
    for row, a in zip(out, arrays):
        row[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _row(outputs, i):
    if isinstance(outputs, dict):
        return {k: np.asarray(v[i]) for k, v in outputs.items()}
    if isinstance(outputs, (list, tuple)):
        return tuple(np.asarray(v[i]) for v in outputs)
    return np.asarray(outputs[i])


def _batch_len(outputs) -> int:
    if isinstance(outputs, dict):
        return len(next(iter(outputs.values())))
    if isinstance(outputs, (list, tuple)):
        return len(outputs[0])
    return len(outputs)


def load(task, model_dir=None) -> Predictor:
    """The predictor for ``task`` (a name or a Task class), from ``model_dir`` or the default location."""
    from dlapps import runtime, store
    from dlapps.errors import ArtifactError, ModelNotFoundError
    from dlapps.host import get_host

    task_cls = task if isinstance(task, type) else get_host().task_class(task)
    path = Path(model_dir).expanduser() if model_dir else store.default_model_dir(task_cls.name)
    if not store.exists(path):
        out = f" --out {path}" if model_dir else ""
        raise ModelNotFoundError(
            f"no trained {task_cls.name!r} model at '{path}'; train one with: dlapps train {task_cls.name}{out}"
        )
    meta = store.read_meta(path)
    if meta.get("task") != task_cls.name:
        raise ArtifactError(
            f"expected a model for task {task_cls.name!r}, received '{path}', a model for {meta.get('task')!r}"
        )
    runtime.configure()
    instance = task_cls(meta.get("config"))
    instance.assets_dir = path / store.ASSETS_DIR
    model = store.load_model(path, instance.custom_objects())
    return Predictor(instance, model, path, meta, store.read_metrics(path))
