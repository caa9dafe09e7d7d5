"""PerModel: values built once per model, shared safely by a server's threads."""

import threading
import time

import pytest

from dlapps.plugin import PerModel


class Model:
    pass


def test_concurrent_requests_build_once_per_model_and_reuse_it():
    cache, builds = PerModel(), []

    def build(model):
        builds.append(model)
        time.sleep(0.05)  # long enough for the other threads to arrive while it builds
        return object()

    model = Model()
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(model, build))) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert builds == [model] and len(results) == 16 and all(r is results[0] for r in results)


def test_models_are_told_apart_by_identity_plain_keys_by_value_and_old_ones_dropped():
    cache = PerModel(keep=2)
    a, b, c = Model(), Model(), Model()
    assert cache.get(a, id) == id(a) and cache.get(b, id) == id(b)
    assert cache.get(a, lambda m: "rebuilt") == id(a)  # reused
    cache.get(c, id)  # b, the least recently used, goes
    assert len(cache) == 2 and cache.get(b, lambda m: "rebuilt") == "rebuilt"
    sizes = PerModel(keep=1)
    assert sizes.get((64, 64), lambda s: "64") == "64" and sizes.get((64, 64), lambda s: "again") == "64"
    with pytest.raises(ValueError, match="expected keep to be at least 1, got 0"):
        PerModel(keep=0)
