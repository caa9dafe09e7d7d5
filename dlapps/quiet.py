"""Quiet start-up: TensorFlow's native start-up chatter (CUDA probing on a CPU machine, absl's pre-init notice,
CPU-feature hints) and OpenCV's codec notes are kept from the terminal, while anything else TensorFlow or the
program writes to stderr meanwhile is passed on. ``DLAPPS_LOG_LEVEL=debug`` shows everything.

TensorFlow prints these lines from C++ before its own ``TF_CPP_MIN_LOG_LEVEL`` applies, straight to file
descriptor 2, so they are caught there: ``native_stderr_filtered()`` points descriptor 2 at a temporary file
for the duration of a block, then writes back every line that is not start-up noise. ``quiet_tensorflow_import``
makes the first ``import tensorflow`` (whoever imports it: Keras, a plugin) such a block.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import re
import sys
import tempfile
from contextlib import contextmanager

#: Lines of native start-up noise: absl's notice, CUDA probing on a machine without a GPU driver, CPU-feature
#: hints, oneDNN's notice.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:. ]+\d+ (cudart_stub|cuda_platform|cuda_executor|cuda_diagnostics|cpu_feature_guard"
    r"|port|cuda_dnn|cuda_fft|cuda_blas|computation_placer|gpu_device|cuda_driver)\.cc:\d+\]"
    r"|To enable the following instructions: .* in other operations, rebuild TensorFlow"
    r"|oneDNN custom operations are on)")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # "FFMPEG: tag ... is not supported" and the like


def showing_everything() -> bool:
    """Whether the user asked for every log line (``DLAPPS_LOG_LEVEL=debug``)."""
    return os.environ.get("DLAPPS_LOG_LEVEL", "").lower() in ("debug", "all", "verbose")


@contextmanager
def native_stderr_filtered():
    """Within the block, what anything writes to file descriptor 2 is held back, and written out afterwards
    without the start-up noise (``NOISE``)."""
    if showing_everything():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no descriptor 2 (some embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            try:
                sys.stderr.flush()
            except ValueError:
                pass
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = [line for line in held.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietLoader(importlib.abc.Loader):
    """The real loader of a module, run inside ``native_stderr_filtered``."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with native_stderr_filtered():
            self.loader.exec_module(module)
        import logging

        logging.getLogger("tensorflow").addFilter(drop_retracing_notes)


def drop_retracing_notes(record) -> bool:
    """A logging filter: False for TensorFlow's "N out of the last M calls to <function> triggered tf.function
    retracing" notes (a last partial batch, an evaluation after training: expected here, and nothing a user can
    act on), True for every other record."""
    return "triggered tf.function retracing" not in record.getMessage()


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, with its real spec and a loader that filters its start-up output."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path[:] = [finder for finder in sys.meta_path if finder is not self]
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Make the first ``import tensorflow`` of this process filter TensorFlow's native start-up noise (a no-op
    when it is already imported, or when ``DLAPPS_LOG_LEVEL=debug``)."""
    if showing_everything():
        return
    if "tensorflow" in sys.modules:  # imported first by a script or a notebook: the log filter still applies
        import logging

        logging.getLogger("tensorflow").addFilter(drop_retracing_notes)
        return
    if not any(isinstance(finder, _QuietFirstImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport())
