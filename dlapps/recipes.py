"""The training plan each task derives from its data: steps, batch, patience, schedule, time budget, and
whatever the task chooses itself (input size, anchors, class weights, augmentation), each with its reason.

Training makes a ``Recipe`` before the model is built::

    task.plan(dataset, recipe)               # the task's own choices: recipe.choose("image_size", 32, "why")
    plan_training(task, dataset, recipe)     # the core's: batch size, steps, epochs, patience, warm-up

``recipe.choose`` keeps what the user set (``--set KEY=VALUE``, ``--epochs``, ``--batch-size``) and what the
dataset itself declares (the default data's own settings), and says so. Training prints the plan, writes it
into ``task.json`` (``training.recipe``) and the model card.

The schedule is the core's too: ``schedule="warmup_cosine"`` (the default) warms the learning rate up over
``warmup_steps`` and decays it along a cosine over the planned steps, or over the time budget
(``time_budget`` seconds, ``dlapps train --time-budget``) when that runs out first (``TrainingClock``).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: The plan's settings every task has; a task's ``default_config`` may override the values.
#: ``epochs``: passes over the default data (the plan turns them into steps for other data); ``steps``: 0 lets
#: the plan choose; ``min_steps`` / ``max_steps``: the floor and ceiling of the planned steps (0: none);
#: ``patience``: epochs of early stopping (with the warm-up + cosine schedule, raised to ``patience_share`` of the
#: steps, and watched from half-way only), ``patience_steps`` at least; ``time_budget``: seconds
#: of training (0: none); ``schedule``: ``warmup_cosine`` or ``plateau`` (halve the rate on a plateau).
PLAN_DEFAULTS = {"epochs": 20, "batch_size": 32, "patience": 5, "learning_rate": 1e-3, "steps": 0,
                 "min_steps": 0, "max_steps": 0, "patience_share": 0.5, "patience_steps": 100, "warmup_share": 0.05,
                 "time_budget": 0, "schedule": "warmup_cosine"}
#: Early stopping and learning-rate cuts wait at least this many optimizer steps, whatever the epoch count says
#: (a task with a noisier validation score raises it with its ``patience_steps``).
MIN_PATIENCE_STEPS = PLAN_DEFAULTS["patience_steps"]
#: A smaller batch for a small training split: an epoch has at least this many optimizer steps.
MIN_STEPS_PER_EPOCH = 3
MIN_BATCH_SIZE = 8
#: An epoch (one validation, one backup for resume) is at least this many steps: a small training split is
#: repeated within an epoch rather than validated and saved after every 3 steps.
MIN_EPOCH_STEPS = 25


@dataclass
class Choice:
    """One setting of the plan: its value and why (``set by you`` when the user gave it)."""

    key: str
    value: object
    why: str

    def line(self) -> str:
        return f"{self.key}={_short(self.value)}: {self.why}"


class Recipe:
    """The plan of one training run: ``choose`` a value for a config key with a reason; ``note`` a fact.

    ``config`` (the task config) is updated in place. Keys in ``user`` (what the user set) and in ``given``
    (what the dataset declares) keep their value; the choice records who set it."""

    def __init__(self, config: dict, user=(), given=()):
        self.config, self.user, self.given = config, set(user), set(given)
        self.choices: dict[str, Choice] = {}
        self.notes: list[str] = []

    def choose(self, key: str, value, why: str):
        """Set ``config[key] = value`` because ``why``, unless the user or the dataset set it; the value used."""
        if key in self.user or key in self.given:
            value = self.config.get(key)
            why = "set by you" if key in self.user else "set by the dataset"
        self.config[key] = value
        self.choices[key] = Choice(key, value, why)
        return value

    def is_set(self, key: str) -> bool:
        """Whether the user or the dataset set ``key`` (the plan then keeps it)."""
        return key in self.user or key in self.given

    def note(self, text: str) -> None:
        """A fact about the data that the plan followed (``1,204 training pairs left out: too long``)."""
        self.notes.append(text)

    def lines(self) -> list[str]:
        return [c.line() for c in self.choices.values()] + self.notes

    def record(self) -> dict:
        """What task.json keeps: ``{"choices": [{"key", "value", "why"}], "notes": [...]}``."""
        return {"choices": [{"key": c.key, "value": c.value, "why": c.why} for c in self.choices.values()],
                "notes": list(self.notes)}

    def print(self, task_name: str, file=None) -> None:
        print(f"dlapps: the {task_name} training plan, from the data (override any value with --set KEY=VALUE):\n"
              + "\n".join(f"  - {line}" for line in self.lines()), file=file or sys.stderr)


def plan_training(recipe: Recipe, train_size: int, replicas: int = 1) -> None:
    """The core's part of the plan, for ``train_size`` training examples on ``replicas`` devices: the batch size,
    the optimizer steps (the task's passes over the data within ``min_steps`` and ``max_steps``), the epochs
    that make them, early-stopping patience and warm-up."""
    cfg = recipe.config
    default_batch = int(cfg["batch_size"])
    fitting = 2 ** int(math.log2(max(1, train_size // MIN_STEPS_PER_EPOCH)))
    batch = max(MIN_BATCH_SIZE, min(default_batch, fitting))
    recipe.choose("batch_size", batch,
                  f"the default ({default_batch})" if batch == default_batch else
                  f"smaller than the default {default_batch} for {train_size:,} training examples, so that an epoch "
                  f"has at least {MIN_STEPS_PER_EPOCH} steps")
    per_pass = max(1, math.ceil(train_size / (cfg["batch_size"] * max(1, replicas))))
    if recipe.is_set("epochs") and not recipe.is_set("steps"):
        recipe.choose("steps", int(cfg["epochs"]) * per_pass, f"{cfg['epochs']} epochs of {per_pass} steps")
    elif not recipe.is_set("steps"):
        passes = int(cfg["epochs"])
        steps = passes * per_pass
        low, high = int(cfg.get("min_steps") or 0), int(cfg.get("max_steps") or 0)
        why = f"{passes} passes over {train_size:,} examples in batches of {cfg['batch_size']}"
        if low and steps < low:
            steps, why = low, f"{why} would be {steps:,} steps; raised to the floor min_steps={low:,}: small data " \
                              "needs more passes to learn anything beyond its first few batches"
        elif high and steps > high:
            steps, why = high, f"{why} would be {steps:,} steps; capped at max_steps={high:,}"
        recipe.choose("steps", steps, why)
    else:
        recipe.choose("steps", int(cfg["steps"]), "")
    steps = max(1, int(cfg["steps"]))
    per_epoch = per_pass if recipe.is_set("epochs") else max(per_pass, min(MIN_EPOCH_STEPS, steps))
    if per_epoch > per_pass and not recipe.is_set("steps_per_epoch"):
        # epochs of repeated data: whole epochs that make the planned steps (30 steps are one epoch of 30, not two
        # of 25, which would run 50)
        per_epoch = math.ceil(steps / max(1, steps // per_epoch))
    recipe.choose("steps_per_epoch", per_epoch,
                  "one pass over the training data" if per_epoch == per_pass else
                  f"{per_epoch / per_pass:.1f} passes over the training data ({per_pass} steps): an epoch (a "
                  f"validation, a backup) every {MIN_EPOCH_STEPS} steps at least")
    per_epoch = max(1, int(cfg["steps_per_epoch"]))
    least = int(cfg.get("patience_steps", MIN_PATIENCE_STEPS))
    recipe.choose("epochs", max(1, math.ceil(steps / per_epoch)), f"{steps:,} steps at {per_epoch} steps an epoch")
    if cfg.get("schedule") == "warmup_cosine":
        share = float(cfg.get("patience_share", 0.5))
        patience_steps = max(least, int(share * steps))
        recipe.choose("patience", max(int(cfg["patience"]), math.ceil(patience_steps / per_epoch)),
                      f"epochs without a better validation score before stopping: {patience_steps:,} steps "
                      f"({share:.0%} of the plan, at least {least}), watched from half-way: the cosine decay ends "
                      "the run, and the best epoch of its second half is kept")
    else:
        recipe.choose("patience", patience_epochs(int(cfg["patience"]), per_epoch, least),
                      f"epochs without a better validation score before the rate is halved (a third of it) and "
                      f"training stops; at least {least} steps")
    if cfg.get("schedule") == "warmup_cosine":
        recipe.choose("warmup_steps", int(cfg.get("warmup_share", 0.05) * steps) if not cfg.get("warmup_steps")
                      else int(cfg["warmup_steps"]),
                      f"the learning rate rises to {cfg['learning_rate']:g} over the first "
                      f"{cfg.get('warmup_share', 0.05):.0%} of the steps, then follows a cosine down to 5% of it "
                      + ("by the time budget or the last step, whichever comes first" if cfg.get("time_budget")
                         else "at the last step"))
    if cfg.get("time_budget"):
        recipe.choose("time_budget", cfg["time_budget"], "seconds of training at most: training stops there and "
                      "keeps its best epoch")


def patience_epochs(patience: int, steps_per_epoch: int | None, min_steps: int = MIN_PATIENCE_STEPS) -> int:
    """``patience`` (epochs), raised so that at least ``min_steps`` steps pass. An epoch of a tiny
    dataset is one or two steps: too few for the weights, and BatchNorm's moving statistics that validation
    uses, to catch up, so validation sits at chance for the first epochs while training improves; counted in
    epochs, patience would halve the learning rate and stop training before the model had learned anything."""
    if not steps_per_epoch:
        return patience
    return max(patience, math.ceil(min_steps / steps_per_epoch))


def _short(value) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- the schedule ------------------------------------------------------------------------------------------

def warmup_cosine_class():
    """``WarmupCosine``, made (and registered with Keras) on first use, so that importing this module needs
    no Keras."""
    global _WarmupCosine
    if _WarmupCosine is None:
        _WarmupCosine = _warmup_cosine()
    return _WarmupCosine


_WarmupCosine = None


def WarmupCosine(peak: float, warmup_steps: int, total_steps: int, floor_share: float = 0.05):  # noqa: N802
    """A ``keras.optimizers.schedules.LearningRateSchedule``: linear warm-up from 0 to ``peak`` over
    ``warmup_steps``, then cosine decay to ``peak * floor_share``, following whichever runs out first: the
    steps, or the clock (``TrainingClock``)."""
    return warmup_cosine_class()(peak, warmup_steps, total_steps, floor_share)


def _warmup_cosine():
    import keras

    @keras.saving.register_keras_serializable(package="dlapps")
    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up from 0 to ``peak`` over ``warmup_steps`` (as Keras' CosineDecay warms up), then
        cosine decay to ``peak * floor_share``, following whichever runs out first: the steps, or the clock.

        ``total_steps`` and ``clock`` are variables that ``TrainingClock`` sets: the steps the ``fit`` really
        makes, and the share of the time budget left after warm-up that has passed (0 to 1). Without that
        callback (multi-worker training runs none) the decay follows the planned steps alone. A run that the
        time budget stops has therefore still annealed, instead of stopping at a high rate half-way down."""

        def __init__(self, peak: float, warmup_steps: int, total_steps: int, floor_share: float = 0.05):
            self.peak, self.warmup_steps = float(peak), max(0, int(warmup_steps))
            self.floor_share, self.planned_steps = float(floor_share), int(total_steps)
            self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                              name="learning_rate_total_steps")
            self.clock = keras.Variable(0.0, dtype="float32", trainable=False, name="learning_rate_clock")

        def __call__(self, step):
            from keras import ops

            step = ops.cast(step, "float32")
            warm = self.peak * step / max(1, self.warmup_steps)
            by_steps = (step - self.warmup_steps) / ops.maximum(1.0, self.total_steps - self.warmup_steps)
            done = ops.clip(ops.maximum(by_steps, self.clock), 0.0, 1.0)
            floor = self.floor_share * self.peak
            decayed = floor + (self.peak - floor) * 0.5 * (1.0 + ops.cos(math.pi * done))
            return ops.where(step < self.warmup_steps, warm, decayed)

        def get_config(self):
            return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.planned_steps,
                    "floor_share": self.floor_share}

    return WarmupCosine


