"""Translation defaults that follow the data: vocabulary, model size, length limits, schedule, passes.

A config value left at 0 (the defaults) is chosen here from the training pairs;
a value the user set (``--set hidden_dim=256``) is kept. ``plan`` returns the
choices with the reason for each, which training prints.
"""

from __future__ import annotations

import math

import numpy as np

from dlapps.plugin import WarmupCosine

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
    """The learning-rate schedule of ``config``: the core's ``WarmupCosine`` over the planned steps."""
    return WarmupCosine(config["learning_rate"], config["warmup_steps"], planned_steps(config))
