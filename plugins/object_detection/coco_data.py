"""COCO annotations: a JSON with ``images``, ``annotations`` (``bbox`` as ``[x, y, width, height]``) and
``categories`` (ids need not be contiguous), and the folder of its images.

A folder may hold one annotations file (split by dlapps) or one per split, named for it
(``instances_train2017.json``, ``instances_val2017.json``). The images are looked for where COCO and the
tools that write it put them: beside the JSON, in ``images/``, in a folder named for the split
(``val2017/``, ``images/val2017/``), or one folder up.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlapps.plugin import DataError
from dlapps_plugins.object_detection.detection_data import Annotated, image_size, split_word


def annotation_files(root: Path) -> list[Path]:
    """The COCO annotation files of a folder: its JSON files, or those of its ``annotations/`` folder."""
    for folder in (root, root / "annotations"):
        found = sorted(p for p in folder.glob("*.json") if p.is_file()) if folder.is_dir() else []
        if found:
            return found
    return []


def read_coco(files: list[Path]):
    """(splits, labels, category ids, kind) of one or more COCO annotation files."""
    if len(files) > 1:
        named = {file: split_word(file.stem) for file in files}
        if None in named.values() or len(set(named.values())) < len(files):
            raise DataError("expected one COCO annotations JSON, or one per split named for it (train, val, test); "
                            f"received {', '.join(f.name for f in files)} in '{files[0].parent}'")
    else:
        named = {files[0]: "all"}
    categories: dict[int, str] = {}
    splits = {}
    for file, split in named.items():
        data = _load(file)
        for category in data["categories"]:
            try:
                cid, name = int(category["id"]), str(category["name"])
            except (KeyError, TypeError, ValueError):
                raise DataError(f"{file}: expected categories as {{\"id\": int, \"name\": str}}, received "
                                f"{category!r}"[:300]) from None
            if categories.setdefault(cid, name) != name:
                raise DataError(f"expected the same categories in every annotations file; category {cid} is "
                                f"{categories[cid]!r} in one and {name!r} in '{file}'")
        splits[split] = _images(file, data, categories)
    ids = sorted(categories)
    labels = [categories[i] for i in ids]
    if len(set(labels)) != len(labels):
        raise DataError(f"expected distinct category names, received {labels} in '{files[0]}'")
    splits = {split: [_named(image, categories) for image in images] for split, images in splits.items()}
    return splits, labels, ids, "COCO annotations"


def _load(file: Path) -> dict:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"expected a COCO annotations JSON, received '{file}', which cannot be read as JSON "
                        f"({exc})") from None
    missing = [key for key in ("images", "annotations", "categories")
               if not isinstance(data, dict) or not isinstance(data.get(key), list)]
    if missing:
        raise DataError(f"expected a COCO annotations JSON with the lists 'images', 'annotations' and "
                        f"'categories', received '{file}', which lacks {', '.join(map(repr, missing))}")
    return data


def _images(file: Path, data: dict, categories: dict) -> list[Annotated]:
    """The images of one annotations file with their boxes (category ids for now)."""
    entries = {}
    for image in data["images"]:
        try:
            entries[int(image["id"])] = image
            str(image["file_name"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{file}: expected images as {{\"id\": int, \"file_name\": str, ...}}, received "
                            f"{image!r}"[:300]) from None
    root = _image_root(file, [e["file_name"] for e in entries.values()])
    images = {}
    for image_id, entry in entries.items():
        path = root / entry["file_name"]
        width, height = entry.get("width"), entry.get("height")
        if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
            width, height = image_size(path)
        images[image_id] = Annotated(str(path), width, height)
    problems = []
    for n, ann in enumerate(data["annotations"]):
        try:
            image = images[int(ann["image_id"])]
            category = int(ann["category_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.append(f"annotation #{n}: expected image_id, category_id and bbox [x, y, w, h] of an image "
                            f"in 'images', received {ann!r}"[:300])
            continue
        if category not in categories:
            problems.append(f"annotation #{n}: category_id {category} is not in 'categories'")
            continue
        image.boxes.append((x, y, x + w, y + h))
        image.classes.append(category)
        image.crowd.append(bool(ann.get("iscrowd", 0)))
    if problems:
        shown = "\n  ".join(problems[:5])
        raise DataError(f"expected every annotation of '{file}' to name an image, a category and a bbox; "
                        f"{len(problems)} do not:\n  {shown}")
    return list(images.values())


def _image_root(file: Path, names: list[str]) -> Path:
    """The folder that the annotations' ``file_name`` s are relative to."""
    if not names:
        return file.parent
    split_folders = [file.stem.split("_", 1)[-1], file.stem]  # instances_val2017 -> val2017
    bases = [file.parent, file.parent.parent]
    candidates = [base / sub / name for base in bases for sub in ("", "images")
                  for name in ("", *split_folders)]
    candidates = list(dict.fromkeys(candidates))
    probe = names[: min(len(names), 5)]
    for folder in candidates:
        if all((folder / name).is_file() for name in probe):
            return folder
    tried = ", ".join(f"'{c}'" for c in candidates[:6])
    raise DataError(f"expected the images of '{file}' (e.g. '{names[0]}') beside it, in images/ or in a folder "
                    f"named for its split; found them in none of {tried}")


def _named(image: Annotated, categories: dict) -> Annotated:
    return Annotated(image.path, image.width, image.height, image.boxes, [categories[c] for c in image.classes],
                     image.crowd)


def coco_ground_truth(split, labels: list[str], category_ids: list[int]) -> dict:
    """A test split as a COCO ground-truth dict (image ids 1, 2, ... in split order), for pycocotools."""
    images, annotations = [], []
    for i, target in enumerate(split.targets):
        images.append({"id": i + 1, "file_name": split.name(i)})
        for box, label, crowd in zip(target["boxes"].tolist(), target["labels"].tolist(), target["crowd"].tolist()):
            x0, y0, x1, y1 = box
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": category_ids[label],
                                "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                "iscrowd": int(crowd)})
    categories = [{"id": cid, "name": name} for cid, name in zip(category_ids, labels)]
    return {"images": images, "annotations": annotations, "categories": categories}
