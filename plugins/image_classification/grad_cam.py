"""Grad-CAM: which parts of the image raised the score of a class."""

from __future__ import annotations

import numpy as np

from dlapps_plugins.image_classification.cnn_classifier import GRADCAM_LAYER


class GradCam:
    """Heatmaps for one model; the feature-and-prediction model is built once."""

    def __init__(self, model):
        import keras

        features = model.get_layer(GRADCAM_LAYER).output
        self._model = keras.Model(model.inputs, [features, model.outputs[0]])

    def heatmap(self, model_input: np.ndarray, class_index: int) -> np.ndarray:
        """A (h, w) map in [0, 1] over the feature grid for one preprocessed image."""
        import tensorflow as tf

        x = tf.convert_to_tensor(model_input[None])
        with tf.GradientTape() as tape:
            features, probabilities = self._model(x, training=False)
            score = probabilities[:, class_index]
        grads = tape.gradient(score, features)
        if len(features.shape) != 4:  # token features: no spatial map to show
            return np.zeros((1, 1), np.float32)
        weights = tf.reduce_mean(tf.cast(grads, tf.float32), axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(tf.cast(features, tf.float32) * weights, axis=-1))[0].numpy()
        peak = cam.max()
        return cam / peak if peak > 0 else cam


def overlay(image: np.ndarray, heatmap: np.ndarray, min_side: int = 256, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in colour over the RGB image, upscaled so small images stay visible."""
    import cv2

    scale = max(1.0, min_side / min(image.shape[:2]))
    size = (int(round(image.shape[1] * scale)), int(round(image.shape[0] * scale)))
    base = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA)
    heat = cv2.resize(heatmap.astype(np.float32), size, interpolation=cv2.INTER_CUBIC)
    colored = cv2.applyColorMap(np.uint8(255 * np.clip(heat, 0, 1)), cv2.COLORMAP_JET)
    colored = cv2.cvtColor(colored, cv2.COLOR_BGR2RGB)
    return np.uint8(base * (1 - alpha) + colored * alpha)
