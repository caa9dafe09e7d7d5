"""The detector's part of the training plan: input size, pyramid levels, anchor sizes and aspect ratios, each
chosen from the training boxes (auto-anchor).

Why (measured on generated user-like COCO sets, ``benchmarks/user_data.py``): the fixed recipe was fitted to
the default scenes, whose objects are 12-55 px once letterboxed to 96 px. A user's 160x120 images with 14-44 px
objects shrink to 8-26 px at 96 px, and the default anchors (16-50 px at IoU 0.4) leave one box in six (17%)
without a single matching anchor: those objects are never learnt, whatever the steps. So the plan

- letterboxes to the smallest size at which nine boxes in ten are at least ``MIN_OBJECT_PIXELS`` across
  (never below the default size, at most ``MAX_IMAGE_SIZE``, a multiple of the coarsest stride);
- adds the stride-32 level P5 (and a backbone stack for it) when the box sizes span more than P3-P4 anchors
  reach;
- picks the aspect ratios by k-means on the boxes' log height/width, kept when they match boxes better than
  square anchors alone;
- picks ``anchor_size`` by a search for the value whose anchors match the most training boxes at
  ``positive_iou`` (the "best possible recall"), with the boxes offset from the anchor centres by a quarter
  stride, as they are on average.
"""

from __future__ import annotations

import numpy as np

#: Nine boxes in ten should be at least this many pixels across (square root of the area) after the letterbox.
MIN_OBJECT_PIXELS = 12
#: The largest input size the plan picks: a CPU trains a 128 px detector about 1.8 times slower than a 96 px one.
MAX_IMAGE_SIZE = 160
#: Anchor sizes searched (times the stride) and the share of boxes sampled for the search.
ANCHOR_SIZES = tuple(np.round(np.arange(1.0, 4.01, 0.125), 3))
MAX_BOXES = 4000
#: A box whose best anchor IoU reaches ``positive_iou`` over this range of sizes is covered by one level pair;
#: beyond it the plan adds P5.
LEVEL_SPAN = 8.0


def plan_detection(task, dataset, recipe) -> None:
    """Choose ``image_size``, ``max_level`` (and the backbone for it), ``aspect_ratios`` and ``anchor_size``."""
    cfg = recipe.config
    sides, boxes = training_boxes(dataset.train)
    if not len(boxes):
        recipe.note("the training split has no boxes: the default input size and anchors are kept")
        return
    default_size = int(cfg["image_size"])
    size = choose_image_size(boxes, sides, default_size, int(2 ** max(int(cfg["max_level"]), 5)))
    letterboxed = boxes * (size / sides)[:, None]
    small = float(np.quantile(np.sqrt(letterboxed.prod(axis=1)), 0.1))
    recipe.choose("image_size", size,
                  f"nine boxes in ten are at least {small:.0f} px across at {size} px (at least "
                  f"{MIN_OBJECT_PIXELS} px are needed to be found; the default is {default_size}, at most "
                  f"{MAX_IMAGE_SIZE} for speed)" if size != default_size else
                  f"the default: nine boxes in ten are at least {small:.0f} px across at {size} px")
    size = int(cfg["image_size"])
    letterboxed = boxes * (size / sides)[:, None]
    across = np.sqrt(letterboxed.prod(axis=1))
    low, high = (float(v) for v in np.quantile(across, (0.02, 0.98)))
    wide = (high / max(low, 1.0) > LEVEL_SPAN and size % 32 == 0
            and not any(recipe.is_set(key) for key in ("backbone_filters", "backbone_blocks")))
    if wide and not recipe.is_set("max_level"):
        recipe.choose("backbone_filters", [*cfg["backbone_filters"][:3], 256],
                      "a fourth backbone stack for the stride-32 level")
        recipe.choose("backbone_blocks", [*cfg["backbone_blocks"][:3], 1], "one block in it")
    recipe.choose("max_level", 5 if wide else int(cfg["max_level"]),
                  f"box sizes span {low:.0f}-{high:.0f} px (2nd-98th percentile), "
                  + ("more than P3-P4 anchors cover: P5 (stride 32) added" if wide else "within P3-P4 anchors' reach"))
    levels = range(int(cfg["min_level"]), int(cfg["max_level"]) + 1)
    sample = letterboxed[np.random.default_rng(0).permutation(len(letterboxed))[:MAX_BOXES]]
    positive, scales = float(cfg["positive_iou"]), int(cfg["anchor_scales"])
    ratios = kmeans_ratios(sample)
    default_anchor = float(cfg["anchor_size"])
    square = best_anchor_fit(sample, levels, scales, [1.0], positive, default_anchor)
    fitted = best_anchor_fit(sample, levels, scales, ratios, positive, default_anchor)
    better = fitted[1] >= square[1] + 0.03
    recipe.choose("aspect_ratios", ratios if better else [1.0],
                  "the boxes are about square (k-means on their height / width)" if ratios == [1.0] else
                  f"k-means on the boxes' height / width gives {ratios}: anchors of these shapes match "
                  f"{fitted[1]:.0%} of the boxes, square ones {square[1]:.0%}"
                  + ("" if better else ": not worth three times the anchors"))
    ratios = [float(r) for r in cfg["aspect_ratios"]]
    anchor_size, recall = best_anchor_fit(sample, levels, scales, ratios, positive, default_anchor)
    recipe.choose("anchor_size", anchor_size,
                  f"anchors of {anchor_size:g} times the stride give {recall:.0%} of the training boxes an anchor at IoU "
                  f"{positive:g} or more" + (" (the default; no other size gives more)" if anchor_size == default_anchor
                                             else f" (searched {ANCHOR_SIZES[0]:g}-{ANCHOR_SIZES[-1]:g}; the default "
                                                  f"{default_anchor:g} gives fewer)"))
    matched = anchor_recall(sample, levels, scales, ratios, float(cfg["anchor_size"]), positive)
    recipe.note(f"{matched:.0%} of the training boxes have an anchor at IoU {positive:g} or more"
                + ("" if matched >= 0.9 else ": WARNING: the others cannot be learnt; try a larger image_size or "
                   "another anchor_size (--set)"))


