"""Start from a KerasHub image backbone: a preset name or a local preset directory."""

from __future__ import annotations

from pathlib import Path

from dlapps.errors import PresetError
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
    try:
        return cls.from_preset(preset)
    except FileNotFoundError as exc:
        raise PresetError(f"preset {preset!r} is incomplete: {exc}") from None
    except ValueError as exc:
        if "Unknown preset identifier" in str(exc) or not Path(preset).exists():
            raise PresetError(
                "expected a KerasHub image backbone preset name (e.g. 'resnet_18_imagenet') or a local "
                f"preset directory with config.json, received preset={preset!r}"
            ) from None
        raise PresetError(f"could not load preset {preset!r}: {exc}") from None
    except OSError as exc:  # a download that cannot reach the hub
        raise PresetError(f"could not download preset {preset!r} (is this machine online?): {exc}") from None


def _converter(keras_hub, preset: str):
    """The preset's image converter, or None when the preset ships none (plain 0-1 scaling)."""
    try:
        return keras_hub.layers.ImageConverter.from_preset(preset)
    except (FileNotFoundError, ValueError):
        return None
