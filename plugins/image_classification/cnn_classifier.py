"""The default model: a small convolutional network that trains on CPU in seconds."""

from __future__ import annotations

GRADCAM_LAYER = "gradcam_features"


def build_cnn(config: dict):
    import keras
    from keras import layers

    size = config["image_size"]
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    if config.get("augment"):
        x = layers.RandomFlip("horizontal")(x)
        x = layers.RandomTranslation(0.08, 0.08, fill_mode="constant")(x)
        x = layers.RandomZoom(0.1, fill_mode="constant")(x)
    for i, filters in enumerate(config["filters"]):
        if i:
            x = layers.MaxPooling2D()(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # Momentum 0.9: small datasets give few steps per epoch for the moving averages.
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
    x = layers.Identity(name=GRADCAM_LAYER)(x)
    return classifier_head(inputs, x, config, name="cnn_image_classifier")


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
