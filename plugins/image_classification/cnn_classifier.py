"""The default model: a small convolutional network that trains on CPU in seconds."""

from __future__ import annotations

import functools

GRADCAM_LAYER = "gradcam_features"


def build_cnn(config: dict):
    import keras
    from keras import layers

    size = config["image_size"]
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    if config.get("dark_background"):
        x = DarkBackground(name="dark_background")(x)
    if config.get("colour_jitter"):  # training only: the class is in the shape, not the colour
        x = ColourJitter(name="colour_jitter")(x)
    if config.get("standardize"):
        x = PerImageStandardization(name="standardize")(x)
    if config.get("augment"):  # active in training only
        if config.get("flip", True):
            x = layers.RandomFlip("horizontal_and_vertical" if config["flip"] == "both" else "horizontal")(x)
        fill = config.get("fill_mode", "constant")
        if config.get("rotation"):
            x = layers.RandomRotation(config["rotation"], fill_mode=fill)(x)
        x = layers.RandomTranslation(config.get("shift", 0.08), config.get("shift", 0.08), fill_mode=fill)(x)
        if config.get("zoom"):
            x = layers.RandomZoom(config["zoom"], fill_mode=fill)(x)
    for i, filters in enumerate(config["filters"]):
        if i:
            x = layers.MaxPooling2D()(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Momentum 0.9: small datasets give few steps per epoch for the moving averages.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    x = layers.Identity(name=GRADCAM_LAYER)(x)
    return classifier_head(inputs, x, config, name="cnn_image_classifier")


@functools.cache
def dark_background_class():
    """The ``DarkBackground`` layer class, made (and registered with Keras) on first use, so that
    importing this module needs no Keras."""
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


@functools.cache
def standardization_class():
    """The ``PerImageStandardization`` layer class, made (and registered with Keras) on first use, so that
    importing this module needs no Keras."""
    import keras

    @keras.saving.register_keras_serializable(package="dlapps_image_classification")
    class PerImageStandardization(keras.layers.Layer):
        """Each image minus its own mean, divided by its own spread (in training and inference alike): a dim
        photo and a bright one of the same thing reach the network alike."""

        def call(self, images):
            from keras import ops

            mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
            spread = ops.sqrt(ops.mean(ops.square(images - mean), axis=(1, 2, 3), keepdims=True))
            return (images - mean) / ops.maximum(spread, 1.0 / 255.0)

    return PerImageStandardization


def PerImageStandardization(**kwargs):  # noqa: N802  (builds the layer)
    return standardization_class()(**kwargs)



@functools.cache
def colour_jitter_class():
    """The ``ColourJitter`` layer class, made (and registered with Keras) on first use, so that
    importing this module needs no Keras."""
    import keras

    @keras.saving.register_keras_serializable(package="dlapps_image_classification")
    class ColourJitter(keras.layers.Layer):
        """In training only, each image (values in [0, 1]) gets its colour channels in a random order, becomes
        grey with probability ``grey`` and is inverted with probability ``invert``: the colours of a few
        training images then say nothing, and the network must learn the shapes and textures. A no-op in
        inference."""

        def __init__(self, grey: float = 0.3, invert: float = 0.5, seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.grey, self.invert, self.seed = float(grey), float(invert), seed
            self.generator = keras.random.SeedGenerator(seed)

        def call(self, images, training=None):
            from keras import ops

            if not training:
                return images
            batch = ops.shape(images)[0]
            order = ops.argsort(keras.random.uniform((batch, 3), seed=self.generator), axis=-1)
            shuffled = ops.take_along_axis(images, ops.broadcast_to(order[:, None, None, :], ops.shape(images)),
                                           axis=-1)
            draws = keras.random.uniform((batch, 2), seed=self.generator)
            grey = ops.broadcast_to(ops.mean(shuffled, axis=-1, keepdims=True), ops.shape(shuffled))
            shuffled = ops.where((draws[:, 0] < self.grey)[:, None, None, None], grey, shuffled)
            return ops.where((draws[:, 1] < self.invert)[:, None, None, None], 1.0 - shuffled, shuffled)

        def get_config(self):
            return {**super().get_config(), "grey": self.grey, "invert": self.invert, "seed": self.seed}

    return ColourJitter


def ColourJitter(**kwargs):  # noqa: N802  (builds the layer)
    return colour_jitter_class()(**kwargs)



def DarkBackground(**kwargs):  # noqa: N802  (builds the layer)
    return dark_background_class()(**kwargs)



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


def with_features(model):
    """``model`` with two named outputs: its ``probabilities`` and the pooled ``features`` its last layer reads
    (what the out-of-distribution check measures); the model itself when it has no such layer."""
    import keras

    try:
        head = model.get_layer("probabilities")
    except ValueError:
        return model
    return keras.Model(model.inputs, {"probabilities": model.outputs[0], "features": head.input})
