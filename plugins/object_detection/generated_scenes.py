"""The default data: generated scenes of coloured shapes on textured, noisy backgrounds, written once in COCO
format (``annotations/instances_{train,validation,test}.json`` and ``images/{split}/*.png``) and then read back
by the same COCO reader as a user's data.

Every scene is drawn from its own seed (the split's seed and its index), so the data is the same on every
machine and does not depend on the order in which scenes are drawn. Objects differ in class, size, colour,
position and a small rotation; later objects partly cover earlier ones (each keeps at least 60% of its
pixels in sight), backgrounds are gradients, blurred noise or faint stripes with clutter lines and pixel
noise, and about one scene in ten has no object at all. A box is the full extent of its object's shape.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: The classes, in the order of their category ids 1, 2, ...
CLASSES = ("circle", "square", "triangle", "star", "cross")
#: Bump when the scenes change: a new version is generated in a new folder.
GENERATOR_VERSION = 1
#: Scenes per split of the default data.
SPLIT_SIZES = {"train": 2400, "validation": 300, "test": 300}
#: Each split's seed: the test scenes are never trained on, whatever the training seed.
SPLIT_SEEDS = {"train": 11, "validation": 12, "test": 13}
#: Share of scenes with no object.
EMPTY_SHARE = 0.1
MAX_OBJECTS = 4
#: Scene sizes (pixels, each side drawn in this range) and object sizes (share of the scene's shorter side).
SCENE_SIDES = (112, 192)
OBJECT_SHARES = (0.2, 0.45)
#: How much of an earlier object a later one may cover, and how much two boxes may overlap.
MIN_VISIBLE = 0.6
MAX_BOX_IOU = 0.35


def default_folder() -> Path:
    """The generated COCO folder under ``$DLAPPS_HOME/data``, written on first use."""
    from dlapps.plugin import generated_data

    return generated_data(f"object-detection-shapes-v{GENERATOR_VERSION}", "annotations/instances_test.json",
                          write_scenes)


def write_scenes(folder, sizes: dict | None = None) -> Path:
    """Draw every split and write it as COCO: images as PNG, one annotations file per split (test last)."""
    import cv2

    folder = Path(folder)
    (folder / "annotations").mkdir(parents=True, exist_ok=True)
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
    for split, count in (sizes or SPLIT_SIZES).items():
        images, annotations = [], []
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, objects = draw_scene(np.random.default_rng([SPLIT_SEEDS[split], index]))
            name = f"{index + 1:06d}.png"
            if not cv2.imwrite(str(folder / "images" / split / name), image[..., ::-1]):
                raise OSError(f"could not write '{folder / 'images' / split / name}'")
            images.append({"id": index + 1, "file_name": name, "width": image.shape[1], "height": image.shape[0]})
            for label, (x0, y0, x1, y1) in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": index + 1, "category_id": label + 1,
                                    "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                    "iscrowd": 0})
        coco = {"info": {"description": f"dlapps generated shapes v{GENERATOR_VERSION}, {split} split"},
                "images": images, "annotations": annotations, "categories": categories}
        (folder / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco), encoding="utf-8")
    return folder


def draw_scene(rng: np.random.Generator):
    """One scene: an RGB uint8 image and its objects as ``(class index, (x0, y0, x1, y1))`` pairs."""
    height, width = (int(v) for v in rng.integers(SCENE_SIDES[0], SCENE_SIDES[1] + 1, size=2))
    image = _background(rng, height, width)
    count = 0 if rng.random() < EMPTY_SHARE else int(rng.integers(1, MAX_OBJECTS + 1))
    masks, objects = [], []
    for _ in range(count):
        for _attempt in range(30):
            label = int(rng.integers(len(CLASSES)))
            mask = _shape_mask(rng, CLASSES[label], height, width)
            box = _mask_box(mask)
            if box is None or any(_iou(box, other) > MAX_BOX_IOU for _, other in objects):
                continue
            trial = [*masks, mask]  # every earlier object must stay mostly in sight
            if all(_visible_share(m, trial[i + 1:]) >= MIN_VISIBLE for i, m in enumerate(masks)):
                break
        else:
            continue  # no room left in this scene
        image[mask] = _contrasting_color(rng, image, mask)
        masks.append(mask)
        objects.append((label, box))
    noise = rng.normal(0, rng.uniform(2, 14), image.shape)
    image = np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return image, objects


def _visible_share(mask, later_masks) -> float:
    """The share of ``mask`` not covered by objects drawn after it (1 when none was)."""
    if not later_masks:
        return 1.0
    return float((mask & ~np.any(later_masks, axis=0)).sum()) / max(1, int(mask.sum()))


def _background(rng, height: int, width: int) -> np.ndarray:
    import cv2

    kind = rng.integers(3)
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    if kind == 0:  # a gradient in a random direction
        angle = rng.uniform(0, 2 * np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = (xs * np.cos(angle) + ys * np.sin(angle))
        t = (t - t.min()) / max(1e-6, t.max() - t.min())
        image = low[None, None] * (1 - t[..., None]) + high[None, None] * t[..., None]
    elif kind == 1:  # blurred noise: blotches of two colours
        grid = rng.random((max(2, height // 16), max(2, width // 16))).astype(np.float32)
        t = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
        image = low[None, None] * (1 - t[..., None]) + high[None, None] * t[..., None]
    else:  # faint stripes
        period, angle = rng.uniform(6, 20), rng.uniform(0, np.pi)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        t = 0.5 + 0.5 * np.sin((xs * np.cos(angle) + ys * np.sin(angle)) * 2 * np.pi / period)
        image = low[None, None] + (high - low)[None, None] * 0.3 * t[..., None]
    image = np.ascontiguousarray(image.clip(0, 255).astype(np.uint8))
    for _ in range(int(rng.integers(0, 5))):  # clutter: thin lines that are not objects
        p0 = (int(rng.integers(width)), int(rng.integers(height)))
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.line(image, p0, p1, tuple(int(c) for c in rng.integers(0, 256, 3)), 1, cv2.LINE_AA)
    return image


def _shape_mask(rng, shape: str, height: int, width: int) -> np.ndarray:
    """A boolean mask of one shape at a random size, position and small rotation."""
    import cv2

    size = rng.uniform(*OBJECT_SHARES) * min(height, width)
    radius = size / 2
    cx, cy = rng.uniform(radius * 0.6, width - radius * 0.6), rng.uniform(radius * 0.6, height - radius * 0.6)
    angle = rng.uniform(-0.3, 0.3)
    canvas = np.zeros((height, width), np.uint8)
    if shape == "circle":
        cv2.circle(canvas, (int(round(cx * 16)), int(round(cy * 16))), int(round(radius * 16)), 255, -1,
                   cv2.LINE_AA, shift=4)
    else:
        if shape == "square":
            points = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
            points = [(x * 0.8, y * 0.8) for x, y in points]
        elif shape == "triangle":
            points = [(0, -1), (0.87, 0.5), (-0.87, 0.5)]
        elif shape == "star":
            points = [(r * np.sin(k * np.pi / 5), -r * np.cos(k * np.pi / 5))
                      for k, r in zip(range(10), [1.0, 0.42] * 5)]
        else:  # cross
            a, b = 1.0, 0.3
            points = [(-b, -a), (b, -a), (b, -b), (a, -b), (a, b), (b, b), (b, a), (-b, a), (-b, b), (-a, b),
                      (-a, -b), (-b, -b)]
        cos, sin = np.cos(angle), np.sin(angle)
        polygon = np.array([[cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos)]
                            for x, y in points])
        cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return canvas >= 128


def _mask_box(mask: np.ndarray):
    """The mask's box (x0, y0, x1, y1) in pixel edges, or None for a mask cut to (almost) nothing."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 16:
        return None
    return (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _contrasting_color(rng, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the pixels under ``mask`` (at least 90 apart, summed over RGB)."""
    under = image[mask].reshape(-1, 3).mean(axis=0)
    for _ in range(50):
        color = rng.integers(0, 256, 3)
        if np.abs(color - under).sum() >= 90:
            return color.astype(np.uint8)
    return (255 - under).astype(np.uint8)
