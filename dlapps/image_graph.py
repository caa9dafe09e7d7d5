"""OpenCV's ``cv2.resize`` of uint8 images as TensorFlow graph ops, pixel for pixel, for exported models.

``dlapps.inputs.resize_image`` (and a task's own letterbox) resize with OpenCV before the model; an exported
model does the same resize inside its graph, so it must give the very same pixels or its scores drift from
``dlapps predict``'s. These functions follow OpenCV's uint8 arithmetic: bilinear taps in 11-bit fixed point
and its rounding (``INTER_LINEAR``; ``INTER_AREA`` when an axis grows), block sums for whole-number
shrinks and float area weights for the others (``INTER_AREA``). They use only ops that LiteRT and ONNX
convert (gathers, integer and float arithmetic, matrix products), with any input height and width.

Import TensorFlow only by calling them.
"""

from __future__ import annotations

import functools

#: OpenCV's fixed-point scale of bilinear weights (``INTER_RESIZE_COEF_SCALE``).
_COEF_SCALE = 2048


def resize_image_graph(images, size: int):
    """``dlapps.inputs.resize_image`` in the graph: uint8 images (B, H, W, C) -> (B, size, size, C), area
    interpolation when an axis shrinks, bilinear otherwise."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.uint8)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    resized = cv2_resize_graph(images, size, size, area=tf.logical_or(height > size, width > size))
    channels = images.shape[-1] if images.shape[-1] is not None else tf.shape(images)[3]
    return tf.reshape(resized, [-1, size, size, channels])  # a static shape for the network that follows


def cv2_resize_graph(images, height, width, area):
    """``cv2.resize(image, (width, height), interpolation=INTER_AREA if area else INTER_LINEAR)`` of each image
    of a uint8 batch (B, H, W, C); ``height``, ``width`` and ``area`` may be tensors. Pixel for pixel, but for
    one corner: INTER_AREA with one side growing and the other shrinking (``resize_image`` of a long thin
    image) matches only for sizes given as Python ints and sides up to ``LATE_FLOORS_UP_TO``."""
    import tensorflow as tf

    images = tf.convert_to_tensor(images, tf.uint8)
    late = {axis: _late_floors(size) if isinstance(size, int) else None for axis, size in (("y", height), ("x", width))}
    height, width = tf.cast(height, tf.int32), tf.cast(width, tf.int32)
    src_h, src_w = tf.shape(images)[1], tf.shape(images)[2]
    same = tf.logical_and(tf.equal(src_h, height), tf.equal(src_w, width))
    shrinks = tf.logical_and(src_h >= height, src_w >= width)  # OpenCV's area path; else bilinear taps
    area = tf.convert_to_tensor(area, tf.bool)
    return tf.cond(
        same, lambda: images,
        lambda: tf.cond(tf.logical_and(area, shrinks), lambda: _area(images, height, width),
                        lambda: _bilinear(images, height, width, area, late)))


# -- bilinear taps (INTER_LINEAR, and INTER_AREA on an axis that grows) ---------------------------------
def _taps(src, dst, area_taps, clamp, late=None):
    """Per output index: the two source indices and their 11-bit weights, as OpenCV computes them.

    Bilinear: the source position ``(d + 0.5) * src / dst - 0.5``; area taps: ``floor(d * src / dst)`` with
    the fraction of the next source pixel that the output pixel covers. Each position is an exact ratio of
    integers rounded once to float32, the value OpenCV's double maths give once cast to float. ``clamp``
    (OpenCV does it along x only) moves a position outside the image to its edge pixel with weight 1.
    ``late`` (``_late_floors(dst)``) are the (src, d) where OpenCV's double maths floor ``d * src / dst`` one
    lower (then the fraction is 0).
    """
    import tensorflow as tf

    d = tf.range(dst)
    # bilinear: fx = ((2d + 1) * src - dst) / (2 dst), split into its floor and fraction
    lin = tf.cast((2 * d + 1) * src - dst, tf.float32) / tf.cast(2 * dst, tf.float32)
    lin_start = tf.floor(lin)
    lin_frac = lin - lin_start
    # area taps: sx = floor(d * src / dst); fx = ((d + 1) * src - (sx + 1) * dst) / src, kept when > 0, mod 1
    area_start = tf.math.floordiv(d * src, dst)
    if late is not None:
        hit = tf.logical_and(tf.equal(late[:, 0], src)[None, :], tf.equal(d[:, None], late[:, 1][None, :]))
        area_start -= tf.cast(tf.reduce_any(hit, axis=1), tf.int32)
    over = tf.cast((d + 1) * src - (area_start + 1) * dst, tf.float32) / tf.cast(src, tf.float32)
    area_frac = tf.where(over <= 0.0, tf.zeros_like(over), over - tf.floor(over))
    lin_start = tf.cast(lin_start, tf.int32)
    start = tf.where(area_taps, area_start, lin_start)
    frac = tf.where(area_taps, area_frac, lin_frac)
    if clamp:
        outside = tf.logical_or(start < 0, start >= src - 1)
        frac = tf.where(outside, tf.zeros_like(frac), frac)
        start = tf.clip_by_value(start, 0, src - 1)
    first = tf.cast(tf.round((1.0 - frac) * _COEF_SCALE), tf.int32)  # cvRound: half to even, as tf.round
    second = tf.cast(tf.round(frac * _COEF_SCALE), tf.int32)
    return tf.clip_by_value(start, 0, src - 1), tf.clip_by_value(start + 1, 0, src - 1), first, second


#: The largest side that ``_late_floors`` covers; beyond it area taps may differ from OpenCV's by a row or column.
LATE_FLOORS_UP_TO = 16384


@functools.lru_cache(maxsize=32)
def _late_floors(dst: int):
    """(src, d) int32 pairs, src up to ``LATE_FLOORS_UP_TO``, where OpenCV's area taps start one pixel lower
    than ``d * src // dst``: it computes ``floor(d * (1 / (dst / src)))`` in double, which falls just below
    the integer when the division rounds down. numpy's float64 is the same IEEE double, so the table is
    OpenCV's own arithmetic; the graph cannot do it (LiteRT has no float64 ops)."""
    import numpy as np

    src = np.arange(1, LATE_FLOORS_UP_TO + 1, dtype=np.int64)[:, None]
    d = np.arange(dst, dtype=np.int64)[None, :]
    late = np.floor(d * (1.0 / (dst / src))).astype(np.int64) < (d * src) // dst
    rows, cols = np.nonzero(late)
    return np.stack([src[rows, 0], d[0, cols]], axis=1).astype(np.int32).reshape(-1, 2)