def schedule_of(model):
    """The ``WarmupCosine`` that drives ``model``'s optimizer, or None."""
    rate = getattr(getattr(model, "optimizer", None), "_learning_rate", None)
    return rate if _WarmupCosine is not None and isinstance(rate, _WarmupCosine) else None


def apply_schedule(model, config: dict) -> None:
    """Give a compiled ``model``'s optimizer the plan's schedule (``config["schedule"] == "warmup_cosine"``)
    over ``config["steps"]``, peaking at the learning rate it was compiled with. An optimizer that already has
    a schedule of its own keeps it."""
    import keras

    optimizer = getattr(model, "optimizer", None)
    if config.get("schedule") != "warmup_cosine" or optimizer is None or not config.get("steps"):
        return
    if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        return
    peak = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
    optimizer.learning_rate = WarmupCosine(peak, int(config.get("warmup_steps") or 0), int(config["steps"]))


#: Where ``TrainingClock`` keeps the time a run has spent, beside Keras' backup (and removed with it).
CLOCK_FILE = "dlapps_training_clock.json"


def TrainingClock(seconds: float, folder, schedule=None):  # noqa: N802  (builds the callback)
    """A Keras callback that keeps a training run's clock: it stops training once ``seconds`` have been spent
    (0: no limit), moves ``schedule``'s clock with the time and sets its ``total_steps`` to the steps the
    ``fit`` makes. The time spent is saved in ``folder`` (the run's backup folder) after each epoch, so that
    a run resumed after a crash goes on from the time and the learning rate it had, not from zero."""
    import keras

    path = Path(folder) / CLOCK_FILE

    class _TrainingClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            try:
                resumed = (path.parent / "training_metadata.json").is_file()  # Keras' backup of a killed run
                saved = json.loads(path.read_text(encoding="utf-8")) if resumed and path.is_file() else {}
            except (OSError, ValueError):
                saved = {}
            self.spent_before, self.warm_at = float(saved.get("spent", 0.0)), saved.get("warm_at")
            self.started = time.monotonic()
            self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))  # once: no sync a step
            if schedule is not None and self.params.get("steps") and self.params.get("epochs"):
                schedule.total_steps.assign(float(self.params["steps"] * self.params["epochs"]))

        def spent(self) -> float:
            return self.spent_before + time.monotonic() - self.started

        def on_train_batch_begin(self, batch, logs=None):
            if schedule is None or not seconds:
                return
            if self.warm_at is None:
                if self.step < schedule.warmup_steps:
                    return
                self.warm_at = self.spent()
            schedule.clock.assign(min(1.0, (self.spent() - self.warm_at) / max(1.0, seconds - self.warm_at)))

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if seconds and self.spent() > seconds and not self.model.stop_training:
                print(f"\ndlapps: training stopped at batch {batch + 1} of an epoch: {self.spent():.0f} s spent, "
                      f"the time budget is time_budget={seconds:g} s (--time-budget; 0 for none)", file=sys.stderr)
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(".tmp")
            staging.write_text(json.dumps({"spent": self.spent(), "warm_at": self.warm_at}), encoding="utf-8")
            staging.replace(path)

    return _TrainingClock()
