"""Training missing default models in the background, one at a time, fastest first, with the progress
of each (stage, epoch, monitored metric, time left) for the studio's tabs and one overall line for the
terminal. A training that fails is recorded with its error; the others go on."""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field

from dlapps.errors import DlappsError
from dlapps.metric_names import metric_label

log = logging.getLogger("dlapps.background_training")


@dataclass
class TrainingStatus:
    """Where the background training of one task's default model stands."""

    task: str
    estimate: float
    state: str = "waiting"  # waiting, training, ready, failed
    stage: str = "waiting for its turn"
    epoch: int = 0
    epochs: int = 0
    metric: str = ""
    value: float | None = None
    started: float | None = None
    training_started: float | None = None
    error: str = ""
    predictor: object = field(default=None, repr=False)
    #: The task's class, whose ``metric_names`` name the watched metric for a person.
    task_class: type | None = field(default=None, repr=False)

    def seconds_left(self) -> float | None:
        if self.state != "training" or self.started is None:
            return None
        if self.epoch and self.training_started and self.epochs:
            per_epoch = (time.time() - self.training_started) / self.epoch
            return per_epoch * (self.epochs - self.epoch)  # early stopping may end it sooner
        return max(0.0, self.estimate - (time.time() - self.started))

    def line(self) -> str:
        """One line a person reads: ``training: epoch 3/20, val_loss 0.1234, about 2 min left``."""
        if self.state in ("ready", "failed"):
            return {"ready": "ready", "failed": f"training failed: {self.error}"}[self.state]
        parts = [self.stage]
        if self.epoch:
            parts.append(f"epoch {self.epoch}/{self.epochs}")
        if self.value is not None:
            parts.append(f"{metric_label(self.metric, self.task_class)} {self.value:.4g}")
        left = self.seconds_left()
        if left is not None:
            parts.append(f"about {duration(left)} left")
        return ", ".join(parts)


class BackgroundTraining:
    """Trains the missing default models of ``names`` one after another, fastest first, in a thread."""

    def __init__(self, task_classes: dict, echo=None):
        order = sorted(task_classes, key=lambda name: task_classes[name].training_seconds)
        self.statuses = {name: TrainingStatus(name, float(task_classes[name].training_seconds),
                                              task_class=task_classes[name]) for name in order}
        self._echo = echo or _terminal_line
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start training (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None and self.statuses:
                self._thread = threading.Thread(target=self._run, name="dlapps-studio-training", daemon=True)
                self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every model is trained or failed; True if all ended in time."""
        if self._thread is not None:
            self._thread.join(timeout)
        return all(s.state in ("ready", "failed") for s in self.statuses.values())

    def tab_line(self, name: str) -> str:
        """What the tab of ``name`` says: its progress, or, while it waits, its place in line and about when it
        will be ready (the time left of the model training now, the estimates of those waiting before it, and
        its own)."""
        status = self.statuses[name]
        if status.state != "waiting":
            return status.line()
        order = list(self.statuses)
        ahead = [self.statuses[n] for n in order[:order.index(name)]
                 if self.statuses[n].state in ("waiting", "training")]
        seconds = status.estimate
        for other in ahead:
            left = other.seconds_left() if other.state == "training" else None
            seconds += other.estimate if left is None else left
        if not ahead:
            return f"waiting for its turn: next in line, ready in about {duration(seconds)}"
        return (f"waiting for its turn: {len(ahead)} model(s) train before it ({', '.join(s.task for s in ahead)}), "
                f"ready in about {duration(seconds)}")

    def ready_line(self, loaded: int = 0) -> str:
        """The studio's header: ``**3 of 6 models ready**; training speech-recognition: epoch 2/10, ...``.
        ``loaded``: the models that were trained already when the studio started."""
        ready, failed, current = self._progress()
        text = f"**{loaded + ready} of {loaded + len(self.statuses)} models ready**"
        if current:
            text += f"; training {current.task}: {current.line()}"
        if failed:
            text += f"; could not be trained: {', '.join(failed)}"
        return text

    def summary(self) -> str:
        """The overall progress line for the terminal: how many are ready and what trains now."""
        ready, failed, current = self._progress()
        text = f"dlapps studio: {ready}/{len(self.statuses)} missing models trained"
        if failed:
            text += f", {len(failed)} failed ({', '.join(failed)})"
        if current:
            text += f"; training {current.task}: {current.line()}"
        return text

    def _progress(self) -> tuple[int, list[str], TrainingStatus | None]:
        """(models trained, names of those that failed, the status of the one training now)."""
        statuses = list(self.statuses.values())
        return (sum(s.state == "ready" for s in statuses), [s.task for s in statuses if s.state == "failed"],
                next((s for s in statuses if s.state == "training"), None))

    def _run(self) -> None:
        from dlapps.api import train

        for status in self.statuses.values():
            status.state, status.started, status.stage = "training", time.time(), "starting"
            self._report()
            try:
                status.predictor = train(status.task, verbose=0, callbacks=[_progress_callback(status, self._report)],
                                         progress=lambda stage, s=status: self._stage(s, stage))
                status.state = "ready"
            except DlappsError as exc:
                status.state, status.error = "failed", str(exc)
            except Exception as exc:  # a bug in one task must not stop the others
                log.exception("training the default %s model failed", status.task)
                status.state, status.error = "failed", f"{type(exc).__name__}: {exc} (details in the server log)"
            self._report()
        self._echo(self.summary(), final=True)

    def _stage(self, status: TrainingStatus, stage: str) -> None:
        status.stage = stage
        if stage == "training":
            status.training_started = time.time()
        self._report()

    def _report(self) -> None:
        self._echo(self.summary(), final=False)


def _progress_callback(status: TrainingStatus, report):
    import keras

    from dlapps.api import task_class

    monitor = task_class(status.task).monitor

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            status.epochs = int(self.params.get("epochs") or 0)

        def on_epoch_end(self, epoch, logs=None):
            status.epoch = epoch + 1
            value = (logs or {}).get(monitor)
            if value is not None:
                status.metric, status.value = monitor, float(value)
            report()

    return Progress()


def _terminal_line(text: str, final: bool) -> None:
    """One overall progress line: rewritten in place on a terminal, one line per change otherwise."""
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K" + text + ("\n" if final else ""))
    else:
        sys.stderr.write(text + "\n")
    sys.stderr.flush()


def duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"