def _bilinear(images, height, width, area_taps, late):
    """OpenCV's fixed-point bilinear resize: a horizontal pass kept in integers (pixel x weight), then a
    vertical pass rounded the way its SIMD code rounds (``(b * (row >> 4)) >> 16``, summed, ``+ 2 >> 2``)."""
    import tensorflow as tf

    x0, x1, a0, a1 = _taps(tf.shape(images)[2], width, area_taps, clamp=True, late=late["x"])
    y0, y1, b0, b1 = _taps(tf.shape(images)[1], height, area_taps, clamp=False, late=late["y"])
    pixels = tf.cast(images, tf.int32)
    rows = tf.gather(pixels, x0, axis=2) * a0[None, None, :, None] + \
        tf.gather(pixels, x1, axis=2) * a1[None, None, :, None]
    rows = tf.math.floordiv(rows, 16)  # >> 4 (the values are never negative)
    top = tf.math.floordiv(tf.gather(rows, y0, axis=1) * b0[None, :, None, None], 65536)
    bottom = tf.math.floordiv(tf.gather(rows, y1, axis=1) * b1[None, :, None, None], 65536)
    return tf.cast(tf.clip_by_value(tf.math.floordiv(top + bottom + 2, 4), 0, 255), tf.uint8)


# -- area (INTER_AREA when no axis grows) -------------------------------------------------------------
def _area(images, height, width):
    import tensorflow as tf

    src_h, src_w = tf.shape(images)[1], tf.shape(images)[2]
    whole = tf.logical_and(tf.equal(src_h % height, 0), tf.equal(src_w % width, 0))
    return tf.cond(whole, lambda: _block_mean(images, height, width), lambda: _area_weights(images, height, width))


def _block_mean(images, height, width):
    """A whole-number shrink: the mean of each block of pixels. OpenCV sums the block in integers; a 2 x 2
    block is rounded half up (``(sum + 2) >> 2``), any other multiplied by 1 / area in float32 and rounded half
    to even."""
    import tensorflow as tf

    shape = tf.shape(images)
    ky, kx = shape[1] // height, shape[2] // width
    blocks = tf.reshape(tf.cast(images, tf.int32), tf.stack([shape[0], height, ky, width, kx, shape[3]]))
    total = tf.reduce_sum(blocks, axis=[2, 4])
    half_up = tf.math.floordiv(total + 2, 4)
    scaled = tf.round(tf.cast(total, tf.float32) * (1.0 / tf.cast(kx * ky, tf.float32)))
    mean = tf.where(tf.logical_and(tf.equal(kx, 2), tf.equal(ky, 2)), half_up, tf.cast(scaled, tf.int32))
    return tf.cast(tf.clip_by_value(mean, 0, 255), tf.uint8)


def _area_pass(values, src, dst, axis: int):
    """Resample ``axis`` of float32 ``values`` from ``src`` to ``dst`` pixels by area, in OpenCV's order: each
    output pixel adds its source pixels times their share, one after the other from the first (so the float32
    sums round as OpenCV's do). Shares are OpenCV's area table: the overlap of ``[d, d + 1) * src / dst`` with
    each pixel over the cell's width, slivers under 0.001 pixel left out; computed in integers (units of
    1 / dst pixel) and divided once."""
    import tensorflow as tf

    first = tf.math.floordiv(tf.range(dst) * src, dst)  # the first source pixel each output pixel touches
    start = tf.range(dst) * src
    shape = [1, 1, 1, 1]
    shape[axis] = -1

    def add(k, total):
        pixel = first + k
        overlap = tf.maximum(tf.minimum(start + src, (pixel + 1) * dst) - tf.maximum(start, pixel * dst), 0)
        overlap = tf.where(tf.logical_and(overlap * 1000 > dst, pixel < src), overlap, tf.zeros_like(overlap))
        share = tf.reshape(tf.cast(overlap, tf.float32) / tf.cast(src, tf.float32), shape)
        return k + 1, total + tf.gather(values, tf.minimum(pixel, src - 1), axis=axis) * share

    taps = tf.math.floordiv(src, dst) + 2  # a cell src / dst pixels wide touches at most this many pixels
    total = tf.zeros_like(tf.gather(values, first, axis=axis))
    return tf.while_loop(lambda k, _: k < taps, add, (tf.constant(0), total))[1]


def _area_weights(images, height, width):
    """Any other shrink: OpenCV's float32 area resize, columns then rows, rounded half to even."""
    import tensorflow as tf

    shape = tf.shape(images)
    columns = _area_pass(tf.cast(images, tf.float32), shape[2], width, axis=2)
    resized = _area_pass(columns, shape[1], height, axis=1)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)
