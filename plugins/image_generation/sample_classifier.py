"""The independent judge of generated images: a small CNN classifier trained on the real training split
(never on generated images), saved with the model. Its predictions say whether a generated image shows
the class that was asked for; its penultimate layer gives the features of the Fréchet distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSIFIER_FILE = "sample_classifier.keras"
FEATURES_LAYER = "features"


def build_classifier(size: int, channels: int, num_classes: int, seed: int = 0):
    import keras
    from keras import layers

    inputs = keras.Input((size, size, channels), dtype="uint8", name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.RandomTranslation(0.1, 0.1, fill_mode="constant", fill_value=-1.0, seed=seed)(x)
    for i, filters in enumerate((32, 64)):
        for _ in range(2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        if x.shape[1] >= 8:
            x = layers.MaxPooling2D()(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(64, activation="relu", name=FEATURES_LAYER)(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="sample_classifier")


class SampleClassifier:
    """The judge: class probabilities and penultimate features of (n, size, size, channels) uint8 images."""

    def __init__(self, model):
        import keras

        self.model = model
        self._both = keras.Model(model.input, [model.get_layer(FEATURES_LAYER).output, model.output])

    @classmethod
    def train(cls, train_images, train_labels, val_images, val_labels, num_classes: int, seed: int = 0,
              epochs: int = 40, batch_size: int = 64) -> "SampleClassifier":
        import keras

        model = build_classifier(train_images.shape[1], train_images.shape[-1], num_classes, seed)
        model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=6, restore_best_weights=True)
        model.fit(train_images, train_labels, validation_data=(val_images, val_labels), epochs=epochs,
                  batch_size=batch_size, callbacks=[stop], verbose=0)
        return cls(model)

    def save(self, folder) -> None:
        self.model.save(Path(folder) / CLASSIFIER_FILE)

    @classmethod
    def load(cls, folder) -> "SampleClassifier | None":
        """The classifier saved in ``folder``, or None when the model has none (fewer than two classes)."""
        import keras

        file = Path(folder) / CLASSIFIER_FILE
        return cls(keras.saving.load_model(file, safe_mode=True)) if file.is_file() else None

    def features_and_probabilities(self, images: np.ndarray, batch_size: int = 256):
        features, probabilities = [], []
        for start in range(0, len(images), batch_size):
            f, p = self._both(images[start:start + batch_size], training=False)
            features.append(np.asarray(f, np.float64))
            probabilities.append(np.asarray(p, np.float64))
        return np.concatenate(features), np.concatenate(probabilities)
