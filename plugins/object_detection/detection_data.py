"""Detection datasets: the layout of a user's folder (COCO, YOLO or Pascal VOC) found and read, boxes checked,
and the three splits made.

Every reader gives a list of ``Annotated`` images with boxes ``(x0, y0, x1, y1)`` in the image's pixels and
class names; here boxes that reach outside their image are clipped and boxes of no area dropped (counted and
reported, never an error), the class names become indices, and the images become the ``Split`` s the core
trains on. A target is ``{"boxes": float32 (N, 4), "labels": int64 (N,), "crowd": bool (N,)}``: crowd
boxes (COCO ``iscrowd``, VOC ``difficult``) are left out of training and ignored by the evaluation, as
pycocotools does.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlapps.plugin import FILE_KINDS, DataError, Dataset, Split, exif_orientation, split_indices, upright_box

#: User data is split with this seed (plus the training seed), so the test split is never trained on.
SPLIT_SEED = 1234
IMAGE_SUFFIXES = FILE_KINDS["image"]
SPLIT_WORDS = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
               "validation": "validation", "dev": "validation", "test": "test", "testing": "test"}

EXPECTED_LAYOUTS = ("a COCO folder or file (an annotations JSON with 'images', 'annotations' and 'categories', "
                    "and its image folder), a YOLO folder (images/ and labels/ with data.yaml or classes.txt) or a "
                    "Pascal VOC folder (Annotations/*.xml and JPEGImages/)")


@dataclass
class Annotated:
    """One image and its objects as a reader found them (pixels of the original image, any class names)."""

    path: str
    width: int
    height: int
    boxes: list = field(default_factory=list)     # [(x0, y0, x1, y1), ...]
    classes: list = field(default_factory=list)   # class name of each box
    crowd: list = field(default_factory=list)     # True: ignored (COCO iscrowd, VOC difficult)


@dataclass
class BoxReport:
    """Boxes a reader had to fix: clipped to their image, or dropped (no area, not finite)."""

    clipped: int = 0
    dropped: int = 0
    turned: int = 0  # images whose EXIF orientation turned them (and their boxes) upright
    examples: list = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(what)

    def summary(self) -> str:
        parts = []
        if self.clipped or self.dropped:
            parts.append(f"{self.clipped} box(es) reaching outside their image were clipped to it and {self.dropped} "
                         "box(es) of zero area (or outside the image) were dropped")
        if self.turned:
            parts.append(f"{self.turned} image(s) stored on their side or mirrored (EXIF orientation) were read upright, "
                         "their boxes turned with them")
        return "; ".join(parts)

    def print(self, source) -> None:
        if self.summary():
            shown = "\n  ".join(self.examples)
            print(f"dlapps: {source}: {self.summary()}; first:\n  {shown}", file=sys.stderr)


#: A box edge this far (pixels) past the image is rounding (YOLO's normalised boxes), not worth a report.
EDGE_TOLERANCE = 0.01


def clean_boxes(image: Annotated, report: BoxReport) -> Annotated:
    """``image`` with its boxes clipped to the image and those left without area dropped, counted in ``report``;
    first turned upright with the picture (``upright``)."""
    image = upright(image, report)
    boxes, classes, crowd = [], [], []
    for box, name, is_crowd in zip(image.boxes, image.classes, image.crowd):
        x0, y0, x1, y1 = (float(v) for v in box)
        if not all(np.isfinite([x0, y0, x1, y1])):
            report.dropped += 1
            report.note(f"{image.path}: box {list(box)} is not finite: dropped")
            continue
        cx0, cy0 = min(max(x0, 0.0), image.width), min(max(y0, 0.0), image.height)
        cx1, cy1 = min(max(x1, 0.0), image.width), min(max(y1, 0.0), image.height)
        if cx1 - cx0 < 1.0 or cy1 - cy0 < 1.0:
            report.dropped += 1
            report.note(f"{image.path}: box {_rounded(box)} has no area inside the {image.width}x{image.height} "
                        "image: dropped")
            continue
        if max(abs(a - b) for a, b in zip((cx0, cy0, cx1, cy1), (x0, y0, x1, y1))) > EDGE_TOLERANCE:
            report.clipped += 1
            report.note(f"{image.path}: box {_rounded(box)} reaches outside the {image.width}x{image.height} image: "
                        f"clipped to {_rounded((cx0, cy0, cx1, cy1))}")
        boxes.append((cx0, cy0, cx1, cy1))
        classes.append(name)
        crowd.append(bool(is_crowd))
    return Annotated(image.path, image.width, image.height, boxes, classes, crowd)


def upright(image: Annotated, report: BoxReport) -> Annotated:
    """``image`` in the pixels of the picture as shown: dlapps reads a photo upright by its EXIF orientation (as
    cameras and browsers show it), so boxes drawn on the picture as stored are turned with it. Boxes of a size
    already turned (the annotation's width and height are those of the upright picture) are kept as they are."""
    orientation = exif_orientation(image.path)
    if orientation == 1:
        return image
    turned = orientation in (5, 6, 7, 8)
    if turned and (image.width, image.height) != (image.height, image.width) and \
            (image.width, image.height) == tuple(reversed(_stored_size(image.path))):
        return image  # annotated on the upright picture already
    report.turned += 1
    boxes = [upright_box(box, orientation, image.width, image.height) for box in image.boxes]
    width, height = (image.height, image.width) if turned else (image.width, image.height)
    return Annotated(image.path, width, height, boxes, list(image.classes), list(image.crowd))


def _stored_size(path) -> tuple:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def _rounded(box) -> list:
    return [round(float(v), 1) for v in box]


def target_of(image: Annotated, index: dict) -> dict:
    """The target arrays of one image, class names as indices of ``index``."""
    return {
        "boxes": np.asarray(image.boxes, np.float32).reshape(-1, 4),
        "labels": np.asarray([index[name] for name in image.classes], np.int64),
        "crowd": np.asarray(image.crowd, bool),
    }


def as_split(images: list[Annotated], labels: list[str]) -> Split:
    index = {name: i for i, name in enumerate(labels)}
    return Split([im.path for im in images], [target_of(im, index) for im in images], [im.path for im in images])


# -- finding the layout ------------------------------------------------------------
def read_folder(path):
    """(splits, labels, category ids, what was read) of a user's dataset, its layout found from its files.

    ``splits`` maps ``train`` / ``validation`` / ``test`` (or ``all`` when the data names no splits) to lists of
    ``Annotated`` images, boxes already checked.
    """
    from dlapps_plugins.object_detection import coco_data, voc_data, yolo_data

    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(f"expected {EXPECTED_LAYOUTS}; received '{root}', which does not exist")
    if root.is_file():
        if root.suffix.lower() != ".json":
            raise DataError(f"expected {EXPECTED_LAYOUTS}; received the file '{root}', which is not a JSON file")
        found = coco_data.read_coco([root])
    elif (root / "Annotations").is_dir():
        found = voc_data.read_voc(root)
    elif (root / "labels").is_dir() or (root / "data.yaml").is_file() or (root / "classes.txt").is_file():
        found = yolo_data.read_yolo(root)
    else:
        jsons = coco_data.annotation_files(root)
        if not jsons:
            raise DataError(f"expected {EXPECTED_LAYOUTS}; received '{root}', which holds {_listing(root)}")
        found = coco_data.read_coco(jsons)
    splits, labels, category_ids, kind = found
    report = BoxReport()
    splits = {name: [clean_boxes(image, report) for image in images] for name, images in splits.items()}
    report.print(root)
    if not any(splits.values()):
        raise DataError(f"expected annotated images in '{root}' ({kind}), found none")
    return splits, labels, category_ids, f"{kind} '{root}'" + (f"; {report.summary()}" if report.summary() else "")


def _listing(root: Path) -> str:
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not entries:
        return "nothing"
    return ", ".join(entries[:12]) + (f" and {len(entries) - 12} more" if len(entries) > 12 else "")


def split_word(name: str):
    """``train`` / ``validation`` / ``test`` when a file or folder name says which split it holds, else None."""
    import re

    for token in re.split(r"[^a-z]+", name.lower()):
        if token in SPLIT_WORDS:
            return SPLIT_WORDS[token]
        if token.startswith(("train", "val", "test")):  # COCO's train2017, val2017
            return {"tra": "train", "val": "validation", "tes": "test"}[token[:3]]
    return None


def detection_dataset(path, seed: int = 0) -> Dataset:
    """A user's dataset as train, validation and test splits.

    Splits the data names (files or folders called train / val / test) are kept; a missing test split is the
    validation split (and validation then comes from train), a missing validation split is 10% of train,
    and data without splits is split 80 / 10 / 10 with a fixed seed.
    """
    splits, labels, category_ids, what = read_folder(path)
    rng_seed = SPLIT_SEED + seed
    if "all" in splits:
        everything = splits.pop("all")
        train, validation, test = split_indices(len(everything), (0.8, 0.1, 0.1), seed=rng_seed)
        splits = {"train": [everything[i] for i in train], "validation": [everything[i] for i in validation],
                  "test": [everything[i] for i in test]}
        how = "split 80 / 10 / 10"
    else:
        how = "splits as named: " + ", ".join(sorted(splits))
        if "test" not in splits and "validation" in splits:
            splits["test"] = splits.pop("validation")
            how += " (validation used as the test split)"
        if "validation" not in splits:
            train = splits.get("train", [])
            part_train, part_validation, _ = split_indices(len(train), (0.9, 0.1, 0.0), seed=rng_seed)
            splits["train"] = [train[i] for i in part_train]
            splits["validation"] = [train[i] for i in part_validation]
            how += "; validation is 10% of train"
    for name in ("train", "validation", "test"):
        if not splits.get(name):
            raise DataError(f"expected images in the {name} split of {what}, found none ({how}); add more images")
    sizes = ", ".join(f"{len(splits[s])} {s}" for s in ("train", "validation", "test"))
    boxes = sum(len(im.boxes) for images in splits.values() for im in images)
    return Dataset(
        train=as_split(splits["train"], labels),
        validation=as_split(splits["validation"], labels),
        test=as_split(splits["test"], labels),
        description=f"{what}: {sizes} images, {boxes} boxes, {len(labels)} classes "
                    f"({', '.join(labels[:20])}{', ...' if len(labels) > 20 else ''}); {how}.",
        config={"labels": labels, "category_ids": category_ids},
    )


def evaluation_split(path, labels: list[str]) -> Split:
    """Every annotated image of a dataset as one split, its classes matched to the model's ``labels`` by name;
    boxes of classes the model does not know are left out (and counted)."""
    splits, data_labels, _, what = read_folder(path)
    images = [image for part in splits.values() for image in part]
    unknown = sorted(set(data_labels) - set(labels))
    if unknown and not set(data_labels) & set(labels):
        raise DataError(f"expected data with the model's classes ({', '.join(labels)}), received {what} with "
                        f"classes {', '.join(unknown[:10])}")
    if unknown:
        dropped = sum(c in unknown for im in images for c in im.classes)
        print(f"dlapps: {what}: {dropped} box(es) of classes the model does not know ({', '.join(unknown[:10])}) "
              "are left out of the evaluation", file=sys.stderr)
        images = [_keep(im, [c not in unknown for c in im.classes]) for im in images]
    return as_split(images, labels)


def _keep(image: Annotated, keep: list) -> Annotated:
    pick = (lambda values: [v for v, k in zip(values, keep) if k])
    return Annotated(image.path, image.width, image.height, pick(image.boxes), pick(image.classes), pick(image.crowd))


def image_size(path: Path):
    """(width, height) from the image file's header; a DataError naming the file if it is not an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.size
    except (FileNotFoundError, UnidentifiedImageError, OSError) as exc:
        raise DataError(f"expected an image file, received '{path}', which cannot be read ({exc})") from None
