"""Generators of user-like datasets: what a new user brings, not what the default models were tuned on: image
folders (``write_image_folder``), detection sets in COCO, YOLO and Pascal VOC layouts (``write_detection_set``),
sentence-pair TSVs with a source column (``write_sentence_pairs``) and speech manifests (``write_speech_manifest``).

Every generator writes a dataset in the field's standard on-disk format into a folder and returns it; the
same seed writes the same files. ``python benchmarks/run.py --only user-data`` trains every task on a zoo of
them and prints one table; the tests train on small ones.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

#: Shapes an image-folder class can be; a dataset of n classes takes the first n (after a seeded shuffle).
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "bar", "crescent")
#: The file formats and colour modes the image reader takes, written in turn.
IMAGE_FORMATS = ("jpeg", "png-grey", "png-rgba", "bmp-palette", "webp", "png-16bit", "png")


def _shape_mask(shape: str, size: int, rng) -> np.ndarray:
    """A boolean ``size`` x ``size`` mask of one ``shape``, 30-70% of the image wide, anywhere, turned at random."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    radius = size * rng.uniform(0.15, 0.35)
    cx, cy = (rng.uniform(radius + 1, size - radius - 1) for _ in range(2))
    angle = rng.uniform(0, 2 * math.pi)

    def polygon(corners, inner=None):
        points = []
        for i in range(corners * (2 if inner else 1)):
            r = radius * (inner if inner and i % 2 else 1.0)
            a = angle + 2 * math.pi * i / (corners * (2 if inner else 1))
            points.append((cx + r * math.cos(a), cy + r * math.sin(a)))
        cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 1)

    center, r = (int(round(cx)), int(round(cy))), max(2, int(round(radius)))
    thick = max(2, int(round(radius * 0.35)))
    if shape == "circle":
        cv2.circle(mask, center, r, 1, -1)
    elif shape == "square":
        polygon(4)
    elif shape == "triangle":
        polygon(3)
    elif shape == "star":
        polygon(5, inner=0.45)
    elif shape == "diamond":  # a rhombus: one diagonal 55% of the other
        points = [(cx + radius * (0.55 if k % 2 else 1.0) * math.cos(angle + k * math.pi / 2),
                   cy + radius * (0.55 if k % 2 else 1.0) * math.sin(angle + k * math.pi / 2)) for k in range(4)]
        cv2.fillPoly(mask, [np.round(np.array(points)).astype(np.int32)], 1)
    elif shape == "hexagon":
        polygon(6)
    elif shape == "ring":
        cv2.circle(mask, center, r, 1, thick)
    elif shape == "cross":
        for a in (angle, angle + math.pi / 2):
            dx, dy = radius * math.cos(a), radius * math.sin(a)
            cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1, thick)
    elif shape == "bar":
        dx, dy = radius * math.cos(angle), radius * math.sin(angle)
        cv2.line(mask, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1, thick)
    elif shape == "crescent":
        cv2.circle(mask, center, r, 1, -1)
        off = (int(round(cx + 0.45 * radius * math.cos(angle))), int(round(cy + 0.45 * radius * math.sin(angle))))
        cv2.circle(mask, off, r, 0, -1)
    else:
        raise ValueError(f"expected a shape of {SHAPES}, received {shape!r}")
    return mask.astype(bool)


def _pick_shapes(count: int, rng) -> list[str]:
    """``count`` shapes of ``SHAPES``, drawn (by a seeded shuffle) from the first ``max(count, 2)``."""
    shapes = list(SHAPES[:max(count, 2)])
    rng.shuffle(shapes)
    return shapes[:count]