def training_boxes(split, max_images: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """``(sides, boxes)``: for each (non-crowd) box of up to ``max_images`` training images, its image's longer
    side and its ``(width, height)``, in the image's pixels."""
    from PIL import Image

    order = np.random.default_rng(0).permutation(len(split))[:max_images]
    sides, boxes = [], []
    for i in order:
        target = split.targets[i]
        kept = target["boxes"][~target["crowd"]]
        if not len(kept):
            continue
        with Image.open(split.inputs[i]) as image:  # reads the header only
            side = max(image.size)
        sides += [side] * len(kept)
        boxes.append(np.stack([kept[:, 2] - kept[:, 0], kept[:, 3] - kept[:, 1]], axis=1))
    if not boxes:
        return np.zeros(0), np.zeros((0, 2))
    return np.asarray(sides, np.float64), np.maximum(np.concatenate(boxes).astype(np.float64), 1.0)


def choose_image_size(boxes: np.ndarray, sides: np.ndarray, default: int, multiple: int) -> int:
    """The smallest size from ``default`` up to ``MAX_IMAGE_SIZE`` (in steps of ``multiple``) at which nine boxes
    in ten are ``MIN_OBJECT_PIXELS`` across after the letterbox; ``MAX_IMAGE_SIZE`` when none is."""
    across = np.sqrt(boxes.prod(axis=1)) / sides
    for size in range(default, MAX_IMAGE_SIZE + 1, multiple):
        if np.quantile(across * size, 0.1) >= MIN_OBJECT_PIXELS:
            return size
    return max(default, MAX_IMAGE_SIZE - MAX_IMAGE_SIZE % multiple)


def anchor_shapes(levels, scales: int, ratios, anchor_size: float) -> np.ndarray:
    """``(width, height, stride)`` of every anchor shape, as KerasHub's ``AnchorGenerator`` makes them."""
    shapes = []
    for level in levels:
        for scale in range(scales):
            size = int(2 ** level * anchor_size * 2 ** (scale / scales))
            for ratio in ratios:
                shapes.append((2 * round(size / np.sqrt(ratio) / 2), 2 * round(size * np.sqrt(ratio) / 2),
                               2 ** level))
    return np.asarray(shapes, np.float64)


def best_ious(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Each box's best IoU with an anchor shape whose centre is a quarter stride off the box's in x and y."""
    w, h = boxes[:, :1], boxes[:, 1:]
    aw, ah, offset = anchors[:, 0][None], anchors[:, 1][None], anchors[:, 2][None] / 4

    def overlap(a, b):  # two intervals of lengths a and b whose centres are ``offset`` apart
        return np.clip(np.minimum(a / 2, offset + b / 2) - np.maximum(-a / 2, offset - b / 2), 0, None)

    inter = overlap(w, aw) * overlap(h, ah)
    return (inter / (w * h + aw * ah - inter)).max(axis=1)


def anchor_recall(boxes, levels, scales, ratios, anchor_size, positive) -> float:
    """The share of ``boxes`` with an anchor at IoU ``positive`` or more (the best possible recall)."""
    return float((best_ious(boxes, anchor_shapes(levels, scales, ratios, anchor_size)) >= positive).mean())


def best_anchor_fit(boxes, levels, scales, ratios, positive, default: float) -> tuple[float, float]:
    """``(anchor_size, recall)``: ``default`` unless a searched size matches more boxes (within a point); then the
    size that matches the most (then with the best mean IoU)."""
    scored = []
    for size in ANCHOR_SIZES:
        ious = best_ious(boxes, anchor_shapes(levels, scales, ratios, size))
        scored.append((float((ious >= positive).mean()), float(ious.mean()), float(size)))
    recall, _, size = max(scored)
    kept = anchor_recall(boxes, levels, scales, ratios, default, positive)
    return (default, kept) if kept >= recall - 0.01 else (size, recall)


def kmeans_ratios(boxes: np.ndarray, k: int = 3) -> list[float]:
    """Aspect ratios (height / width) at the centres of k-means clusters of the boxes' log ratio; ``[1.0]`` when
    the clusters are all within a quarter of square."""
    from sklearn.cluster import KMeans

    logs = np.log(boxes[:, 1] / boxes[:, 0])[:, None]
    k = min(k, len(np.unique(np.round(logs, 2))))
    if k < 2:
        return [1.0]
    centres = np.sort(np.exp(KMeans(k, n_init=4, random_state=0).fit(logs).cluster_centers_[:, 0]))
    if centres[0] >= 0.8 and centres[-1] <= 1.25:
        return [1.0]
    return [round(float(c), 2) for c in centres]
