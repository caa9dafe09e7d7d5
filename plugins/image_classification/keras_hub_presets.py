"""Start from a KerasHub image backbone: a preset name or a local preset directory."""

from __future__ import annotations

from dlapps.plugin import from_preset
from dlapps_plugins.image_classification.cnn_classifier import GRADCAM_LAYER, classifier_head


def classifier_from_preset(preset: str, config: dict):
    """Backbone and image converter from ``preset``, with a fresh head for ``config['labels']``.

    The converter (resizing and normalisation the backbone was trained with) is
    part of the model, so the saved artifact takes raw 0-255 pixels.
    """
    import keras
    import keras_hub

    backbone = _load(keras_hub.models.Backbone, preset)
    converter = _converter(keras_hub, preset)
    if converter is not None and getattr(converter, "image_size", None):
        config["image_size"] = int(converter.image_size[0])
    size = config["image_size"]
    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs) if converter is None else converter(
        keras.ops.cast(inputs, "float32"))
    features = backbone(x)
    if isinstance(features, dict):  # some backbones return named feature maps
        features = list(features.values())[-1]
    features = keras.layers.Identity(name=GRADCAM_LAYER)(features)
    config["preset"] = preset
    return classifier_head(inputs, features, config, name="preset_image_classifier")


def _load(cls, preset: str):
    return from_preset(cls, preset, "a KerasHub image backbone preset name (e.g. 'resnet_18_imagenet')")


def _converter(keras_hub, preset: str):
    """The preset's image converter, or None when the preset ships none (plain 0-1 scaling)."""
    try:
        return keras_hub.layers.ImageConverter.from_preset(preset)
    except (FileNotFoundError, ValueError):
        return None
