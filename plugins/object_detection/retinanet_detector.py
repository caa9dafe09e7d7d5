"""The default model: KerasHub's ``RetinaNetObjectDetector`` on a small ResNet, trained from scratch.

The ResNet (basic blocks) feeds a two-level feature pyramid (P3 and P4, strides 8 and 16); each level has a
box head and a class head, and anchors of ``anchor_scales`` sizes from ``anchor_size`` times the stride, of
the ``aspect_ratios`` given. Anchors are matched to boxes at a lower IoU than KerasHub's default, so small
objects are learnt too. Pixels are scaled to 0-1 by the model's preprocessor, which is saved with it.

Boxes are ``xyxy`` in the pixels of the model's (letterboxed) input everywhere.
"""

from __future__ import annotations

import math
import threading

BOX_FORMAT = "xyxy"


def build_retinanet(config: dict):
    """A fresh RetinaNet for ``config`` (``labels``, ``image_size``, backbone and anchor settings)."""
    import keras_hub

    size = int(config["image_size"])
    levels = len(config["backbone_filters"]) + 1  # the stem reaches P2; each stack after the first halves again
    if config["max_level"] > levels or config["min_level"] < 2 or config["min_level"] > config["max_level"]:
        raise ValueError(f"expected 2 <= min_level <= max_level <= {levels} for {len(config['backbone_filters'])} "
                         f"backbone stacks, received min_level={config['min_level']}, max_level={config['max_level']}")
    if size % 2 ** config["max_level"]:
        raise ValueError(f"expected image_size to be a multiple of {2 ** config['max_level']} (the stride of "
                         f"level P{config['max_level']}), received {size}")
    encoder = keras_hub.models.ResNetBackbone(
        input_conv_filters=[int(config["backbone_filters"][0])], input_conv_kernel_sizes=[7],
        stackwise_num_filters=list(config["backbone_filters"]), stackwise_num_blocks=list(config["backbone_blocks"]),
        stackwise_num_strides=[1] + [2] * (len(config["backbone_filters"]) - 1), block_type="basic_block",
        image_shape=(None, None, 3))  # any size: a preset saved from this model works at another image_size
    backbone = keras_hub.models.RetinaNetBackbone(
        image_encoder=encoder, min_level=int(config["min_level"]), max_level=int(config["max_level"]),
        use_p5=False, image_shape=(size, size, 3))
    converter = keras_hub.layers.RetinaNetImageConverter(scale=1.0 / 255.0, bounding_box_format=BOX_FORMAT)
    preprocessor = keras_hub.models.RetinaNetObjectDetectorPreprocessor(image_converter=converter)
    return retinanet_for(backbone, config, preprocessor)


def retinanet_for(backbone, config: dict, preprocessor):
    """A RetinaNet detector head for ``config['labels']`` on ``backbone`` (a RetinaNetBackbone)."""
    import keras_hub

    anchors = keras_hub.layers.AnchorGenerator(
        BOX_FORMAT, min_level=backbone.min_level, max_level=backbone.max_level,
        num_scales=int(config["anchor_scales"]), aspect_ratios=[float(a) for a in config["aspect_ratios"]],
        anchor_size=float(config["anchor_size"]))
    model = keras_hub.models.RetinaNetObjectDetector(
        backbone=backbone, num_classes=len(config["labels"]), bounding_box_format=BOX_FORMAT,
        anchor_generator=anchors, pre_logits_num_conv_layers=int(config["head_convs"]), preprocessor=preprocessor)
    set_matching(model, config)
    _start_heads(model)
    return model


def set_matching(model, config: dict) -> None:
    """Anchors with an IoU of at least ``positive_iou`` with a box learn it, those below ``negative_iou`` learn
    background, and those between are ignored. (KerasHub's 0.5 / 0.4 leave small objects without anchors;
    its label encoder takes the thresholds at construction only, and saves these in its config.)"""
    import keras_hub

    encoder = model.label_encoder
    negative, positive = float(config["negative_iou"]), float(config["positive_iou"])
    encoder.positive_threshold, encoder.negative_threshold = positive, negative
    encoder.box_matcher = keras_hub.layers.BoxMatcher(thresholds=[negative, positive], match_values=[-1, -2, 1])


