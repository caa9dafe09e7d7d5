"""Data for image classification: scikit-learn's digits, or a folder of class subfolders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlapps.plugin import FILE_KINDS, DataError, Dataset, Split, split_indices

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
            "scikit-learn's handwritten digits (1,797 8x8 grayscale images, classes 0-9), "
            f"stratified split 60/20/20 with seed {SPLIT_SEED}; the test split is never used in training."
        ),
        config={"labels": [str(d) for d in range(10)], "image_size": 16},
    )


def folder_dataset(path, seed: int = 0) -> Dataset:
    """A folder with one subfolder per class: 70% train, 15% validation, 15% test per class."""
    root = _check_folder(path)
    classes = {d.name: _images_in(d) for d in sorted(root.iterdir()) if d.is_dir()}
    classes = {name: files for name, files in classes.items() if files}
    if not classes:
        raise DataError(
            f"expected a folder with one subfolder of images per class, received '{root}', "
            f"which has no subfolder holding images ({', '.join(IMAGE_SUFFIXES)})"
        )
    if len(classes) < 2:
        only = next(iter(classes))
        raise DataError(
            f"expected at least 2 classes (subfolders with images) in '{root}', received 1: '{only}'"
        )
    too_small = [f"{name} ({len(files)})" for name, files in classes.items() if len(files) < 3]
    if too_small:
        raise DataError(
            "expected at least 3 images per class (one each for train, validation and test), "
            f"received fewer in: {', '.join(too_small)}"
        )
    labels_list = sorted(classes)
    paths = [str(f) for name in labels_list for f in classes[name]]
    labels = np.array([i for i, name in enumerate(labels_list) for _ in classes[name]], dtype=np.int64)
    train, validation, test = split_indices(len(labels), (0.7, 0.15, 0.15), seed=SPLIT_SEED + seed, strata=labels)
    return Dataset(
        train=_take(paths, labels, paths, train),
        validation=_take(paths, labels, paths, validation),
        test=_take(paths, labels, paths, test),
        description=(
            f"image folder '{root}': {len(paths)} images in {len(labels_list)} classes "
            f"({', '.join(labels_list[:20])}{', ...' if len(labels_list) > 20 else ''}), "
            "stratified split 70/15/15 per class."
        ),
        config={"labels": labels_list},
    )


def folder_split(path, labels: list[str]) -> Split:
    """Every image of a class-subfolder tree as one evaluation split, labelled like the model."""
    root = _check_folder(path)
    paths, targets = [], []
    for folder in sorted(d for d in root.iterdir() if d.is_dir()):
        files = _images_in(folder)
        if not files:
            continue
        if folder.name not in labels:
            raise DataError(
                f"expected class folders named after the model's labels ({', '.join(labels)}), "
                f"received '{folder.name}' in '{root}'"
            )
        paths += [str(f) for f in files]
        targets += [labels.index(folder.name)] * len(files)
    if not paths:
        raise DataError(f"expected class subfolders with images in '{root}', found no images")
    return Split(paths, np.array(targets, dtype=np.int64), paths)


def _check_folder(path) -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"expected a data folder, received '{root}', which does not exist")
    if not root.is_dir():
        raise DataError(f"expected a folder with one subfolder per class, received the file '{root}'")
    return root


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _take(inputs, labels, names, indices) -> Split:
    if isinstance(inputs, np.ndarray):
        chosen = inputs[indices]
    else:
        chosen = [inputs[i] for i in indices]
    return Split(chosen, labels[indices], [names[i] for i in indices])