def _background(size: int, style: str, rng) -> np.ndarray:
    """A ``size`` x ``size`` RGB float background: noisy grey, a colour gradient, or clutter lines."""
    import cv2

    base = rng.uniform(40, 215, 3)
    if style == "gradient":
        other = rng.uniform(0, 255, 3)
        t = np.linspace(0, 1, size)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, size)[:, None, None]
        image = np.broadcast_to(base * (1 - t) + other * t, (size, size, 3)).copy()
    else:
        image = np.broadcast_to(base, (size, size, 3)).copy()
    if style == "clutter":
        for _ in range(rng.integers(3, 9)):
            p, q = rng.integers(0, size, 2), rng.integers(0, size, 2)
            cv2.line(image, tuple(int(v) for v in p), tuple(int(v) for v in q), tuple(float(v) for v in rng.uniform(0, 255, 3)),
                     max(1, size // 80))
    return image + rng.normal(0, rng.uniform(5, 25), image.shape)


def shape_image(shape: str, size: int, rng, background: str = "noise") -> np.ndarray:
    """One RGB uint8 image of ``shape`` in a random colour on a ``background``."""
    image = _background(size, background, rng)
    colour = rng.uniform(0, 255, 3)
    image[_shape_mask(shape, size, rng)] = colour + rng.normal(0, 8, 3)
    return np.clip(image, 0, 255).astype(np.uint8)


def _write_image(path: Path, rgb: np.ndarray, fmt: str, rotate: bool) -> Path:
    import cv2
    from PIL import Image

    image = Image.fromarray(rgb)
    if rotate:
        image = image.rotate(90 * (1 + zlib.crc32(path.name.encode()) % 3), expand=True)  # the same in any folder
    if fmt == "jpeg":
        path = path.with_suffix(".jpg")
        image.save(path, quality=85)
    elif fmt == "png-grey":
        path = path.with_suffix(".png")
        image.convert("L").save(path)
    elif fmt == "png-rgba":
        path = path.with_suffix(".png")
        image.convert("RGBA").save(path)
    elif fmt == "bmp-palette":
        path = path.with_suffix(".bmp")
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(path)
    elif fmt == "webp":
        path = path.with_suffix(".webp")
        image.save(path, quality=90)
    elif fmt == "png-16bit":
        path = path.with_suffix(".png")
        grey = np.asarray(image.convert("L")).astype(np.uint16) * 257
        cv2.imwrite(str(path), grey)
    else:
        path = path.with_suffix(".png")
        image.save(path)
    return path


def write_image_folder(folder, classes: int = 3, per_class: int | tuple = 60, seed: int = 0,
                       sizes: tuple[int, int] = (48, 400), backgrounds: tuple = ("noise", "gradient", "clutter"),
                       rotated_share: float = 0.1) -> Path:
    """An image folder of ``classes`` shape classes (a subfolder each), ``per_class`` images a class (or a
    ``(low, high)`` range: imbalance), random colours on ``backgrounds``, ``sizes`` px squares and rectangles,
    written in every format of ``IMAGE_FORMATS`` in turn, ``rotated_share`` of them turned by 90-270 degrees."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    shapes = _pick_shapes(classes, rng)
    counts = ([per_class] * classes if isinstance(per_class, int)
              else np.linspace(per_class[0], per_class[1], classes).round().astype(int).tolist())
    written = 0
    for shape, count in zip(shapes, counts):
        (folder / shape).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            size = int(rng.integers(sizes[0], sizes[1] + 1))
            rgb = shape_image(shape, size, rng, backgrounds[int(rng.integers(len(backgrounds)))])
            if rng.random() < 0.3:  # a rectangle: the shape stays whole, the image is cut on one side
                keep = int(size * rng.uniform(0.75, 1.0))
                rgb = rgb[:keep] if rng.random() < 0.5 else rgb[:, :keep]
            _write_image(folder / shape / f"{shape}_{i:04d}", rgb, IMAGE_FORMATS[written % len(IMAGE_FORMATS)],
                         rotate=rng.random() < rotated_share)
            written += 1
    return folder


# -- detection sets -----------------------------------------------------------------------------------------
#: The on-disk layouts ``write_detection_set`` writes, as ``dlapps train object-detection --data`` reads them.
DETECTION_FORMATS = ("coco", "yolo", "voc")
#: Split names as the layouts spell them (the readers find the splits by these words).
SPLIT_NAMES = ("train", "val", "test")


def detection_image(width: int, height: int, classes: int, count: int, rng, object_shares=(0.05, 0.6),
                    aspect_ratios=(0.5, 2.0), background: str = "noise", shapes=SHAPES, max_iou: float = 0.3,
                    min_visible: float = 0.6):
    """One RGB uint8 ``width`` x ``height`` image of up to ``count`` objects, and the objects as ``(class index,
    (x0, y0, x1, y1), pixels)``: boxes in pixel edges, the exact extent of what is in sight of each object.

    Object ``k`` of class ``c`` is ``shapes[c]`` in a colour that stands out from the ``background`` under
    it, stretched to a box whose side (the square root of its area) is a share of the image's shorter side
    drawn log-uniformly from ``object_shares`` and whose width / height is drawn log-uniformly from
    ``aspect_ratios``. Objects may overlap (later ones cover earlier ones) as long as two boxes' IoU stays at
    most ``max_iou`` and every object keeps ``min_visible`` of its pixels in sight; an object that finds no
    such place in 30 tries is left out.
    """
    image = _background(max(width, height), background, rng)[:height, :width]
    owner = np.zeros((height, width), np.int32)  # 0: background, k + 1: object k
    placed, sizes = [], []  # (class, box) and the pixel count of each object as drawn
    for _ in range(count):
        for _attempt in range(30):
            side = math.exp(rng.uniform(*np.log(object_shares))) * min(width, height)
            ratio = math.exp(rng.uniform(*np.log(aspect_ratios)))
            w = int(np.clip(round(side * math.sqrt(ratio)), 3, width))
            h = int(np.clip(round(side / math.sqrt(ratio)), 3, height))
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            if any(_iou((x, y, x + w, y + h), box) > max_iou for _, box in placed):
                continue
            label = int(rng.integers(classes))
            mask = _stretched_mask(shapes[label], w, h, rng)
            window = owner[y:y + h, x:x + w]
            covered = np.bincount(window[mask], minlength=len(placed) + 1)[1:]
            in_sight = np.bincount(owner.ravel(), minlength=len(placed) + 1)[1:]
            if mask.sum() >= 6 and np.all(in_sight - covered >= min_visible * np.asarray(sizes, int)):
                break
        else:
            continue  # no room left in this image
        area = image[y:y + h, x:x + w]
        area[mask] = _contrasting_colour(area[mask], rng)
        window[mask] = len(placed) + 1
        placed.append((label, (x, y, x + w, y + h)))
        sizes.append(int(mask.sum()))
    image += rng.normal(0, rng.uniform(2, 10), image.shape)
    objects = []
    for k, (label, _) in enumerate(placed):
        ys, xs = np.nonzero(owner == k + 1)
        objects.append((label, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), len(xs)))
    return np.clip(image, 0, 255).astype(np.uint8), objects


def _stretched_mask(shape: str, width: int, height: int, rng) -> np.ndarray:
    """A boolean ``height`` x ``width`` mask of ``shape`` (drawn by ``_shape_mask``, cut to its extent) stretched
    to fill it."""
    import cv2

    mask = _shape_mask(shape, max(48, 2 * max(width, height)), rng)
    ys, xs = np.nonzero(mask)
    cut = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    return cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA if cut.shape[1] > width
                      else cv2.INTER_LINEAR) >= 0.5


def _contrasting_colour(under: np.ndarray, rng) -> np.ndarray:
    """A random RGB colour at least 120 apart (summed over the channels) from the mean of the ``under`` pixels."""
    mean = under.reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        colour = rng.uniform(0, 255, 3)
        if np.abs(colour - mean).sum() >= 120:
            return colour
    return 255 - mean


def _iou(a, b) -> float:
    """The intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class DrawnImage(NamedTuple):
    """One written image of a detection set: its split ("" without splits), file, size and objects."""

    split: str
    path: Path
    width: int
    height: int
    objects: list  # (class index, (x0, y0, x1, y1) in pixel edges, pixels in sight)
    image_id: int


def write_detection_set(folder, fmt: str = "coco", images: int = 500, categories: int = 3, seed: int = 0,
                        widths: int | tuple = 160, heights: int | tuple = 120, object_shares=(0.05, 0.6),
                        aspect_ratios=(0.5, 2.0), max_objects: int = 4, empty_share: float = 0.1,
                        backgrounds: tuple = ("noise", "gradient", "clutter"), splits=(0.8, 0.1, 0.1),
                        category_ids=None, image_formats: tuple = ("jpeg", "png")) -> Path:
    """A detection dataset of ``images`` images in ``fmt`` (``DETECTION_FORMATS``) in ``folder``, returned.

    ``categories`` shape classes (named for their shape); each image is ``widths`` x ``heights`` pixels (an int
    each, or a ``(low, high)`` range), on one of ``backgrounds``, with 1 to ``max_objects`` objects sized and
    stretched by ``object_shares`` and ``aspect_ratios`` (see ``detection_image``); ``empty_share`` of the
    images have none. Images are written in ``image_formats`` in turn (``IMAGE_FORMATS`` names). ``splits``
    are the train, val and test shares (each split gets at least one image), or None: the data names no
    splits and dlapps splits it. The layouts, with ``SPLIT`` one of ``SPLIT_NAMES``:

    - ``coco``: ``annotations/instances_SPLIT2017.json`` and the images in ``SPLIT2017/`` named for their
      (random, COCO-like) image id, ``000000123456.jpg``; without splits ``annotations/instances_default.json``
      and ``images/`` (as CVAT exports). Category ids are ``category_ids``, or non-contiguous ones drawn from
      the seed (gaps of 2 to 5: 3, 7, 12, ...); ``bbox`` is ``[x, y, width, height]``, ``area`` the pixels in
      sight.
    - ``yolo``: ``images/SPLIT/NNNNNN.jpg``, ``labels/SPLIT/NNNNNN.txt`` (``class cx cy w h`` normalised; none
      for an image without objects) and ``data.yaml`` (``path``, the split folders, ``names`` as an index map);
      without splits ``images/``, ``labels/`` and ``classes.txt``.
    - ``voc``: ``JPEGImages/NNNNNN.jpg``, ``Annotations/NNNNNN.xml`` (``bndbox`` 1-based and inclusive, one for
      every image, also those without objects) and ``ImageSets/Main/{train,val,test,trainval}.txt``; without
      splits no ``ImageSets``.

    Every image is drawn from its own seed (``seed`` and its index): the same seed gives the same images and
    boxes in every layout.
    """
    if fmt not in DETECTION_FORMATS:
        raise ValueError(f"expected a format of {DETECTION_FORMATS}, received {fmt!r}")
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    names = _pick_shapes(categories, rng)
    ids = list(category_ids or (np.cumsum(rng.integers(2, 6, categories)) + 1).tolist())
    image_ids = (rng.choice(999_999, images, replace=False) + 1).tolist()
    empty = set(rng.choice(images, int(round(empty_share * images)), replace=False).tolist())
    drawn = []
    for index, split in enumerate(_split_names(images, splits)):
        image_rng = np.random.default_rng([seed, index])
        width, height = (int(image_rng.integers(low, high + 1)) for low, high in (_range(widths), _range(heights)))
        count = 0 if index in empty else int(image_rng.integers(1, max_objects + 1))
        rgb, objects = detection_image(width, height, categories, count, image_rng, object_shares=object_shares,
                                       aspect_ratios=aspect_ratios, shapes=names,
                                       background=backgrounds[int(image_rng.integers(len(backgrounds)))])
        stem = f"{image_ids[index]:012d}" if fmt == "coco" else f"{index + 1:06d}"
        path = _layout_folder(folder, fmt, split) / stem
        path.parent.mkdir(parents=True, exist_ok=True)
        path = _write_image(path, rgb, image_formats[index % len(image_formats)], rotate=False)
        drawn.append(DrawnImage(split, path, width, height, objects, image_ids[index]))
    if fmt == "coco":
        _write_coco(folder, drawn, names, ids)
    elif fmt == "yolo":
        _write_yolo(folder, drawn, names)
    else:
        _write_voc(folder, drawn, names)
    return folder


def _range(value) -> tuple[int, int]:
    """An int or a ``(low, high)`` range as a range."""
    return (value, value) if isinstance(value, int) else tuple(value)


def _split_names(images: int, splits) -> list[str]:
    """The split of each image in order (train first), or "" for all when ``splits`` is None."""
    if splits is None:
        return [""] * images
    val, test = (max(1, int(round(share * images))) for share in splits[1:])
    return ["train"] * (images - val - test) + ["val"] * val + ["test"] * test


def _layout_folder(folder: Path, fmt: str, split: str) -> Path:
    """Where ``fmt`` puts the images of ``split``."""
    if fmt == "coco":
        return folder / (f"{split}2017" if split else "images")
    return folder / "images" / split if fmt == "yolo" else folder / "JPEGImages"


def _by_split(drawn: list) -> dict:
    parts = {}
    for image in drawn:
        parts.setdefault(image.split, []).append(image)
    return parts


def _write_coco(folder: Path, drawn: list, names: list, ids: list) -> None:
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": cid, "name": name, "supercategory": "shape"} for cid, name in sorted(zip(ids, names))]
    annotation_id = 0
    for split, part in _by_split(drawn).items():
        images, annotations = [], []
        for image in part:
            images.append({"id": image.image_id, "file_name": image.path.name, "width": image.width,
                           "height": image.height})
            for label, (x0, y0, x1, y1), pixels in image.objects:
                annotation_id += 1
                annotations.append({"id": annotation_id, "image_id": image.image_id, "category_id": ids[label],
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": pixels, "iscrowd": 0})
        coco = {"info": {"description": f"dlapps user-data zoo, {split or 'all'}"}, "licenses": [],
                "images": images, "annotations": annotations, "categories": categories}
        name = f"instances_{split}2017.json" if split else "instances_default.json"
        (folder / "annotations" / name).write_text(json.dumps(coco), encoding="utf-8")


def _write_yolo(folder: Path, drawn: list, names: list) -> None:
    import yaml

    for image in drawn:
        if not image.objects:
            continue  # a background image: no label file
        labels = folder / "labels" / image.path.relative_to(folder / "images").with_suffix(".txt")
        labels.parent.mkdir(parents=True, exist_ok=True)
        labels.write_text("".join(
            f"{label} {(x0 + x1) / 2 / image.width:.6f} {(y0 + y1) / 2 / image.height:.6f} "
            f"{(x1 - x0) / image.width:.6f} {(y1 - y0) / image.height:.6f}\n"
            for label, (x0, y0, x1, y1), _ in image.objects), encoding="utf-8")
    splits = [split for split in SPLIT_NAMES if any(image.split == split for image in drawn)]
    if splits:
        data = {"path": ".", **{split: f"images/{split}" for split in splits}, "names": dict(enumerate(names))}
        (folder / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    else:
        (folder / "classes.txt").write_text("".join(f"{name}\n" for name in names), encoding="utf-8")


def _write_voc(folder: Path, drawn: list, names: list) -> None:
    from xml.etree import ElementTree

    def add(parent, tag, text=None):
        element = ElementTree.SubElement(parent, tag)
        if text is not None:
            element.text = str(text)
        return element

    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    for image in drawn:
        root = ElementTree.Element("annotation")
        add(root, "folder", "JPEGImages")
        add(root, "filename", image.path.name)
        add(add(root, "source"), "database", "dlapps user-data zoo")
        size = add(root, "size")
        for tag, value in (("width", image.width), ("height", image.height), ("depth", 3)):
            add(size, tag, value)
        add(root, "segmented", 0)
        for label, (x0, y0, x1, y1), _ in image.objects:
            obj = add(root, "object")
            add(obj, "name", names[label])
            add(obj, "pose", "Unspecified")
            add(obj, "truncated", 0)  # objects are drawn whole inside their image
            add(obj, "difficult", 0)
            box = add(obj, "bndbox")
            for tag, value in (("xmin", x0 + 1), ("ymin", y0 + 1), ("xmax", x1), ("ymax", y1)):  # 1-based, inclusive
                add(box, tag, value)
        ElementTree.indent(root)
        ElementTree.ElementTree(root).write(folder / "Annotations" / f"{image.path.stem}.xml", encoding="utf-8")
    parts = _by_split(drawn)
    if "" not in parts:
        (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        for split, part in [*parts.items(), ("trainval", parts["train"] + parts["val"])]:
            lines = "".join(f"{image.path.stem}\n" for image in part)
            (folder / "ImageSets" / "Main" / f"{split}.txt").write_text(lines, encoding="utf-8")


# -- sentence-pair TSVs -------------------------------------------------------------------------------------
def write_sentence_pairs(path, pairs: int = 15_000, programs: int = 12, seed: int = 0,
                         malformed: int = 3) -> Path:
    """A sentence-pair TSV (``English<TAB>French<TAB>program`` per line) of ``pairs`` real pairs from the French
    message catalogs of ``programs`` free programs (the default translation corpus's cache: ``dlapps data
    translation`` fetches it), drawn from the seed as evenly over the programs as their catalogs allow; plus
    ``malformed`` broken lines a user's export has (no tab, an empty translation), which training reports and
    skips. The third column names each pair's program, so ``dlapps train translation`` holds whole programs out:
    its test chrF is on software it never saw, as a user's next text will be."""
    from dlapps_plugins.translation import message_catalogs

    catalogs = message_catalogs.cached_catalogs() or message_catalogs.fetch_catalogs()
    splits, _ = message_catalogs.catalog_splits(str(catalogs))
    by_program: dict[str, list] = {}
    for rows in splits.values():
        for source, target, program in rows:
            by_program.setdefault(program, []).append((source, target))
    rng = np.random.default_rng(seed)
    names = sorted(by_program)
    chosen = [names[i] for i in rng.choice(len(names), min(programs, len(names)), replace=False)]
    pools = {name: [by_program[name][i] for i in rng.permutation(len(by_program[name]))] for name in chosen}
    lines = []
    while len(lines) < pairs and any(pools.values()):  # round robin: a big catalog does not drown the others
        for name in chosen:
            if pools[name] and len(lines) < pairs:
                source, target = pools[name].pop()
                lines.append(f"{source}\t{target}\t{name}")
    broken = ["Save the file before closing", "Open a new window\t", "\tFermer"][:malformed]
    for line in broken:
        lines.insert(int(rng.integers(len(lines) + 1)), line)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- speech manifests ---------------------------------------------------------------------------------------
#: What a user's own recordings say: commands for a home, with rooms, things and numbers (none of the default
#: data's digit strings and command words alone).
SPEECH_GRAMMAR = {
    "verbs": ("turn on", "turn off", "dim", "open", "close", "check"),
    "things": ("light", "fan", "heater", "blinds", "door", "window", "radio", "oven"),
    "rooms": ("kitchen", "bedroom", "garage", "hall", "office", "garden", "attic"),
}
#: How the recordings are stored: (file suffix, sample rate, channels), in turn.
SPEECH_FORMATS = ((".wav", 16_000, 1), (".flac", 22_050, 1), (".ogg", 44_100, 2), (".wav", 8_000, 1),
                  (".flac", 48_000, 2))


def speech_sentence(rng) -> str:
    """One command as a user writes it down, with capitals, punctuation and digits:
    ``Dim the bedroom light to 40 percent.``"""
    g = SPEECH_GRAMMAR
    verb, thing, room = (g[key][int(rng.integers(len(g[key])))] for key in ("verbs", "things", "rooms"))
    text = f"{verb} the {room} {thing}"
    if verb == "dim":
        text += f" to {int(rng.integers(1, 10)) * 10} percent"
    elif rng.random() < 0.3:
        text += f" in {int(rng.integers(2, 60))} minutes"
    text = text[0].upper() + text[1:]
    return text + ("." if rng.random() < 0.7 else "")


def write_speech_manifest(folder, utterances: int = 300, speakers: int = 12, seed: int = 0) -> Path:
    """A speech folder as a user records it: ``utterances`` commands (``speech_sentence``) spoken by ``speakers``
    espeak-ng voices (an accent and a variant each, their own speed and pitch), in room noise, stored as WAV,
    FLAC and Ogg at 8 to 48 kHz, mono and stereo (``SPEECH_FORMATS``), and one ``manifest.csv`` (``audio``,
    ``text``, ``speaker``; paths relative to it). The speaker column lets ``dlapps train speech-recognition``
    hold whole speakers out. The path of the manifest is returned."""
    import csv

    import soundfile
    from scipy.signal import resample_poly

    from dlapps_plugins.speech_recognition import espeak_corpus as espeak

    folder = Path(folder)
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    variants = espeak.espeak_variants()
    voices = [(f"{espeak.ACCENTS[int(rng.integers(len(espeak.ACCENTS)))]}+"
               f"{variants[int(rng.integers(len(variants)))]}", int(rng.integers(*espeak.SPEED_WPM)),
               int(rng.integers(*espeak.PITCH))) for _ in range(speakers)]
    rows = []
    for index in range(utterances):
        speaker = int(rng.integers(speakers))
        voice, speed, pitch = voices[speaker]
        text = speech_sentence(rng)
        waveform = espeak.augment(rng, espeak.synthesize(espeak.with_pauses(rng, text), voice, speed, pitch))
        suffix, rate, channels = SPEECH_FORMATS[index % len(SPEECH_FORMATS)]
        if rate != espeak.SAMPLE_RATE:
            divisor = math.gcd(rate, espeak.SAMPLE_RATE)
            waveform = resample_poly(waveform, rate // divisor, espeak.SAMPLE_RATE // divisor).astype(np.float32)
        if channels == 2:
            waveform = np.stack([waveform, 0.8 * waveform], axis=1)
        name = f"clips/{index:04d}{suffix}"
        soundfile.write(folder / name, np.clip(waveform, -1, 1), rate,
                        subtype="VORBIS" if suffix == ".ogg" else "PCM_16")
        rows.append((name, text, f"speaker{speaker:02d}"))
    manifest = folder / "manifest.csv"
    with open(manifest, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["audio", "text", "speaker"])
        writer.writerows(rows)
    return manifest
