"""Start from a KerasHub detector preset (a name such as ``retinanet_resnet50_fpn_coco`` or ``dfine_nano_coco``,
or a local preset directory that ``save_to_preset`` wrote), and the one place that knows how each detector
family's raw outputs become candidate boxes.

A preset keeps its backbone weights and its image normalisation (scale and offset); it gets a fresh head
for the data's classes and works on the task's letterboxed squares of ``image_size`` (the preset's own
image size when it has one). Boxes are ``xyxy`` pixels of that square for every family.
"""

from __future__ import annotations

from dlapps.plugin import PresetError, from_preset

BOX_FORMAT = "xyxy"
FAMILIES = ("RetinaNetObjectDetector", "DFineObjectDetector")


def detector_from_preset(preset: str, config: dict):
    """The preset's detector with a new head for ``config['labels']``; ``config`` gets the image size it uses."""
    import keras_hub

    converter = _converter(keras_hub, preset)
    if converter is not None and converter.image_size and converter.image_size[0]:
        config["image_size"] = int(converter.image_size[0])
    size = int(config["image_size"])
    kwargs = {"bounding_box_format": BOX_FORMAT, "image_shape": (size, size, 3)}
    expected = "a KerasHub object detector preset name (e.g. 'retinanet_resnet50_fpn_coco', 'dfine_nano_coco')"
    model = from_preset(keras_hub.models.ObjectDetector, preset, expected, **kwargs)  # its own classes
    family = type(model).__name__
    if family not in FAMILIES:
        raise PresetError(f"expected a RetinaNet or D-FINE detector preset, received preset={preset!r}, a {family}")
    if family == "DFineObjectDetector":
        model = _dfine_for(keras_hub, preset, model, len(config["labels"]), kwargs)
    else:  # KerasHub loads the backbone's weights and makes the heads anew for another num_classes
        model = from_preset(keras_hub.models.ObjectDetector, preset, expected, num_classes=len(config["labels"]),
                            **kwargs)
    # The task letterboxes images itself: the preset's converter only scales and shifts pixel values.
    scale, offset = (converter.scale, converter.offset) if converter is not None else (1.0 / 255.0, None)
    preprocessor_cls = type(model).preprocessor_cls
    model.preprocessor = preprocessor_cls(image_converter=preprocessor_cls.image_converter_cls(
        scale=scale, offset=offset, bounding_box_format=BOX_FORMAT))
    if family == "RetinaNetObjectDetector":
        from dlapps_plugins.object_detection.retinanet_detector import _start_heads, set_matching

        set_matching(model, config)
        _start_heads(model)
    config["preset"] = preset
    config["family"] = family
    return model


def _dfine_for(keras_hub, preset: str, source, num_classes: int, kwargs: dict):
    """A D-FINE detector for ``num_classes`` with the preset's weights (``source``) wherever their shape fits.

    D-FINE's class-dependent layers live in its backbone, which KerasHub loads whole from a preset, so a preset
    for another number of classes cannot be loaded with ``num_classes``: its weights are copied into a fresh
    model for our classes (the same architecture, so the same order of weights)."""
    if source.num_classes == num_classes:
        return source
    target = from_preset(keras_hub.models.ObjectDetector, preset, "a KerasHub D-FINE preset", load_weights=False,
                         num_classes=num_classes, **kwargs)
    for mine, theirs in zip(target.weights, source.weights):
        if tuple(mine.shape) == tuple(theirs.shape):
            mine.assign(theirs)
    return target


def _converter(keras_hub, preset: str):
    """The preset's image converter, or None when it ships none."""
    try:
        return keras_hub.layers.ImageConverter.from_preset(preset)
    except (FileNotFoundError, ValueError, OSError):
        return None


def candidate_function(model, keep: int = 1000, features: bool = False):
    """A compiled function: letterboxed uint8 images -> (boxes (B, K, 4) xyxy in input pixels, class scores
    (B, K, C)) of the ``keep`` best candidates of each image, before non-maximum suppression; with ``features``
    a RetinaNet adds each image's pooled feature pyramid (the out-of-distribution check), a D-FINE nothing."""
    family = type(model).__name__
    if family == "DFineObjectDetector":
        return _dfine_candidates(model, keep)
    from dlapps_plugins.object_detection.retinanet_detector import candidate_function as retinanet_candidates

    return retinanet_candidates(model, keep, features=features)


def _dfine_candidates(model, keep: int):
    """D-FINE's queries: boxes are normalised ``center_xywh`` of the input, scores the sigmoid of the logits."""
    import tensorflow as tf

    from dlapps_plugins.object_detection.retinanet_detector import top_candidates

    @tf.function(reduce_retracing=True)
    def candidates(images):
        x = model.preprocessor(images)
        raw = model(x, training=False)
        height, width = float(images.shape[1]), float(images.shape[2])
        cx, cy, w, h = tf.unstack(tf.cast(raw["pred_boxes"], "float32"), axis=-1)
        boxes = tf.stack([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height],
                         axis=-1)
        scores = tf.sigmoid(tf.cast(raw["logits"], "float32"))
        return top_candidates(boxes, scores, keep, (height, width))

    return candidates



def dfine_boxes(boxes, size: int):
    """Boxes ``xyxy`` in pixels of the ``size`` square -> D-FINE's training targets, normalised ``center_xywh``."""
    import numpy as np

    x0, y0, x1, y1 = np.moveaxis(np.asarray(boxes, np.float32).reshape(-1, 4) / size, -1, 0)
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1).astype(np.float32)
