"""The default model: a small convolutional network that trains on CPU in seconds."""

from __future__ import annotations

GRADCAM_LAYER = "gradcam_features"


def build_cnn(config: dict):
    import keras
    from keras import layers

    size = config["image_size"]
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    if config.get("dark_background"):
        x = DarkBackground(name="dark_background")(x)
    if config.get("augment"):  # active in training only
        if config.get("flip", True):
            x = layers.RandomFlip("horizontal")(x)
        x = layers.RandomTranslation(config.get("shift", 0.08), config.get("shift", 0.08), fill_mode="constant")(x)
        x = layers.RandomZoom(config.get("zoom", 0.1), fill_mode="constant")(x)
    for i, filters in enumerate(config["filters"]):
        if i:
            x = layers.MaxPooling2D()(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Momentum 0.9: small datasets give few steps per epoch for the moving averages.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    x = layers.Identity(name=GRADCAM_LAYER)(x)
    return classifier_head(inputs, x, config, name="cnn_image_classifier")


def _dark_background_layer():
    import keras

    @keras.saving.register_keras_serializable(package="dlapps_image_classification")
    class DarkBackground(keras.layers.Layer):
        """Inverts an image (values in [0, 1]) whose border is on average light, so that every image reaches the
        network as light strokes on a dark background: a dark-on-light drawing of a digit and a light-on-dark one
        look the same to a model trained on one of them. The output for ``255 - image`` equals the output for
        ``image`` (unless the border is exactly mid-grey)."""

        def call(self, images):
            from keras import ops

            border = ops.concatenate([
                ops.reshape(images[:, 0], (-1, images.shape[2] * images.shape[3])),
                ops.reshape(images[:, -1], (-1, images.shape[2] * images.shape[3])),
                ops.reshape(images[:, :, 0], (-1, images.shape[1] * images.shape[3])),
                ops.reshape(images[:, :, -1], (-1, images.shape[1] * images.shape[3])),
            ], axis=1)
            light = ops.mean(border, axis=1) > 0.5
            return ops.where(light[:, None, None, None], 1.0 - images, images)

    return DarkBackground


def dark_background_class():
    """The ``DarkBackground`` layer class, made (and registered with Keras) on first use, so that importing
    this module needs no Keras."""
    global _DarkBackground
    if _DarkBackground is None:
        _DarkBackground = _dark_background_layer()
    return _DarkBackground


def DarkBackground(**kwargs):  # noqa: N802  (builds the layer)
    return dark_background_class()(**kwargs)


_DarkBackground = None


def classifier_head(inputs, features, config: dict, name: str):
    """Pool a feature map, drop out, and predict one probability per label (in float32)."""
    import keras
    from keras import layers

    from dlapps.plugin import float32_output

    pooling = layers.GlobalAveragePooling2D() if len(features.shape) == 4 else layers.GlobalAveragePooling1D()
    x = pooling(features)
    x = layers.Dropout(config.get("dropout", 0.0))(x)
    outputs = float32_output(len(config["labels"]), "softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)
