"""Generators of user-like datasets: what a new user brings, not what the default models were tuned on.

Every generator writes a dataset in the field's standard on-disk format into a folder and returns it; the
same seed writes the same files. ``python benchmarks/run.py --only user-data`` trains every task on a zoo of
them and prints one table; the tests train on small ones.
"""

from __future__ import annotations

import math
from pathlib import Path

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
        image = image.rotate(90 * int(np.random.default_rng(len(str(path))).integers(1, 4)), expand=True)
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
    shapes = list(SHAPES[:max(classes, 2)])
    rng.shuffle(shapes)
    counts = ([per_class] * classes if isinstance(per_class, int)
              else np.linspace(per_class[0], per_class[1], classes).round().astype(int).tolist())
    written = 0
    for shape, count in zip(shapes[:classes], counts):
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
