"""Small tasks that exercise parts of the task contract no built-in plugin uses yet: file results
(an image out), ragged targets padded with -1, per-epoch augmentation, unlabelled data and a model
with its own train_step. They import only the plugin API, as a third-party plugin would."""

from __future__ import annotations

import contextlib

import numpy as np

from dlapps.plugin import (Dataset, ImageOutput, InvalidInputError, Option, Split, Task, hookimpl, read_image,
                           resize_image)

SIZE = 8


def _images(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, SIZE, SIZE, 3), dtype=np.uint8)


class ImageInverter(Task):
    """Image in, its negative out (an image result), learnt by a one-layer network."""

    name = "toy-image-inverter"
    title = "Image inverter"
    description = "An 8x8 RGB image in, its negative out."
    input_kind = "image"
    output_kind = "images"
    predict_options = {"brightness": Option(float, 1.0, "scale of the output", min=0.0, max=2.0)}
    training_seconds = 5
    default_config = {"epochs": 1, "batch_size": 8, "learning_rate": 0.05}

    def default_data(self, seed=0):
        images = _images(48, 5)
        targets = (255 - images).astype(np.float32) / 255.0
        split = lambda a, b: Split(images[a:b], targets[a:b])  # noqa: E731
        return Dataset(split(0, 32), split(32, 40), split(40, 48), "48 random 8x8 images")

    def build_model(self, config):
        import keras

        inputs = keras.Input((SIZE, SIZE, 3), dtype="uint8")
        x = keras.layers.Rescaling(1 / 255)(inputs)
        return keras.Model(inputs, keras.layers.Dense(3, dtype="float32")(x))

    def compile_model(self, model, jit_compile=False):
        import keras

        model.compile(optimizer=keras.optimizers.Adam(self.config["learning_rate"]), loss="mse")

    def preprocess(self, raw, options):
        image = read_image(raw)
        return resize_image(image, SIZE), {"original_size": image.original_size}

    def postprocess(self, output, context, options):
        pixels = np.clip(output * 255 * options["brightness"], 0, 255).astype(np.uint8)
        return {"image": ImageOutput(pixels), "original_size": list(context["original_size"])}

    def evaluate(self, predictor, split):
        results = predictor.predict(list(split.inputs))
        error = np.mean([np.abs(r["image"] / 255.0 - t).mean() for r, t in zip(results, split.targets)])
        return {"mean_absolute_error": float(error)}


class RaggedBoxes(Task):
    """Targets of different lengths per example (boxes and labels) padded with -1, and augmentation."""

    name = "toy-ragged-boxes"
    input_kind = "id"
    pad_values = {"boxes": -1, "labels": -1}

    def preprocess(self, raw, options):
        return np.full(4, float(raw), np.float32), None

    def training_example(self, raw, target):
        x, _ = self.preprocess(raw, {})
        return x, {"boxes": np.asarray(target["boxes"], np.float32), "labels": np.asarray(target["labels"], np.int32)}

    def augment(self, example):
        import tensorflow as tf

        x, target = example
        return x + tf.random.uniform(tf.shape(x)), target


class Denoiser(Task):
    """Unlabelled data and a model with its own train_step (as a diffusion model has)."""

    name = "toy-denoiser"
    input_kind = "id"
    default_config = {"epochs": 3, "batch_size": 16, "patience": 10}

    def default_data(self, seed=0):
        rng = np.random.default_rng(3)
        values = rng.normal(size=(96, 4)).astype(np.float32)
        return Dataset(Split(values[:64]), Split(values[64:80]), Split(values[80:]), "96 random vectors")

    def build_model(self, config):
        from toy_models import NoisePredictor

        model = NoisePredictor(units=8)
        model(np.zeros((1, 4), np.float32))
        return model

    def compile_model(self, model, jit_compile=False):
        import keras

        model.compile(optimizer=keras.optimizers.SGD(0.05))

    def custom_objects(self):
        from toy_models import NoisePredictor

        return {"NoisePredictor": NoisePredictor}

    def preprocess(self, raw, options):
        values = np.asarray(raw, np.float32)
        if values.shape != (4,):
            raise InvalidInputError(f"expected 4 numbers, received shape {values.shape}")
        return values, None

    def postprocess(self, output, context, options):
        return {"noise": [round(float(v), 5) for v in output]}

    def evaluate(self, predictor, split):
        return {"examples": len(split)}


class NoData(Task):
    """A task whose default data cannot be made: its training fails with a clear error."""

    name = "toy-no-data"
    title = "No data"
    training_seconds = 1

    def default_data(self, seed=0):
        from dlapps.plugin import DataError

        raise DataError("expected the toy corpus in ./nowhere, received nothing")


@hookimpl
def dlapps_register_tasks(register):
    for task in (ImageInverter, RaggedBoxes, Denoiser, NoData):
        register(task)


@contextlib.contextmanager
def installed_toys():
    """The toy tasks registered with the process's plugin host, as an installed plugin's are."""
    import sys

    from dlapps.host import get_host

    host = get_host()
    host.add_plugin(sys.modules[__name__], "toy-tasks")
    try:
        yield
    finally:
        host.pm.unregister(name="toy-tasks")
        for name in host.plugins.pop("toy-tasks").tasks:
            host._tasks.pop(name)
