"""Batch inference on Ray Data (``dlapps predict TASK ... --engine ray``): the local runner's pieces, run by Ray.

The inputs become a Ray dataset; preprocessing is a map over it (Ray tasks); the model runs in an actor
pool (``map_batches`` with a callable class, so each actor loads the model once) that does forward and
postprocess; the driver writes the records as they arrive, through the same ``BatchRun`` as the local
runner: same JSONL records, error records, file outputs, resume. Records come in completion order, not
input order.

Ray is an optional extra: ``pip install -e ".[ray]"``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from dlapps.batch import BatchRun, BatchSummary
from dlapps.errors import DlappsError, last_line
from dlapps.inference import Predictor, preprocess_each

#: CPUs each preprocessing task reserves. Half a CPU: decoding mostly waits on files and on C libraries that
#: release the GIL; and a reservation unlike the model actors' keeps Ray Data from fusing the map into the
#: actors, so that inputs are decoded beside the model, not before it in the same process.
PREPROCESS_CPUS = 0.5

INSTALL_HINT = 'pip install -e ".[ray]"  (or: pip install "ray[data]>=2.58")'


def import_ray():
    """The ``ray`` module with Ray Data, or a DlappsError that says how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise DlappsError(f"expected Ray (Ray Data) for --engine ray, but it is not installed ({exc}); "
                          f"install it with: {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_session(address: str | None = None):
    """Ray, connected: the session already open in this process if there is one; else a new local Ray when
    ``address`` and ``$RAY_ADDRESS`` are unset, or the cluster at ``address`` (``auto``, ``ray://host:10001``,
    ``host:6379``). A session opened here is shut down on leaving."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    address = address or os.environ.get("RAY_ADDRESS") or "local"
    # log_to_driver=False: the workers' TensorFlow and Ray logs stay in Ray's log folder
    # (/tmp/ray/session_latest/logs), so that the terminal shows dlapps' progress bar and summary only.
    ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class ActorPool:
    """How many model actors to start and what each reserves."""
    size: int
    num_cpus: float
    num_gpus: float

    @classmethod
    def for_resources(cls, resources: dict, size: int | None = None) -> "ActorPool":
        """One actor per GPU when the cluster has GPUs; else one per 4 CPUs (at least one), the actors together
        reserving half the CPUs at most, so that the preprocessing tasks always have CPUs left (on 2 CPUs, two
        actors of 1 CPU each would leave none, and the run would wait forever)."""
        gpus, cpus = int(resources.get("GPU", 0)), float(resources.get("CPU", 1))
        if size is not None and size < 1:
            raise DlappsError(f"expected at least 1 Ray actor, received {size}")
        if gpus:
            return cls(size or gpus, 1.0, 1.0)
        size = size or max(1, int(cpus // 4))
        share = cpus / (2 * size)
        return cls(size, float(int(share)) if share >= 1 else share, 0.0)


def run_batch_on_ray(predictor, items: list[tuple[str, Any]], output=None, batch_size: int = 32,
                     progress: bool = True, echo=None, options: dict | None = None, output_dir=None,
                     retry_errors: bool = False, address: str | None = None,
                     actors: int | None = None) -> BatchSummary:
    """``dlapps.batch.run_batch`` on Ray Data: the same records (in completion order), the same resume.

    ``predictor`` gives the task (its model is shipped to the actors as its artifact folder, or loaded there
    from its preset); ``address`` is the Ray cluster (see ``ray_session``); ``actors`` the number of model
    actors (default: from the cluster's resources, see ``ActorPool``).
    """
    options = predictor.options(options)
    with BatchRun(predictor.task, items, output, output_dir, progress, echo, retry_errors) as run:
        if not run.todo:
            return run.summary
        with ray_session(address) as ray:
            pool = ActorPool.for_resources(ray.cluster_resources(), actors)
            dataset = _dataset(ray, predictor, run.todo, options, batch_size, pool)
            try:
                for row in dataset.iter_rows():
                    run.record(str(row["input"]), _loads(row["result"]))
            except ray.exceptions.RayError as exc:
                raise DlappsError(f"the Ray run failed: {last_line(exc) or type(exc).__name__}") from exc
    return run.summary


def _dataset(ray, predictor, todo, options: dict, batch_size: int, pool: ActorPool):
    """inputs -> preprocess (Ray tasks) -> forward and postprocess (the model's actor pool)."""
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the BatchRun's progress bar counts the records
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    model = _shipped_model(ray, predictor)
    rows = [{"input": input_id, "raw": _dumps(raw)} for input_id, raw in todo]
    blocks = max(1, min(len(rows), math.ceil(len(rows) / batch_size), 1000))
    return (
        ray.data.from_items(rows, override_num_blocks=blocks)
        .map_batches(_preprocess, fn_kwargs={"model": model, "options": options}, batch_size=batch_size,
                     batch_format="numpy", num_cpus=PREPROCESS_CPUS, udf_modifying_row_count=False)
        .map_batches(ModelActor, fn_constructor_kwargs={"model": model},
                     fn_kwargs={"options": options, "batch_size": batch_size}, batch_size=batch_size,
                     batch_format="numpy", compute=ActorPoolStrategy(size=pool.size), num_cpus=pool.num_cpus,
                     num_gpus=pool.num_gpus or None, udf_modifying_row_count=False)
    )


def _preprocess(batch: dict, model: dict, options: dict) -> dict:
    """A Ray Data map: the task's preprocess of each raw input (a bad input gives its exception)."""
    prepared = preprocess_each(_worker_task(model), [_loads(raw) for raw in batch["raw"]], options)
    return {"input": batch["input"], "prepared": [_dumps(item) for item in prepared]}


class ModelActor:
    """A Ray actor holding one loaded model: forward and postprocess of preprocessed batches."""

    def __init__(self, model: dict):
        if model.get("archive") is None:
            self.predictor = Predictor.from_preset(model["task_cls"], model["preset"])
        else:
            self.predictor = Predictor.from_artifact(model["task_cls"], _unpacked(model["archive"]))

    def __call__(self, batch: dict, options: dict, batch_size: int) -> dict:
        results = self.predictor.predict_prepared([_loads(item) for item in batch["prepared"]], options,
                                                  batch_size)
        return {"input": batch["input"], "result": [_dumps(result) for result in results]}


def _shipped_model(ray, predictor) -> dict:
    """What the workers load the model and task from: the task class (imported there by name) and the
    artifact folder as a tar archive in Ray's object store (so that nodes without the driver's files get it),
    or the preset of a model loaded from a preset."""
    task_cls = type(predictor.task)
    if predictor.model_dir is None:
        return {"task_cls": task_cls, "preset": predictor.meta.get("preset")}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(predictor.model_dir, arcname=".")
    return {"task_cls": task_cls, "archive": ray.put(buffer.getvalue())}


_worker_cache: dict = {}  # per worker process: artifact folders unpacked and tasks loaded, by archive


def _unpacked(archive) -> str:
    """The shipped artifact, unpacked once per worker process into a folder removed when the process ends."""
    import ray

    key = ("folder", archive.hex())
    if key not in _worker_cache:
        folder = tempfile.TemporaryDirectory(prefix="dlapps-ray-model-")
        with tarfile.open(fileobj=io.BytesIO(ray.get(archive))) as tar:
            tar.extractall(folder.name, filter="data")
        _worker_cache[key] = folder
    return _worker_cache[key].name


def _worker_task(model: dict):
    """The task with its state (tokenizers, labels) for preprocessing, loaded once per worker process; task
    instances are not shipped, as they may hold what cannot be pickled (caches, locks)."""
    from dlapps.store import load_task

    key = ("task", model["task_cls"], model["archive"].hex() if model.get("archive") else model["preset"])
    if key not in _worker_cache:
        _hide_unreserved_gpus()
        _worker_cache[key] = (load_task(_unpacked(model["archive"]), model["task_cls"])[0] if model.get("archive")
                              else Predictor.from_preset(model["task_cls"], model["preset"]).task)
    return _worker_cache[key]


def _hide_unreserved_gpus() -> None:
    """Keep TensorFlow in a worker that reserved no GPU (a preprocessing task) off the GPUs: Ray leaves them
    visible to it, and TensorFlow would take their memory from the model actors."""
    import ray

    if ray.get_runtime_context().get_accelerator_ids().get("GPU"):
        return
    import tensorflow as tf

    try:
        tf.config.set_visible_devices([], "GPU")
    except RuntimeError:  # TensorFlow already started in this process: too late to hide them
        pass


def _dumps(value) -> bytes:
    """Inputs and results cross Ray as pickled bytes: arrays, file outputs and exceptions keep their types."""
    from ray import cloudpickle

    return cloudpickle.dumps(value)


def _loads(data) -> Any:
    from ray import cloudpickle

    return cloudpickle.loads(data)