def _start_heads(model, prior: float = 0.01) -> None:
    """Start the class head at a low probability for every anchor (the focal-loss prior) and the box head at
    the anchors themselves. (KerasHub 0.32 gives the prior bias to the box head instead, which makes
    training from scratch start from boxes a hundredth of their anchors' size and every class at 0.5.)"""
    cls_bias = model.classification_head.prediction_layer.bias
    box_bias = model.box_head.prediction_layer.bias
    cls_bias.assign(cls_bias.numpy() * 0 - math.log((1 - prior) / prior))
    box_bias.assign(box_bias.numpy() * 0)


def compile_detector(model, learning_rate: float, box_weight: float, jit_compile: bool = False) -> None:
    """Adam with gradient clipping, KerasHub's focal loss for classes and a Huber loss for box offsets.

    KerasHub encodes box offsets without scaling (variance 1), so they are small and a plain Huber loss hardly
    moves the boxes. A Huber loss with ``delta`` 0.2, weighted by ``box_weight`` (25), is the smooth-L1 loss
    of offsets scaled by 5 (variance 0.2), as RetinaNet trains them, while decoding stays KerasHub's."""
    import keras

    scale = float(box_weight) ** 0.5
    model.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=10.0),
                  box_loss=keras.losses.Huber(delta=1.0 / scale, reduction="sum"),
                  classification_loss=keras.losses.BinaryFocalCrossentropy(from_logits=True, reduction="sum"),
                  loss_weights={"bbox_regression": float(box_weight), "cls_logits": 1.0},
                  jit_compile=jit_compile)


def candidate_function(model, keep: int = 1000, features: bool = False):
    """A compiled function: a batch of letterboxed uint8 images -> (boxes (B, K, 4) in input pixels, class
    scores (B, K, C)) for the ``keep`` best anchors of each image, before non-maximum suppression; with
    ``features``, a third output: each image's pooled feature pyramid (``with_pooled_features``), for the
    out-of-distribution check."""
    import keras
    import tensorflow as tf

    anchor_format = model.anchor_generator.bounding_box_format
    network = with_pooled_features(model) if features else model

    @tf.function(reduce_retracing=True)
    def candidates(images):
        x = model.preprocessor(images) if model.preprocessor is not None else tf.cast(images, "float32")
        raw = network(x, training=False)
        height, width = images.shape[1], images.shape[2]
        anchors = tf.concat(list(model.anchor_generator(x).values()), axis=0)
        boxes = keras.utils.bounding_boxes.decode_deltas_to_boxes(
            anchors=anchors, boxes_delta=tf.cast(raw["bbox_regression"], "float32"), encoded_format="center_xywh",
            anchor_format=anchor_format, box_format=BOX_FORMAT, image_shape=(height, width, 3))
        scores = tf.sigmoid(tf.cast(raw["cls_logits"], "float32"))
        best = top_candidates(boxes, scores, keep, (height, width))
        return (*best, tf.cast(raw["features"], "float32")) if features else best

    return candidates


def with_pooled_features(model):
    """The detector with a third output, ``features``: each level of its feature pyramid averaged over the
    image and concatenated (what the out-of-distribution check measures), beside its ``bbox_regression`` and
    ``cls_logits``; computed in the same pass."""
    import keras

    # The pyramid as the detector's graph computes it (``backbone.output`` is the backbone's own graph, not
    # connected to the detector's input); Keras has no public getter for a nested model's node.
    levels = model.backbone._inbound_nodes[0].output_tensors
    pooled = [keras.layers.GlobalAveragePooling2D(name=f"dlapps_pooled_{i}")(level) for i, level in enumerate(levels)]
    features = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="dlapps_pooled_pyramid")(pooled)
    return keras.Model(model.input, {"bbox_regression": model.get_layer("bbox_regression").output,
                                     "cls_logits": model.get_layer("cls_logits").output, "features": features})


def top_candidates(boxes, scores, keep: int, size):
    """The ``keep`` rows of each image whose best class score is highest, boxes clipped to the
    ``size`` = (height, width) input. A box left without area by the clipping (it lay wholly outside the
    input) is no candidate: its scores become -1, below any threshold, so it never takes one of the
    ``max_detections`` places."""
    import tensorflow as tf

    height, width = float(size[0]), float(size[1])
    boxes = tf.clip_by_value(boxes, 0.0, tf.constant([width, height, width, height], boxes.dtype))
    has_area = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
    scores = tf.where(has_area[..., None], scores, -1.0)
    keep = min(keep, int(boxes.shape[1]) if boxes.shape[1] is not None else keep)
    best = tf.reduce_max(scores, axis=-1)
    _, order = tf.math.top_k(best, k=tf.minimum(keep, tf.shape(best)[1]))
    return tf.gather(boxes, order, batch_dims=1), tf.gather(scores, order, batch_dims=1)


