"""Out-of-distribution flags, shared by every task: how typical an input is of the model's training data.

After training, the core measures the training split with ``Task.ood_features`` (for an image classifier its
pooled last convolutional features; a task may give several blocks, such as a detector's feature pyramid beside
pixel statistics) and keeps one ``FeatureDensity`` per block: one mean per class (or one for all) and a shared
covariance shrunk by Ledoit-Wolf (scikit-learn). Every prediction then carries ``in_distribution``: minus the
Mahalanobis distance to the nearest mean, in units of the median held-out distance, of its least typical block
(higher is more typical; about -1 is usual), and ``out_of_domain``, true below a threshold. The threshold is the
score that ``CALIBRATION_QUANTILE`` of the held-out validation split falls below; the test split, never used to
choose it, gives the false-alarm rate the model card reports. A softmax probability cannot do this: a classifier
gives noise or a blank image 99% as readily as a digit, because it was never shown anything else.

A task may also flag an input by rules of its own (words the model never heard, a user with no known ratings):
its ``postprocess`` sets ``out_of_domain`` itself, and the feature check can only add a flag, never take one away.
A task without features to measure (``ood_features`` returns None) says why in ``Task.ood_note``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: The share of held-out validation inputs allowed below the threshold (the expected false-alarm rate).
CALIBRATION_QUANTILE = 0.02
#: At most this many training inputs are measured to learn the density (spread evenly over the split).
MAX_TRAINING_INPUTS = 3000
#: At most this many validation and test inputs are scored to calibrate and check the threshold.
MAX_HELD_OUT_INPUTS = 1000
#: The file in the model's assets folder that keeps the density and the threshold.
DENSITY_FILE = "in_distribution.npz"
#: What a flagged result's tab and CLI line say.
FLAG_TEXT = "outside what this model knows"


class FeatureDensity:
    """How typical a feature vector is of the training data: ``score(features)`` is minus the Mahalanobis
    distance to the nearest group mean (a class, or all the data), under one covariance shared by the groups
    and shrunk towards a multiple of the identity (Ledoit-Wolf), which keeps it invertible with fewer inputs
    than features."""

    def __init__(self, means: np.ndarray, precision: np.ndarray, scale: np.ndarray | None = None):
        self.means = np.asarray(means, dtype=np.float64)
        self.precision = np.asarray(precision, dtype=np.float64)
        self.scale = np.ones(self.means.shape[1]) if scale is None else np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, features: np.ndarray, groups=None) -> "FeatureDensity":
        """The density of ``features`` (n, d); ``groups`` (n,) gives each row's class, None: one group.
        Groups with no row are left out."""
        from sklearn.covariance import LedoitWolf

        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or len(features) < 2:
            raise ValueError(f"expected at least 2 feature vectors (n, d) to learn from, received shape "
                             f"{features.shape}")
        groups = np.zeros(len(features), dtype=np.int64) if groups is None else np.asarray(groups).astype(np.int64)
        # Each feature in units of its spread: the shrinkage then treats features of different scales (pooled
        # activations beside pixel statistics) alike. A constant feature keeps unit scale.
        spread = features.std(axis=0)
        scale = np.where(spread > 1e-6, spread, 1.0)
        features = features / scale
        present = np.unique(groups)
        means = np.stack([features[groups == g].mean(axis=0) for g in present])
        centred = features - means[np.searchsorted(present, groups)]
        return cls(means, LedoitWolf(assume_centered=True).fit(centred).precision_, scale)

    def score(self, features) -> np.ndarray:
        """Minus the Mahalanobis distance of each row of ``features`` (n, d), or of one vector (d,), to the
        nearest group mean."""
        features = np.asarray(features, dtype=np.float64)
        one = features.ndim == 1
        features = np.atleast_2d(features)
        if features.shape[1] != self.means.shape[1]:
            raise ValueError(f"expected feature vectors of {self.means.shape[1]} values, received "
                             f"{features.shape[1]}")
        diff = features[:, None, :] / self.scale - self.means[None]
        squared = np.einsum("nkd,de,nke->nk", diff, self.precision, diff)
        scores = -np.sqrt(np.maximum(squared.min(axis=1), 0.0))
        return scores[0] if one else scores

    def arrays(self) -> dict:
        return {"means": self.means, "precision": self.precision, "scale": self.scale}


def blocks_of(features) -> dict:
    """What ``Task.ood_features`` returns, as ``{block name: 1-D float vector}``: a dict of blocks as it is (the
    network's features beside pixel statistics), one array as the block ``features``."""
    if isinstance(features, dict):
        return {name: np.asarray(v, dtype=np.float64).ravel() for name, v in features.items()}
    return {"features": np.asarray(features, dtype=np.float64).ravel()}


class InDistribution:
    """How typical an input is, from one ``FeatureDensity`` per block of its features: each block's distance in
    units of ``typical[block]`` (the median distance of held-out inputs, set by calibration), and the score of
    the least typical block. A network trained to ignore backgrounds keeps a blank image near its data; the
    pixel statistics beside it do not. With one block the score is minus its distance in those units."""

    def __init__(self, densities: dict, typical: dict | None = None):
        self.densities = dict(densities)
        self.typical = {name: float((typical or {}).get(name, 1.0)) for name in self.densities}

    @classmethod
    def fit(cls, rows: list, groups=None) -> "InDistribution":
        """The densities of ``rows`` (one ``blocks_of`` dict per training input); ``groups`` as for
        ``FeatureDensity.fit``."""
        return cls({name: FeatureDensity.fit(np.stack([row[name] for row in rows]), groups) for name in rows[0]})

    def block_scores(self, features) -> dict:
        """Each block's ``FeatureDensity`` score (minus its distance), before the typical units."""
        blocks = blocks_of(features)
        missing = sorted(set(self.densities) - set(blocks))
        if missing:
            raise ValueError(f"expected the feature blocks {sorted(self.densities)}, received {sorted(blocks)}")
        return {name: float(density.score(blocks[name])) for name, density in self.densities.items()}

    def score(self, features) -> float:
        return min(value / max(self.typical[name], 1e-9) for name, value in self.block_scores(features).items())


def mark(task, result, output) -> None:
    """Put ``in_distribution`` (and ``out_of_domain`` once calibrated) into one piece's or input's ``result``
    (a dict) from its model ``output``; nothing when the task has no density."""
    density = getattr(task, "feature_density", None)
    if density is None or not isinstance(result, dict):
        return
    features = task.ood_features(output)
    if features is None:
        return
    try:
        result["in_distribution"] = round(density.score(features), 4)
    except ValueError as error:  # features of another shape than the saved check's: predict on, unflagged
        _warn_once(f"dlapps: {task.name}: the out-of-distribution check does not fit this model's features "
                   f"({error}); predictions are not flagged until the model is trained again")
        return
    flag(task, result)


_WARNED: set = set()


def _warn_once(message: str) -> None:
    import sys

    if message not in _WARNED:
        _WARNED.add(message)
        print(message, file=sys.stderr)


def mark_combined(task, result, piece_results: list) -> None:
    """An input split into pieces: its score is the mean of its pieces' (when ``combine`` did not set one)."""
    if getattr(task, "feature_density", None) is None or not isinstance(result, dict):
        return
    scores = [r["in_distribution"] for r in piece_results if isinstance(r, dict) and "in_distribution" in r]
    if scores and "in_distribution" not in result:
        result["in_distribution"] = round(float(np.mean(scores)), 4)
    flag(task, result)


def flag(task, result: dict) -> None:
    """``out_of_domain``: true when the task flagged the input itself or its score is below the threshold."""
    threshold = (task.config.get("ood") or {}).get("threshold")
    if threshold is None or "in_distribution" not in result:
        return
    result["out_of_domain"] = bool(result.get("out_of_domain")) or result["in_distribution"] < threshold


# -- saved with the model ------------------------------------------------------
def save(task, folder) -> None:
    """Write the task's density into ``folder`` (the model's assets), if it has one."""
    density = getattr(task, "feature_density", None)
    if density is not None:
        arrays = {f"{block}/{key}": value for block, one in density.densities.items()
                  for key, value in one.arrays().items()}
        np.savez(Path(folder) / DENSITY_FILE, **arrays, **{f"{block}/typical": np.float64(value)
                                                           for block, value in density.typical.items()})


def load(task, folder) -> None:
    """Read the density ``save`` wrote; a model saved without one (or before dlapps had them) gets none."""
    path = Path(folder) / DENSITY_FILE
    task.feature_density = None
    if not path.is_file():
        return
    try:
        with np.load(path) as arrays:
            blocks = sorted({key.split("/")[0] for key in arrays.files})
            task.feature_density = InDistribution(
                {block: FeatureDensity(arrays[f"{block}/means"], arrays[f"{block}/precision"], arrays[f"{block}/scale"])
                 for block in blocks}, {block: float(arrays[f"{block}/typical"]) for block in blocks})
    except (KeyError, ValueError, OSError) as error:  # cut short, or of another layout: predict without flags
        import sys

        print(f"dlapps: the out-of-distribution check in '{path}' cannot be read ({error}); predictions will "
              "not be flagged until the model is trained again", file=sys.stderr)


def card_lines(config: dict) -> list[str]:
    """The model card's section on the out-of-distribution check (from ``config["ood"]``)."""
    ood = config.get("ood")
    if not ood:
        return []
    lines = ["", "## Outside what the model knows", ""]
    if not ood.get("available"):
        return lines + [f"No out-of-distribution check: {ood.get('why')}."]
    if "rule" in ood:
        return lines + [f"Each prediction carries `out_of_domain`, true for {ood['rule'] or 'inputs its rules flag'}."]
    rate = ood.get("false_alarm_rate")
    lines.append(f"Each prediction it scores carries `in_distribution`, how typical the input is of the training data "
                 f"(measured by {ood.get('measures')}; higher is more typical), and "
                 f"`out_of_domain`, true below the threshold {ood['threshold']:.4g}: the score that "
                 f"{ood['quantile']:.0%} of {ood['calibrated_on']} held-out validation inputs fall below.")
    if ood.get("validation_trained_on"):
        lines.append("This model was also trained on those validation inputs (the final training of `dlapps tune`), "
                     "so they look more typical than new data: expect more false alarms than that.")
    if rate is not None:
        lines.append(f"On {ood['checked_on']} held-out test inputs it flags {rate:.1%} (false alarms).")
    return lines

