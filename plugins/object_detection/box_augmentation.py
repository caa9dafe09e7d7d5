"""Box-aware augmentation of training examples with Keras' preprocessing layers, which move a training image's
boxes with it (``bounding_box_format``): a horizontal flip, a random zoom (in: a crop, out: a smaller scene
with a margin) and shift, and colour jitter. Boxes pushed out of the image are clipped to it, and those left
without area get the label -1, which the label encoder treats as no object. Drawn anew for every example in
every epoch (the core applies ``augment`` in the tf.data pipeline of the training split)."""

from __future__ import annotations


class BoxAugmenter:
    """The layers, made once; ``__call__`` augments one ``(image, {"boxes", "labels"})`` example."""

    def __init__(self, box_format: str = "xyxy", seed: int = 0):
        import keras

        fmt = box_format  # "xyxy" pixels (RetinaNet); D-FINE's targets are "rel_center_xywh"
        self.geometry = [
            keras.layers.RandomFlip("horizontal", bounding_box_format=fmt, seed=seed),
            keras.layers.RandomZoom(height_factor=(-0.3, 0.3), fill_mode="constant", bounding_box_format=fmt,
                                    seed=seed + 1),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", bounding_box_format=fmt, seed=seed + 2),
        ]
        self.color = keras.layers.RandomColorJitter(value_range=(0, 255), brightness_factor=0.2, contrast_factor=0.3,
                                                    saturation_factor=(0.3, 0.7), hue_factor=0.05, seed=seed + 3)

    def __call__(self, example):
        import tensorflow as tf

        image, target = example[0], example[1]
        data = {"images": tf.cast(image, tf.float32),
                "bounding_boxes": {"boxes": tf.ensure_shape(target["boxes"], [None, 4]), "labels": target["labels"]}}
        for layer in self.geometry:
            data = layer(data, training=True)
        # Back to uint8: the example keeps its dtype (the core pads batches by the dtypes of unaugmented examples).
        images = tf.cast(tf.round(tf.clip_by_value(self.color(data["images"], training=True), 0.0, 255.0)), tf.uint8)
        boxes = data["bounding_boxes"]
        return (images, {"boxes": tf.cast(boxes["boxes"], tf.float32), "labels": tf.cast(boxes["labels"], tf.int32)},
                *example[2:])