def select(boxes, scores, conf: float, iou: float, max_detections: int, class_mask=None):
    """Per-class non-maximum suppression (``per_class_nms``, the same that ``dlapps export`` bakes into its graph)
    of candidates: numpy ``(boxes (B, M, 4), scores (B, M), classes (B, M), counts (B,))``, the rows past each
    image's count zeros (classes -1). ``class_mask`` (C,) of 0/1 keeps only some classes."""
    import numpy as np
    import tensorflow as tf

    scores = tf.convert_to_tensor(scores, tf.float32)
    if class_mask is not None:
        scores = tf.where(tf.cast(class_mask, bool)[None, None, :], scores, -1.0)  # below any threshold
    out = _nms(tf.convert_to_tensor(boxes, tf.float32), scores, tf.constant(conf, tf.float32),
               tf.constant(iou, tf.float32), tf.constant(max_detections, tf.int32))
    return tuple(np.asarray(v) for v in out)


def per_class_nms(boxes, scores, conf, iou, most):
    """One image's candidates, boxes (K, 4) and scores (K, C) -> the ``most`` best boxes (``most``, 4), scores and
    classes that TensorFlow's non-maximum suppression keeps class by class (scores above ``conf``, overlaps below
    ``iou``), best first, padded with zeros (classes -1). ``conf``, ``iou`` and ``most`` may be numbers (baked into
    an exported graph, whose static shapes LiteRT needs) or tensors; ``NonMaxSuppressionV5`` is a builtin op of
    LiteRT and ONNX. The IoU is the same whichever axis comes first, so (x0, y0, x1, y1) boxes need no swap."""
    import tensorflow as tf

    kept_boxes, kept_scores, kept_classes = [], [], []
    for c in range(int(scores.shape[-1])):
        chosen, chosen_scores = tf.image.non_max_suppression_with_scores(
            boxes, scores[:, c], most, iou_threshold=iou, score_threshold=tf.maximum(conf, 0.0))
        kept_boxes.append(tf.gather(boxes, chosen))
        kept_scores.append(chosen_scores)
        kept_classes.append(tf.fill(tf.shape(chosen), c))
    all_scores = tf.concat(kept_scores, 0)
    found = tf.minimum(most, tf.shape(all_scores)[0])
    best_scores, order = tf.math.top_k(all_scores, k=found)
    pad = most - found
    return (tf.reshape(tf.pad(tf.gather(tf.concat(kept_boxes, 0), order), [[0, pad], [0, 0]]), [most, 4]),
            tf.reshape(tf.pad(best_scores, [[0, pad]]), [most]),
            tf.reshape(tf.pad(tf.gather(tf.concat(kept_classes, 0), order), [[0, pad]], constant_values=-1), [most]))


def per_image_nms(boxes, scores, conf, iou, most):
    """``per_class_nms`` over a batch: boxes (B, K, 4) and scores (B, K, C) -> (boxes, scores, classes)."""
    import tensorflow as tf

    static = most if isinstance(most, int) else None
    signature = (tf.TensorSpec([static, 4], tf.float32), tf.TensorSpec([static], tf.float32),
                 tf.TensorSpec([static], tf.int32))
    return tf.map_fn(lambda pair: per_class_nms(pair[0], pair[1], conf, iou, most), (boxes, scores),
                     fn_output_signature=signature)


def _nms(boxes, scores, conf, iou, max_detections):
    classes = int(scores.shape[-1])
    with _nms_lock:  # concurrent requests: one trace; one function per class count (per_class_nms loops over them,
        if classes not in _nms_compiled:  # and a retrace for another count would make it unknown)
            _nms_compiled[classes] = _nms_function()
    return _nms_compiled[classes](boxes, scores, conf, iou, max_detections)


def _nms_function():
    import tensorflow as tf

    @tf.function(reduce_retracing=True)
    def run(boxes, scores, conf, iou, max_detections):
        kept_boxes, kept_scores, kept_classes = per_image_nms(boxes, scores, conf, iou, max_detections)
        return kept_boxes, kept_scores, kept_classes, tf.reduce_sum(tf.cast(kept_classes >= 0, tf.int32), axis=1)

    return run


_nms_compiled: dict = {}
_nms_lock = threading.Lock()
