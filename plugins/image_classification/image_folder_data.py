"""Data for image classification: scikit-learn's digits, or a folder of class subfolders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlapps.plugin import FILE_KINDS, Dataset, Split, read_class_folders, split_indices

#: The default split never changes with the training seed, so the test split is never trained on.
SPLIT_SEED = 1234
IMAGE_SUFFIXES = FILE_KINDS["image"]


def digits_dataset() -> Dataset:
    """The 1,797 8x8 handwritten digits scikit-learn ships: 60% train, 20% validation, 20% test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    images = np.repeat(images[..., None], 3, axis=-1)
    labels = digits.target.astype(np.int64)
    names = [f"digits[{i}]" for i in range(len(labels))]
    train, validation, test = split_indices(len(labels), (0.6, 0.2, 0.2), seed=SPLIT_SEED, strata=labels)
    return Dataset(
        train=_take(images, labels, names, train),
        validation=_take(images, labels, names, validation),
        test=_take(images, labels, names, test),
        description=(
            "single handwritten digits 0-9 only (scikit-learn's 1,797 8x8 grayscale images; trained shifted and "
            "zoomed out, and either polarity is read: dark-on-light as well as light-on-dark), stratified split "
            f"60/20/20 with seed {SPLIT_SEED}; the test split is never used in training. Anything else (photos, "
            "letters, several digits) still gets one of the ten digits."
        ),
        # Any polarity (dark-on-light drawings too) and digits smaller or off-centre in the frame, never mirrored.
        config={"labels": [str(d) for d in range(10)], "image_size": 16, "dark_background": True,
                "augment": True, "flip": False, "shift": 0.1, "zoom": [-0.1, 0.6],
                "colour_jitter": False, "class_weights": None, "filters": [32, 64, 128], "standardize": False,
                "fill_mode": "constant", "rotation": 0.0},
    )


def folder_dataset(path, seed: int = 0) -> Dataset:
    """A folder with one subfolder per class: 70% train, 15% validation, 15% test per class."""
    # At least 3 images per class: one each for train, validation and test.
    files, labels_list = read_class_folders(path, IMAGE_SUFFIXES, min_classes=2, min_per_class=3)
    paths, labels = list(files.inputs), files.targets
    train, validation, test = split_indices(len(labels), (0.7, 0.15, 0.15), seed=SPLIT_SEED + seed, strata=labels)
    return Dataset(
        train=_take(paths, labels, paths, train),
        validation=_take(paths, labels, paths, validation),
        test=_take(paths, labels, paths, test),
        description=(
            f"image folder '{Path(path).expanduser()}': {len(paths)} images in {len(labels_list)} classes "
            f"({', '.join(labels_list[:20])}{', ...' if len(labels_list) > 20 else ''}), "
            "stratified split 70/15/15 per class."
        ),
        config={"labels": labels_list},
    )


def folder_split(path, labels: list[str]) -> Split:
    """Every image of a class-subfolder tree as one evaluation split, labelled like the model."""
    split, _ = read_class_folders(path, IMAGE_SUFFIXES, labels=labels, min_classes=1)
    return split


def _take(inputs, labels, names, indices) -> Split:
    if isinstance(inputs, np.ndarray):
        chosen = inputs[indices]
    else:
        chosen = [inputs[i] for i in indices]
    return Split(chosen, labels[indices], [names[i] for i in indices])

