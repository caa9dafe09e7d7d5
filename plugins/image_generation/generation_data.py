"""Training images for image generation: scikit-learn's digits, or a folder of images (one subfolder per
class, or the images directly in it for unconditional generation), made square and resized to the model's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlapps.plugin import FILE_KINDS, DataError, Dataset, Split, read_class_folders, read_image, split_indices

#: The default split never changes with the training seed, so the test split is never trained on.
SPLIT_SEED = 1234
IMAGE_SUFFIXES = FILE_KINDS["image"]


def digits_dataset() -> Dataset:
    """The 1,797 8x8 handwritten digits scikit-learn ships, grayscale: 60% train, 20% validation, 20% test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 -> 0..255
    labels = digits.target.astype(np.int64)
    names = [f"digits[{i}]" for i in range(len(labels))]
    parts = split_indices(len(labels), (0.6, 0.2, 0.2), seed=SPLIT_SEED, strata=labels)
    train, validation, test = (Split(images[p], labels[p], [names[i] for i in p]) for p in parts)
    return Dataset(
        train, validation, test,
        description=("scikit-learn's handwritten digits (1,797 8x8 grayscale images, classes 0-9) upscaled to the "
                     f"model's size, stratified split 60/20/20 with seed {SPLIT_SEED}; the test split is never "
                     "used in training."),
        config={"labels": [str(d) for d in range(10)], "channels": 1, "image_size": 16},
    )


def folder_dataset(path, seed: int = 0) -> Dataset:
    """A folder of images: one subfolder per class (class-conditional), or the images directly in it
    (unconditional); 80% train, 10% validation, 10% test (per class)."""
    files, labels = read_class_folders(path, IMAGE_SUFFIXES, min_classes=1, min_per_class=3, unlabelled=True)
    if files.targets is None and len(files) < 3:
        raise DataError(f"expected at least 3 images (one each for train, validation and test) in '{path}', "
                        f"received {len(files)}")
    parts = split_indices(len(files), (0.8, 0.1, 0.1), seed=SPLIT_SEED + seed, strata=files.targets)
    train, validation, test = (files.take(p) for p in parts)
    kind = (f"{len(labels)} classes ({', '.join(labels[:20])}{', ...' if len(labels) > 20 else ''})" if labels
            else "no classes (unconditional generation)")
    return Dataset(
        train, validation, test,
        description=f"image folder '{Path(path).expanduser()}': {len(files)} images, {kind}, split 80/10/10"
                    + (" per class." if labels else "."),
        config={"labels": labels, "channels": 3},
    )


def eval_split(path, labels: list[str]) -> Split:
    """Every image of a folder as one evaluation split: class subfolders named after the model's labels,
    or, for an unconditional model, the images directly in the folder."""
    split, _ = read_class_folders(path, IMAGE_SUFFIXES, labels=labels or None, min_classes=1,
                                  unlabelled=not labels)
    return split


def training_pixels(raw, size: int, channels: int) -> np.ndarray:
    """One training image as the model sees it: (size, size, channels) uint8, the centre square of the
    image resized (area averaging when shrinking, bilinear when enlarging)."""
    import cv2

    image = np.asarray(read_image(raw))
    height, width = image.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = image[top:top + side, left:left + side]
    if side != size:
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    if channels == 1:
        return cv2.cvtColor(square, cv2.COLOR_RGB2GRAY)[..., None]
    return square
