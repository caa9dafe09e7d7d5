"""Datasets as tasks hand them to the core: three splits of raw inputs and targets, how to split, and the
class-subfolder layout of labelled files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from dlapps.errors import DataError


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


def read_class_folders(path, suffixes, *, labels=None, min_classes: int = 2, min_per_class: int = 1,
                       unlabelled: bool = False, noun: str = "images") -> tuple[Split, list[str]]:
    """(every file, its class index) of a folder with one subfolder per class, and the class names.

    Files are those whose suffix is in ``suffixes`` (searched recursively in each
    class subfolder); the classes are the subfolders that hold any, sorted, or
    ``labels`` when given (then every subfolder with files must be one of them, and
    the targets index into ``labels``). Checks the folder and says clearly what was
    expected and what was found (DataError): a missing folder, fewer than
    ``min_classes`` classes, fewer than ``min_per_class`` files in a class.
    ``unlabelled``: a folder with files directly in it and no class subfolders is
    read as one unlabelled split (targets None, no class names). Reads no file.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"expected a data folder, received '{root}', which does not exist")
    if not root.is_dir():
        raise DataError(f"expected a folder with one subfolder per class, received the file '{root}'")
    suffixes = tuple(s.lower() for s in suffixes)

    def files_in(folder: Path, recursive: bool = True) -> list[str]:
        found = folder.rglob("*") if recursive else folder.iterdir()
        return sorted(str(p) for p in found if p.is_file() and p.suffix.lower() in suffixes)

    classes = {d.name: files_in(d) for d in sorted(root.iterdir()) if d.is_dir()}
    classes = {name: files for name, files in classes.items() if files}
    loose = files_in(root, recursive=False)
    if unlabelled and loose:
        if classes:
            raise DataError(f"expected either {noun} directly in '{root}' (unlabelled) or one subfolder of {noun} "
                            f"per class, received both: {len(loose)} {noun} in the folder itself and the "
                            f"subfolders {', '.join(list(classes)[:10])}")
        return Split(loose, None, loose), []
    if not classes:
        where = f" or {noun} directly in it" if unlabelled else ""
        raise DataError(f"expected a folder with one subfolder of {noun} per class{where}, received '{root}', "
                        f"which has no subfolder holding {noun} ({', '.join(suffixes)})")
    if labels is not None:
        unknown = [name for name in classes if name not in labels]
        if unknown:
            raise DataError(f"expected class folders named after the model's labels ({', '.join(labels)}), "
                            f"received '{unknown[0]}' in '{root}'")
    if len(classes) < min_classes:
        raise DataError(f"expected at least {min_classes} classes (subfolders with {noun}) in '{root}', received "
                        f"{len(classes)}: {', '.join(repr(name) for name in classes)}")
    too_small = [f"{name} ({len(files)})" for name, files in classes.items() if len(files) < min_per_class]
    if too_small:
        raise DataError(f"expected at least {min_per_class} {noun} per class, received fewer in: "
                        f"{', '.join(too_small)}")
    names = list(labels) if labels is not None else sorted(classes)
    paths = [file for name in names for file in classes.get(name, [])]
    targets = np.array([i for i, name in enumerate(names) for _ in classes.get(name, [])], dtype=np.int64)
    return Split(paths, targets, paths), names


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
