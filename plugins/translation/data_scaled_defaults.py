"""Translation defaults that follow the data: vocabulary, model size, length limits, schedule, passes.

A config value left at 0 (the defaults) is chosen here from the training pairs;
a value the user set (``--set hidden_dim=256``) is kept. ``plan`` returns the
choices with the reason for each, which training prints.
"""

from __future__ import annotations

import math

import keras
import numpy as np

#: (fewest training pairs, hidden_dim, layers each side, heads, dropout): the first row that fits applies.
MODEL_SIZES = [
    (150_000, 256, 3, 4, 0.1),
    (30_000, 192, 2, 4, 0.1),
    (3_000, 192, 2, 4, 0.2),
    (0, 128, 2, 4, 0.1),
]
#: Passes over the training pairs: fewer for more data, at most this many optimizer steps in all.
PASSES_FOR_1K_PAIRS = 240
MAX_STEPS = 6_000
#: Tokenizer vocabulary per square root of the number of training pairs.
VOCABULARY_PER_SQRT_PAIR = 10
#: Token lengths kept for training: this percentile of the data, plus the end token.
LENGTH_PERCENTILE = 99


def vocabulary_size(pairs: int) -> int:
    """BPE merges grow with the square root of the data: 1,000 to 8,000 tokens."""
    return int(min(8000, max(1000, 500 * round(VOCABULARY_PER_SQRT_PAIR * math.sqrt(pairs) / 500))))


def length_limit(lengths, positions: int) -> int:
    """The ``LENGTH_PERCENTILE`` of ``lengths`` (tokens, end token included), at least 8, at most ``positions``."""
    return int(min(positions, max(8, math.ceil(np.percentile(lengths, LENGTH_PERCENTILE)))))


def plan(config: dict, pairs: int, batch_size: int, epochs: int) -> list[str]:
    """Fill the automatic (0) entries of ``config`` for ``pairs`` training pairs; the reasons, one a line."""
    reasons = []

    def choose(key, value, why):
        if not config.get(key):
            config[key] = value
            reasons.append(f"{key}={value}: {why}")
        else:
            reasons.append(f"{key}={config[key]}: set by you")

    _, dim, layers, heads, dropout = next(row for row in MODEL_SIZES if pairs >= row[0])
    size_rule = f"for {pairs:,} training pairs (sizes by data: {', '.join(f'≥{r[0]:,}: {r[1]}x{r[2]}' for r in MODEL_SIZES)})"
    choose("hidden_dim", dim, size_rule)
    choose("intermediate_dim", 4 * config["hidden_dim"], "4 x hidden_dim")
    choose("num_heads", heads, f"head width {config['hidden_dim'] // heads}")
    choose("encoder_layers", layers, size_rule)
    choose("decoder_layers", layers, size_rule)
    if config.get("dropout") is None:
        config["dropout"] = dropout
        reasons.append(f"dropout={dropout}: more regularisation for less data")
    steps_per_pass = max(1, math.ceil(pairs / batch_size))
    passes = max(2.0, PASSES_FOR_1K_PAIRS / math.sqrt(max(1.0, pairs / 1000)))
    passes = min(passes, MAX_STEPS / steps_per_pass)
    choose("passes_per_epoch", round(passes / epochs, 3),
           f"{passes:.1f} passes over the data in all ({PASSES_FOR_1K_PAIRS} / sqrt(thousands of pairs), at most "
           f"{MAX_STEPS:,} steps of {batch_size}), spread over {epochs} epochs")
    total = math.ceil(config["passes_per_epoch"] * steps_per_pass) * epochs
    choose("warmup_steps", int(min(4000, max(100, total // 10))), f"a tenth of the {total:,} planned steps")
    return reasons


def planned_steps(config: dict) -> int:
    """Optimizer steps the plan makes: ``epochs`` epochs of ``passes_per_epoch`` passes over the pairs."""
    batches = math.ceil(config["train_pairs"] / config["batch_size"])
    return max(1, math.ceil(config["passes_per_epoch"] * batches) * config["epochs"])


def warmup_cosine(config: dict):
    """The learning-rate schedule of ``config``: a ``WarmupCosine`` over the planned steps."""
    return WarmupCosine(config["learning_rate"], config["warmup_steps"], planned_steps(config))


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to ``peak`` over ``warmup_steps`` (as Keras' CosineDecay warms up), then cosine
    decay to ``peak / 20``, following whichever runs out first: the steps, or the clock.

    ``total_steps`` and ``clock`` are variables that ``TrainingClock`` sets: the steps the ``fit`` really
    makes (``--epochs``, the replicas' global batch and a search's short trials change the plan), and the
    share of the training time left after warm-up that has passed (0 to 1) when training has a time limit.
    Without that callback (multi-worker training runs none) the decay follows the planned steps alone. A run
    that the time limit stops has therefore still annealed, instead of stopping at a high rate half-way down
    the curve."""

    def __init__(self, peak: float, warmup_steps: int, total_steps: int, floor_share: float = 0.05):
        self.peak, self.warmup_steps, self.floor_share = float(peak), max(0, int(warmup_steps)), float(floor_share)
        self.planned_steps = int(total_steps)
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


#: Where ``TrainingClock`` keeps the time a run has spent, beside Keras' backup (and removed with it).
CLOCK_FILE = "dlapps_training_clock.json"


def TrainingClock(seconds: float, folder, schedule: WarmupCosine | None = None):
    """A Keras callback that keeps a training run's clock: it stops training once ``seconds`` have been spent
    (0: no limit), moves ``schedule``'s clock with the time and sets its ``total_steps`` to the steps the
    ``fit`` makes. The time spent is saved in ``folder`` (the run's backup folder) after each epoch, so that
    a run resumed after a crash goes on from the time and the learning rate it had, not from zero."""
    import json
    import sys
    import time
    from pathlib import Path

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
                      f"the limit is max_training_seconds={seconds:g} (set 0 for none)", file=sys.stderr)
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            path.parent.mkdir(parents=True, exist_ok=True)
            staging = path.with_suffix(".tmp")
            staging.write_text(json.dumps({"spent": self.spent(), "warm_at": self.warm_at}), encoding="utf-8")
            staging.replace(path)

    return _TrainingClock()
