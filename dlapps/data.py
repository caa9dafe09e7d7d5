"""Datasets as tasks hand them to the core: three splits of raw inputs and targets, and how to split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np


@dataclass
class Split:
    """One split of a dataset: raw inputs (paths, arrays, strings, ids) and their targets.

    ``targets`` may be None (unlabelled data: a generator, an autoencoder), an
    array, or a list of per-example values of different shapes (boxes).
    """

    inputs: Sequence[Any]
    targets: Any = None
    names: Sequence[str] | None = None  # how to refer to each input in reports

    def __len__(self) -> int:
        return len(self.inputs)

    def name(self, i: int) -> str:
        return str(self.names[i]) if self.names is not None else f"#{i}"

    def target(self, i: int):
        return None if self.targets is None else self.targets[i]

    def head(self, n: int) -> "Split":
        """The first ``n`` examples (splits are shuffled or stratified when built)."""
        cut = (lambda values: None if values is None else values[:n])
        return Split(cut(self.inputs), cut(self.targets), cut(self.names))

    def take(self, indices) -> "Split":
        """The examples at ``indices``, in that order."""
        indices = [int(i) for i in indices]

        def pick(values):
            if values is None:
                return None
            if isinstance(values, np.ndarray):
                return values[np.asarray(indices, dtype=np.int64)]
            return [values[i] for i in indices]

        return Split(pick(self.inputs), pick(self.targets), pick(self.names))


@dataclass
class Dataset:
    """Train, validation and test splits, plus what the model card says about them."""

    train: Split
    validation: Split
    test: Split
    description: str = ""
    config: dict = field(default_factory=dict)  # task config from the data (labels, sizes); the user's --set wins

    def head(self, n: int) -> "Dataset":
        """At most ``n`` examples per split, for quick runs."""
        return Dataset(self.train.head(n), self.validation.head(n), self.test.head(n),
                       f"{self.description} (first {n} examples per split)", self.config)


def split_indices(count: int, fractions=(0.8, 0.1, 0.1), seed: int = 0, groups=None, strata=None):
    """Indices of train, validation and test (sorted arrays) for ``count`` examples.

    - ``groups`` (one key per example: a speaker, a source sentence, a patient)
      keeps all examples of a group in one split, so the test split holds only
      groups never trained on;
    - ``strata`` (one key per example: a class label) splits each stratum in the
      given fractions, so every class is in every split.

    Every split of a stratum gets at least one group when it has three or more; one with fewer
    goes to train whole.
    The same arguments always give the same split.
    """
    if len(fractions) != 3 or not np.isclose(sum(fractions), 1.0) or min(fractions) < 0:
        raise ValueError(f"expected three fractions (train, validation, test) adding up to 1, received {fractions}")
    rng = np.random.default_rng(seed)
    groups = np.arange(count) if groups is None else np.asarray(groups)
    strata = np.zeros(count, dtype=np.int64) if strata is None else np.asarray(strata)
    parts: tuple[list, list, list] = ([], [], [])
    for stratum in _unique_in_order(strata):
        members = np.flatnonzero(strata == stratum)
        units = _unique_in_order(groups[members])
        order = [units[i] for i in rng.permutation(len(units))]
        n_test = _share(len(order), fractions[2])
        n_val = _share(len(order), fractions[1])
        chosen = {unit: (2 if k < n_test else 1 if k < n_test + n_val else 0) for k, unit in enumerate(order)}
        for i in members:
            parts[chosen[groups[i]]].append(i)
    return tuple(np.sort(np.asarray(p, dtype=np.int64)) for p in parts)


def split_dataset(split: Split, fractions=(0.8, 0.1, 0.1), seed: int = 0, groups=None, strata=None) -> tuple:
    """(train, validation, test) Splits of ``split``; see ``split_indices``."""
    return tuple(split.take(part) for part in split_indices(len(split), fractions, seed, groups, strata))


def _share(units: int, fraction: float) -> int:
    if fraction <= 0 or units < 3:  # too few to hold any out: all of them train
        return 0
    return max(1, int(round(units * fraction)))


def _unique_in_order(values) -> list:
    """The distinct values, sorted when they can be (so the split does not depend on input order)."""
    distinct = list(dict.fromkeys(values.tolist() if isinstance(values, np.ndarray) else values))
    try:
        return sorted(distinct)
    except TypeError:
        return distinct
