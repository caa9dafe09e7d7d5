"""YOLO (Ultralytics / Darknet) folders: ``images/`` and ``labels/`` side by side, one ``.txt`` per image with
a ``class cx cy w h`` line per object (normalised to 0-1; a longer line is a polygon, boxed), and the class
names in ``data.yaml`` (``names:`` as a list or an ``{index: name}`` map) or ``classes.txt`` (one per line).

Splits are subfolders named for them (``images/train``, ``images/val``, ``images/test``, with the same under
``labels/``); an image without a label file has no objects.
"""

from __future__ import annotations

from pathlib import Path

from dlapps.plugin import DataError, report_skipped
from dlapps_plugins.object_detection.detection_data import IMAGE_SUFFIXES, Annotated, image_size, split_word


def read_yolo(root: Path):
    """(splits, labels, category ids, kind) of a YOLO folder."""
    names = class_names(root)
    images_dir = root / "images"
    if not images_dir.is_dir():
        raise DataError(f"expected a YOLO folder with images/ beside labels/, received '{root}', which has no "
                        "images/ folder")
    subfolders = {split_word(d.name): d for d in sorted(images_dir.iterdir()) if d.is_dir() and split_word(d.name)}
    parts = subfolders or {"all": images_dir}
    problems, rows = [], 0
    splits = {}
    for split, folder in parts.items():
        images = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
            width, height = image_size(path)
            image = Annotated(str(path), width, height)
            labels_file = _labels_file(root, path)
            if labels_file.is_file():
                rows += _read_labels(labels_file, image, names, problems)
            images.append(image)
        splits[split] = images
    report_skipped(problems, rows)
    if problems and len(problems) > rows / 2:
        raise DataError(f"expected label lines 'class cx cy w h' in '{root / 'labels'}', with at most half of them "
                        f"malformed; received {len(problems)} malformed line(s) of {rows}; first: {problems[0]}")
    return splits, names, list(range(1, len(names) + 1)), "YOLO folder"


def class_names(root: Path) -> list[str]:
    """The class names of ``data.yaml`` (``names``) or ``classes.txt``, in class-index order."""
    yaml_file = next((root / n for n in ("data.yaml", "data.yml", "dataset.yaml") if (root / n).is_file()), None)
    if yaml_file is not None:
        import yaml

        try:
            data = yaml.safe_load(yaml_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise DataError(f"expected a YAML file with the class names, received '{yaml_file}', which cannot be "
                            f"read ({exc})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                order = sorted((int(k), str(v)) for k, v in names.items())
            except (TypeError, ValueError):
                order = []
            if [k for k, _ in order] == list(range(len(order))) and order:
                return [v for _, v in order]
        elif isinstance(names, list) and names:
            return [str(n) for n in names]
        raise DataError(f"expected 'names:' in '{yaml_file}' as a list of class names or a map from 0, 1, ... to "
                        f"names, received {names!r}"[:300])
    classes = root / "classes.txt"
    if classes.is_file():
        names = [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]
        if names:
            return names
    raise DataError(f"expected the class names of the YOLO folder '{root}' in data.yaml (names: [...]) or "
                    "classes.txt (one per line), found neither")


def _labels_file(root: Path, image: Path) -> Path:
    """``labels/<same path>.txt`` for ``images/<path>``."""
    relative = image.relative_to(root / "images")
    return (root / "labels" / relative).with_suffix(".txt")


def _read_labels(file: Path, image: Annotated, names: list[str], problems: list[str]) -> int:
    """Add the objects of one label file to ``image``; returns the number of lines read."""
    lines = [line for line in file.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    for number, line in enumerate(lines, start=1):
        fields = line.split()
        try:
            index, values = int(fields[0]), [float(v) for v in fields[1:]]
        except (ValueError, IndexError):
            problems.append(f"{file}:{number}: expected 'class cx cy w h' numbers, received {line!r}"[:200])
            continue
        if not 0 <= index < len(names):
            problems.append(f"{file}:{number}: class {index} is not one of the {len(names)} named classes")
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        elif len(values) >= 6 and len(values) % 2 == 0:  # a segment: x y x y ... (boxed)
            xs, ys = values[0::2], values[1::2]
            box = (min(xs), min(ys), max(xs), max(ys))
        else:
            problems.append(f"{file}:{number}: expected 'class cx cy w h' (or a polygon), received {line!r}"[:200])
            continue
        image.boxes.append((box[0] * image.width, box[1] * image.height, box[2] * image.width,
                            box[3] * image.height))
        image.classes.append(names[index])
        image.crowd.append(False)
    return len(lines)
