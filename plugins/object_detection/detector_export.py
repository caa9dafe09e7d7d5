"""The detector as an exported graph: a uint8 image of any size in; boxes in its pixels, scores and classes
after non-maximum suppression out, as ``dlapps predict`` gives them.

Every step of ``preprocess`` -> ``forward`` -> ``postprocess`` that is tensor work is in the graph: the
letterbox (OpenCV's resize, pixel for pixel, and the grey margin), the network, the box decoding and the
choice of candidates, per-class NMS with the predict options baked in, and the way back to input pixels.
NMS is ``retinanet_detector.per_class_nms``, the one ``dlapps predict`` runs: TensorFlow's ``NonMaxSuppressionV5``
per image and class, which LiteRT and ONNX have as builtin ops.
"""

from __future__ import annotations

from dlapps.plugin import ExportGraph, cv2_resize_graph
from dlapps_plugins.object_detection.detection_images import PAD_VALUE
from dlapps_plugins.object_detection.keras_hub_presets import candidate_function
from dlapps_plugins.object_detection.retinanet_detector import per_image_nms


def detector_graph(model, size: int, labels: list[str], options: dict, class_mask) -> ExportGraph:
    """The graph of ``model`` for images letterboxed to ``size``; ``options`` are the checked predict options
    (conf, iou, max_detections; ``class_mask`` (C,) of 0/1 from ``classes``, or None)."""
    import tensorflow as tf

    candidates = candidate_function(model)
    conf, iou, most = float(options["conf"]), float(options["iou"]), int(options["max_detections"])

    def detect(images):
        square, scale = _letterbox(images, size)
        boxes, scores = candidates(tf.reshape(square, [-1, size, size, 3]))  # a static size for the network
        if class_mask is not None:
            scores = tf.where(tf.cast(class_mask, tf.bool)[None, None, :], scores, -1.0)
        found = per_image_nms(boxes, scores, conf, iou, most)  # static shapes: LiteRT lowers the loop to builtin ops
        return _to_input_pixels(*found, scale, tf.shape(images)[1:3])

    return ExportGraph(
        detect,
        inputs=[("images", (None, None, None, 3), "uint8",
                 "a batch of RGB images, all of one height and width (any); one image is a batch of 1")],
        outputs={"boxes": f"(batch, {most}, 4) x0, y0, x1, y1 in the input's pixels, best first; the rows past "
                          "count are zeros",
                 "scores": f"(batch, {most}) the score of each box (0 past count)",
                 "classes": f"(batch, {most}) the class index of each box, in the order of assets/labels.txt "
                            "(-1 past count)",
                 "count": "(batch,) how many rows of boxes, scores and classes are detections"},
        inside=f"letterboxing to {size}x{size} exactly as dlapps does (OpenCV's area filter when shrinking, bilinear "
               f"when enlarging; grey margin right and below), the pixel scaling, the network, box decoding, "
               f"per-class non-maximum suppression (conf {conf}, iou {iou}, at most {most} detections"
               f"{', classes ' + options['classes'] if options.get('classes') else ''}: the options given to "
               f"dlapps export), and the boxes mapped back to the input's pixels and clipped to it",
        outside="decoding an image file to RGB uint8 (dlapps also turns grayscale, RGBA, palette and 16-bit images "
                "into RGB, and decodes very large JPEGs at a reduced scale, mapping boxes back to the file's "
                "pixels), reading videos frame by frame, naming the classes and drawing the boxes")


def _letterbox(images, size: int):
    """``detection_images.letterbox`` on a batch: the (B, size, size, 3) squares and the (x, y) scale from
    input pixels to the square's. The new sides are ``round(side * size / longest)`` (half to even, as
    Python rounds), in integers."""
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    longest = tf.maximum(height, width)

    def scaled(side):
        quotient, twice = tf.math.floordiv(side * size, longest), 2 * tf.math.floormod(side * size, longest)
        up = tf.logical_or(twice > longest, tf.logical_and(tf.equal(twice, longest), tf.equal(quotient % 2, 1)))
        return tf.maximum(1, quotient + tf.cast(up, tf.int32))

    new_h, new_w = scaled(height), scaled(width)
    resized = cv2_resize_graph(images, new_h, new_w, area=longest > size)
    margin = [[0, 0], [0, size - new_h], [0, size - new_w], [0, 0]]  # (padded as int32: ONNX's Pad of uint8 fails)
    square = tf.cast(tf.pad(tf.cast(resized, tf.int32), margin, constant_values=PAD_VALUE), tf.uint8)
    scale = tf.cast(tf.stack([new_w, new_h]), tf.float32) / tf.cast(tf.stack([width, height]), tf.float32)
    return square, scale


def _to_input_pixels(boxes, scores, classes, scale, size):
    """``to_original`` and ``postprocess``'s filter: boxes divided by the scale and clipped to the input
    (height, width) ``size``; a box left without area is dropped and the rest move up."""
    import tensorflow as tf

    height, width = tf.cast(size[0], tf.float32), tf.cast(size[1], tf.float32)
    boxes = tf.clip_by_value(boxes / tf.tile(scale, [2]), 0.0, tf.stack([width, height, width, height]))
    keep = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1]) & (classes >= 0)
    # the kept rows first, in their order: sort by (not kept, position)
    rows = tf.shape(boxes)[1]
    order = tf.argsort(tf.where(keep, 0, rows) + tf.range(rows)[None, :], axis=1, stable=True)
    keep = tf.gather(keep, order, batch_dims=1)
    mask = tf.cast(keep, tf.float32)
    return {"boxes": tf.gather(boxes, order, batch_dims=1) * mask[..., None],
            "scores": tf.gather(scores, order, batch_dims=1) * mask,
            "classes": tf.where(keep, tf.gather(classes, order, batch_dims=1), -1),
            "count": tf.reduce_sum(tf.cast(keep, tf.int32), axis=1)}
