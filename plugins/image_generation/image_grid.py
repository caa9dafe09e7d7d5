"""Images for viewing: a small image enlarged without blurring, and the images of one input as a grid."""

from __future__ import annotations

import numpy as np


def enlarge(image: np.ndarray, view_size: int) -> np.ndarray | None:
    """``image`` enlarged by the whole factor that makes its short side at least ``view_size`` (nearest
    neighbour: every pixel a sharp square); None when ``view_size`` is 0 or the image is that large already."""
    factor = -(-int(view_size) // min(image.shape[:2])) if view_size else 1
    if factor <= 1:
        return None
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def grid(images: list, gap: int = 2, background: int = 255) -> np.ndarray:
    """The images (all of one size) in rows of ``ceil(sqrt(n))``, ``gap`` pixels apart, on ``background``."""
    images = [np.asarray(image) for image in images]
    height, width, channels = images[0].shape
    columns = int(np.ceil(np.sqrt(len(images))))
    rows = -(-len(images) // columns)
    out = np.full((rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, channels), background,
                  np.uint8)
    for i, image in enumerate(images):
        top, left = (i // columns) * (height + gap), (i % columns) * (width + gap)
        out[top:top + height, left:left + width] = image
    return out
