"""The classical baseline a trained network must beat: scikit-learn's logistic regression on gradient histograms
(scikit-image's HOG) and colour histograms, fitted on the same training split in seconds.

Saved with the model as plain arrays (``assets/classical_baseline.npz``, read with ``allow_pickle=False``: no
pickled scikit-learn object is ever loaded), so that ``dlapps eval`` scores it again on any data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlapps.plugin import LinearBaseline

FILE = "classical_baseline.npz"
#: The images are compared at this size: gradient histograms of 8 x 8 cells, 9 orientations.
SIZE = 32
#: At most this many training images are used to fit it (a few seconds on 2 cores).
MAX_IMAGES = 3000
WHAT = "logistic regression on gradient and colour histograms (scikit-learn, fitted on the same training images)"


def features(images) -> np.ndarray:
    """One row per RGB image: its HOG descriptor (grey, ``SIZE`` px) and its colour histogram."""
    import cv2
    from skimage.feature import hog

    from dlapps.plugin import resize_image
    from dlapps_plugins.image_classification.image_recipe import colour_histogram

    rows = []
    for image in images:
        small = resize_image(np.asarray(image), SIZE)
        grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
        gradients = hog(grey, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(2, 2), feature_vector=True)
        rows.append(np.concatenate([gradients, colour_histogram(small)]))
    return np.stack(rows).astype(np.float32)


class ClassicalBaseline:
    """The core's ``LinearBaseline`` (standardized feature rows -> class scores) on ``features`` of images."""

    def __init__(self, linear: LinearBaseline):
        self.linear = linear

    @classmethod
    def fit(cls, images, labels, classes: int, seed: int = 0) -> "ClassicalBaseline":
        return cls(LinearBaseline.fit(features(images), labels, classes, c=0.1, seed=seed))

    def predict(self, inputs) -> np.ndarray:
        """The class index of each input (an image file or array, as a split holds it)."""
        from dlapps.plugin import read_image

        return self.linear.predict_features(features([read_image(x) for x in inputs]))

    def save(self, folder) -> None:
        self.linear.save(Path(folder) / FILE)

    @classmethod
    def load(cls, folder) -> "ClassicalBaseline | None":
        linear = LinearBaseline.load(Path(folder) / FILE)
        return None if linear is None else cls(linear)


def fit_on_split(split, classes: int, seed: int = 0, decoded: dict | None = None) -> ClassicalBaseline | None:
    """The baseline fitted on (at most ``MAX_IMAGES`` of) a training split's readable images; ``decoded`` holds
    images already read (by index), which are not read again."""
    sample = decode_sample(split, MAX_IMAGES, decoded)
    images, labels = list(sample.values()), [int(split.targets[i]) for i in sample]
    if len(set(labels)) < 2:
        return None
    return ClassicalBaseline.fit(images, labels, classes, seed)


def decode_sample(split, limit: int, decoded: dict | None = None) -> dict:
    """``{index: RGB array}`` for the readable images among at most ``limit`` spread evenly over ``split``
    (those in ``decoded`` are taken from it)."""
    from dlapps.plugin import DlappsError, read_image

    decoded = decoded or {}
    sample = {}
    for i in np.unique(np.linspace(0, len(split) - 1, min(len(split), limit)).round().astype(int)):
        try:
            sample[int(i)] = decoded[int(i)] if int(i) in decoded else read_image(split.inputs[i])
        except DlappsError:
            continue
    return sample
