"""Devices, distribution strategy, precision, memory growth and seeds.

``configure()`` decides once per process and remembers why, so that
``dlapps info`` can print the reasoning and training can follow it.

Environment overrides:
- ``DLAPPS_CPU_REPLICAS=N`` splits the CPU into N logical devices and trains
  with MirroredStrategy over them (how tests exercise the multi-replica path).
- ``DLAPPS_PRECISION=float32|mixed_float16|mixed_bfloat16`` forces a precision policy.
- ``TF_CONFIG`` (the standard TensorFlow variable) selects multi-worker training.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field

# TensorFlow's C++ start-up logging is quieted by dlapps.quiet, which the package imports first.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


@dataclass
class Runtime:
    strategy: object
    devices: list[str]
    gpus: list[str]
    precision: str
    jit_compile: bool
    reasons: list[str] = field(default_factory=list)

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync)

    @property
    def strategy_name(self) -> str:
        name = type(self.strategy).__name__
        if name == "CollectiveAllReduceStrategy":  # the class of tf.distribute.MultiWorkerMirroredStrategy()
            return "MultiWorkerMirroredStrategy"
        return "default" if name.startswith("_Default") else name

    def global_batch_size(self, per_replica: int) -> int:
        """The batch size a step consumes: the per-replica size times the replicas."""
        return per_replica * self.replicas

    def describe(self) -> dict:
        import keras
        import tensorflow as tf

        return {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "platform": platform.platform(),
            "devices": self.devices,
            "strategy": self.strategy_name,
            "replicas": self.replicas,
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "why": self.reasons,
        }


_runtime: Runtime | None = None


def configure(seed: int | None = None) -> Runtime:
    """Detect devices and choose strategy and precision (once per process)."""
    global _runtime
    if _runtime is None:
        _runtime = _detect()
    if seed is not None:
        set_seed(seed)
    return _runtime


def set_seed(seed: int) -> None:
    import keras

    keras.utils.set_random_seed(int(seed))


def _detect() -> Runtime:
    import keras
    import tensorflow as tf

    from dlapps.quiet import native_stderr_filtered

    reasons: list[str] = []
    with native_stderr_filtered():  # CUDA probing on a machine without a GPU driver: noise, not an error
        gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # devices already initialised by someone else
            pass
    if gpus:
        reasons.append(f"memory growth on for {len(gpus)} GPU(s), so several tasks can share them")

    cpu_replicas = int(os.environ.get("DLAPPS_CPU_REPLICAS", "0") or 0)
    if cpu_replicas > 1 and not gpus:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
            )
        except RuntimeError:
            pass  # already initialised: use what exists

    strategy = _choose_strategy(tf, gpus, cpu_replicas, reasons)
    precision = _choose_precision(tf, gpus, reasons)
    keras.mixed_precision.set_global_policy(precision)
    jit = bool(gpus)
    reasons.append(
        "XLA on: compiled kernels pay off on GPU" if jit
        else "XLA off: on CPU its compile time outweighs the gain for small models"
    )
    devices = [d.name for d in tf.config.list_logical_devices()]
    return Runtime(strategy, devices, [g.name for g in gpus], precision, jit, reasons)


def _choose_strategy(tf, gpus, cpu_replicas: int, reasons: list[str]):
    tf_config = os.environ.get("TF_CONFIG")
    if tf_config:
        cluster = json.loads(tf_config).get("cluster", {})
        workers = len(cluster.get("worker", []))
        reasons.append(f"MultiWorkerMirroredStrategy: TF_CONFIG names {workers} worker(s)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(gpus) > 1:
        reasons.append(f"MirroredStrategy: {len(gpus)} GPUs, one replica each")
        return tf.distribute.MirroredStrategy()
    if cpu_replicas > 1 and not gpus:
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        reasons.append(f"MirroredStrategy over {len(cpus)} logical CPU devices (DLAPPS_CPU_REPLICAS)")
        return tf.distribute.MirroredStrategy(devices=cpus)
    reasons.append(
        "default strategy: one GPU, no replication needed" if gpus
        else "default strategy: no GPU found, training on the CPU"
    )
    return tf.distribute.get_strategy()


def _choose_precision(tf, gpus, reasons: list[str]) -> str:
    forced = os.environ.get("DLAPPS_PRECISION")
    if forced:
        reasons.append(f"precision {forced}: set by DLAPPS_PRECISION")
        return forced
    if not gpus:
        reasons.append("float32: mixed precision does not speed up CPUs")
        return "float32"
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    if tuple(capability) >= (7, 0):
        reasons.append(f"mixed_float16: GPU compute capability {capability} has tensor cores")
        return "mixed_float16"
    reasons.append(f"float32: GPU compute capability {capability} lacks tensor cores")
    return "float32"
