"""Values a task builds once per model and reuses (compiled functions, item vectors, decoders), safe to share
between the threads of a server."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

_VALUE_KEYS = (str, int, float, tuple, frozenset)


class PerModel:
    """A small thread-safe cache of values built from a model (or from a plain key such as an image size).

    ``cache.get(model, build)`` returns ``build(model)``, built once: when several threads ask for the same
    model at once (concurrent requests in the studio), the first builds the value while the others wait for it
    instead of building their own. Models are told apart by identity (a reloaded model is a new model); plain
    keys by value. The ``keep`` most recently used values are kept, the oldest dropped.
    """

    def __init__(self, keep: int = 2):
        if keep < 1:
            raise ValueError(f"expected keep to be at least 1, got {keep!r}")
        self.keep = keep
        self._values: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model, build: Callable[[Any], Any]):
        key = model if isinstance(model, _VALUE_KEYS) else id(model)
        with self._lock:
            entry = self._values.get(key)
            if entry is not None and (entry[0] is model or isinstance(model, _VALUE_KEYS)):
                self._values.move_to_end(key)
                return entry[1]
            value = build(model)  # under the lock: one build per model, however many threads ask
            self._values[key] = (model, value)
            while len(self._values) > self.keep:
                self._values.popitem(last=False)
            return value

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
