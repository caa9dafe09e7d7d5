"""The image-classification plugin through the shared harness, user folders and presets."""

import json
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file
from PIL import Image

import dlapps
from conftest import TINY_CONFIG, write_image
from dlapps.errors import DataError, InvalidInputError, PresetError
from dlapps.testing import run_task_test
from dlapps_plugins.image_classification import ImageClassification


def test_contract_on_digits(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[1:7, 3:5] = 255
    path = write_image(tmp_path / "inputs" / "one.png", rgb)
    predictor = run_task_test(
        ImageClassification, tmp_path, config=TINY_CONFIG,
        inputs=[rgb, rgb[..., 0], Image.fromarray(rgb), str(path)],
        bad_inputs=[(tmp_path / "missing.png", InvalidInputError), ({"x": 1}, InvalidInputError),
                    (np.zeros((2, 2, 2, 2, 2)), InvalidInputError)],
        ui_call=("/classify", [handle_file(str(path)), 3]),
    )
    result = predictor.predict(rgb)
    assert result["label"] in [str(d) for d in range(10)]
    assert 0.0 <= result["score"] <= 1.0
    assert len(result["top_k"]) == 5
    assert sum(t["score"] for t in result["top_k"]) <= 1.0 + 1e-6
    assert len(predictor.predict(rgb, top_k=2)["top_k"]) == 2
    assert [len(r["top_k"]) for r in predictor.predict([rgb, str(path)], top_k=10)] == [10, 10]
    with pytest.raises(InvalidInputError, match="top_k"):
        predictor.predict(rgb, top_k=11)
    # The UI's examples: raw (8x8, not resized) test images of different classes, each named after its class.
    test = ImageClassification().default_data().test.head(64)
    examples = [Path(p) for p in predictor.examples()]
    labels = [p.stem.split("_", 1)[1] for p in examples]
    assert len(examples) >= 8 and len(set(labels)) == len(examples)  # one per class
    for file, label in zip(examples, labels):
        pixels = np.asarray(Image.open(file).convert("RGB"))
        assert any(np.array_equal(pixels, x) for x, y in zip(test.inputs, test.targets) if str(y) == label), file


def test_user_folder_of_mixed_images(tmp_path, image_folder):
    out = tmp_path / "shapes-model"
    predictor = dlapps.train("image-classification", image_folder, epochs=2, out=out,
                             config={**TINY_CONFIG, "image_size": 24}, verbose=0)
    meta = json.loads((out / "task.json").read_text())
    assert meta["config"]["labels"] == ["blue", "green", "red"]
    assert meta["config"]["image_size"] == 24  # the user's setting wins over the data's default
    assert meta["data"]["source"] == str(image_folder)
    assert sum(meta["data"]["sizes"].values()) == 24
    files = sorted(p for p in image_folder.rglob("*") if p.is_file())
    results = predictor.predict([str(p) for p in files])
    assert {r["label"] for r in results} <= {"blue", "green", "red"}
    assert all(len(r["top_k"]) == 3 for r in results)  # the default top_k (5) is capped at the model's 3 labels
    assert (out / "assets" / "labels.txt").read_text().split() == ["blue", "green", "red"]
    metrics = dlapps.evaluate("image-classification", out, image_folder)
    assert metrics["examples"] == 24
    assert len(metrics["confusion_matrix"]["matrix"]) == 3


def test_folder_with_one_class_is_refused(tmp_path, image_folder):
    for label in ("green", "blue"):
        for f in (image_folder / label).iterdir():
            f.unlink()
        (image_folder / label).rmdir()
    with pytest.raises(DataError, match="at least 2 classes.*received 1: 'red'"):
        dlapps.train("image-classification", image_folder, epochs=1, out=tmp_path / "m", verbose=0)


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "data" / "cats").mkdir(parents=True)
    (tmp_path / "data" / "cats" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no subfolder holding images"):
        dlapps.train("image-classification", tmp_path / "data", epochs=1, out=tmp_path / "m", verbose=0)
    with pytest.raises(DataError, match="does not exist"):
        dlapps.train("image-classification", tmp_path / "nowhere", epochs=1, out=tmp_path / "m", verbose=0)


def test_corrupt_file_in_training_folder_is_named(tmp_path, image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="broken.png"):
        dlapps.train("image-classification", image_folder, epochs=1, out=tmp_path / "m",
                     config=TINY_CONFIG, verbose=0)


def test_unknown_preset_is_a_clear_error(tmp_path):
    with pytest.raises(PresetError, match="received preset='no_such_preset_xyz'"):
        dlapps.train("image-classification", epochs=1, out=tmp_path / "m", preset="no_such_preset_xyz",
                     limit=20, verbose=0)


@pytest.fixture(scope="module")
def tiny_keras_hub_preset(tmp_path_factory):
    """A tiny ResNet backbone and image converter saved with KerasHub's save_to_preset."""
    import keras_hub

    folder = tmp_path_factory.mktemp("tiny_resnet_preset")
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        image_shape=(None, None, 3))
    backbone.save_to_preset(str(folder))
    converter = keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0)
    converter.save_to_preset(str(folder))
    return folder


def test_fine_tune_from_a_local_keras_hub_preset(tmp_path, tiny_keras_hub_preset):
    path = write_image(tmp_path / "inputs" / "blank.png", np.zeros((20, 30, 3), np.uint8))
    predictor = run_task_test(ImageClassification, tmp_path, preset=str(tiny_keras_hub_preset), limit=40,
                              ui_call=("/classify", [handle_file(str(path)), 2]))
    meta = json.loads((tmp_path / "model" / "task.json").read_text())
    assert meta["training"]["preset"] == str(tiny_keras_hub_preset)
    assert meta["config"]["image_size"] == 32  # taken from the preset's image converter
    # Grad-CAM reads the backbone's last feature map, the very map the head pools: the classifier's probabilities
    # are softmax(mean of those features . W + b), and the heatmap of a class is relu(features . its weights),
    # where a channel's weight is the mean gradient dp/dF = p_c (e_c - p) W^T / (h w), uniform over the grid.
    import keras

    from dlapps_plugins.image_classification.grad_cam import GradCam

    model = predictor.model
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    model_input, _ = predictor.task.preprocess(image, predictor.options({}))
    features = keras.Model(model.inputs, model.get_layer("gradcam_features").output)(model_input[None],
                                                                                      training=False)
    features = np.asarray(features, np.float64)[0]
    height, width, channels = features.shape
    assert (height, width, channels) == (4, 4, 16), "the last stage of the backbone: 16 filters, 1/8 of 32 pixels"
    kernel, bias = (np.asarray(w, np.float64) for w in model.get_layer("probabilities").get_weights())
    logits = features.mean((0, 1)) @ kernel + bias
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    labels = predictor.task.labels()
    served = predictor.predict(image, top_k=len(labels))["top_k"]  # what predict() answers, in the labels' order
    served = [next(t["score"] for t in served if t["label"] == label) for label in labels]
    np.testing.assert_allclose(served, probabilities, atol=1e-5)
    for label in range(kernel.shape[1]):
        weights = probabilities[label] * ((np.arange(kernel.shape[1]) == label) - probabilities) @ kernel.T
        cam = np.maximum(0.0, features @ (weights / (height * width)))
        expected = cam / cam.max() if cam.max() > 0 else cam
        heat = GradCam(model).heatmap(model_input, label)
        assert heat.shape == (height, width) and np.isfinite(heat).all()
        np.testing.assert_allclose(heat, expected, atol=1e-4, err_msg=f"label {label}")
    assert any(GradCam(model).heatmap(model_input, label).max() == 1.0 for label in range(kernel.shape[1]))


def brightness_model(size: int = 16):
    """A two-class model with a known answer: class "ink" scores the bright pixels, class "paper" the dark ones.

    Its Grad-CAM features are, per pixel, (brightness, 1 - brightness) and its logits their means times 4, so
    for a two-class softmax the class-activation map of "ink" is max(0, 2 * brightness - 1) up to a positive
    factor, and that of "paper" max(0, 1 - 2 * brightness).
    """
    import keras

    from dlapps_plugins.image_classification.cnn_classifier import GRADCAM_LAYER

    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[0, 0, :, 0], kernel[0, 0, :, 1] = 1.0 / 3, -1.0 / 3
    x = keras.layers.Conv2D(2, 1, kernel_initializer=keras.initializers.Constant(kernel),
                            bias_initializer=keras.initializers.Constant([0.0, 1.0]))(x)
    x = keras.layers.Identity(name=GRADCAM_LAYER)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", use_bias=False,
                                 kernel_initializer=keras.initializers.Constant(4.0 * np.eye(2)))(x)
    return keras.Model(inputs, outputs)


def test_grad_cam_lies_on_the_evidence_for_the_class():
    from dlapps_plugins.image_classification.grad_cam import GradCam

    image = np.zeros((16, 16, 3), np.uint8)
    image[3:13, 6:10] = 255   # a bar of ink
    image[3:5, 4:12] = 190    # a lighter top, still ink (brightness > 1/2)
    image[14:, :] = 64        # a dim line: darker than 1/2, so paper
    brightness = image.mean(axis=-1) / 255.0
    grad_cam = GradCam(brightness_model())

    ink = grad_cam.heatmap(image, 0)
    expected = np.maximum(0.0, 2 * brightness - 1)
    assert ink.shape == (16, 16) and ink.max() == 1.0
    np.testing.assert_allclose(ink, expected / expected.max(), atol=1e-5)
    assert np.all(ink[brightness <= 0.5] == 0) and np.all(ink[brightness > 0.5] > 0.3)

    paper = grad_cam.heatmap(image, 1)  # the other class: its map is the background, not the ink
    expected = np.maximum(0.0, 1 - 2 * brightness)
    assert paper.max() == 1.0
    np.testing.assert_allclose(paper, expected / expected.max(), atol=1e-5)
    assert np.all(paper[brightness > 0.5] == 0)

    assert np.all(grad_cam.heatmap(np.zeros((16, 16, 3), np.uint8), 0) == 0)  # no evidence: no heat, no NaN


def test_grad_cam_overlay_of_the_digits_model(digits_model, example_images):
    import cv2

    from dlapps.plugin import read_image
    from dlapps_plugins.image_classification.grad_cam import GradCam, overlay

    image = read_image(example_images[0])  # a raw 8x8 test digit
    options = digits_model.options({"top_k": 3})
    model_input, context = digits_model.task.preprocess(image, options)
    assert model_input.shape == (16, 16, 3) and context["original_size"] == (8, 8)
    predicted = digits_model.task.labels().index(digits_model.predict(image)["label"])
    heat = GradCam(digits_model.model).heatmap(model_input, predicted)
    assert heat.shape == (8, 8) and heat.max() == 1.0 and heat.min() >= 0.0  # the feature grid, normalised

    shown = overlay(image, heat)
    assert shown.shape == (256, 256, 3) and shown.dtype == np.uint8  # upscaled 32 times, so it stays visible
    plain = cv2.resize(image, (256, 256), interpolation=cv2.INTER_NEAREST).astype(int)
    cold = overlay(image, np.zeros_like(heat)).astype(int)
    # Each feature cell covers 32x32 overlay pixels; compare the middle of the hottest and of the coldest cell.
    hot_cell, cold_cell = np.unravel_index(heat.argmax(), heat.shape), np.unravel_index(heat.argmin(), heat.shape)
    hot_y, hot_x = (32 * c + 16 for c in hot_cell)
    cold_y, cold_x = (32 * c + 16 for c in cold_cell)
    red, blue = shown[..., 0].astype(int), shown[..., 2].astype(int)
    assert red[hot_y, hot_x] - blue[hot_y, hot_x] > 40, "the hottest cell is tinted red"
    assert blue[cold_y, cold_x] - red[cold_y, cold_x] > 40, "the coldest cell is tinted blue"
    assert np.abs(shown[hot_y, hot_x] - cold[hot_y, hot_x]).max() > 40, "the overlay differs where the heat is"
    # The digit shows through: where the heat is the same, ink stays brighter than paper.
    ink, paper = plain[..., 0] > 127, plain[..., 0] < 64
    assert cold[ink].mean() > cold[paper].mean() + 60


def test_dark_background_layer_reads_either_polarity():
    from dlapps_plugins.image_classification.cnn_classifier import build_cnn

    config = {"image_size": 12, "labels": ["a", "b", "c"], "filters": [4, 8], "dropout": 0.0}
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 12, 12, 3)).astype(np.uint8)
    images[:3, [0, -1]] = 10  # light-on-dark: a dark border
    images[:3, :, [0, -1]] = 10
    images[3:, [0, -1]] = 240  # dark-on-light: a light border
    images[3:, :, [0, -1]] = 240
    either = build_cnn({**config, "dark_background": True})
    np.testing.assert_allclose(either(images), either(255 - images), atol=1e-6)
    plain = build_cnn(config)  # without the layer the two polarities are different inputs
    assert not np.allclose(plain(images), plain(255 - images), atol=1e-6)


def _tiny_shape_folder(root: Path, per_class: int = 60, size: int = 28) -> Path:
    """Three classes of dark shapes on light backgrounds (varied grey, colour, size and position), 28x28."""
    import cv2

    rng = np.random.default_rng(7)
    for name in ("circle", "square", "triangle"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = np.full((size, size, 3), int(rng.integers(180, 256)), np.uint8)
            colour = tuple(int(v) for v in rng.integers(0, 90, 3))
            r = int(rng.integers(size // 5, size // 3))
            cx, cy = (int(v) for v in rng.integers(r + 1, size - r - 1, 2))
            if name == "circle":
                cv2.circle(image, (cx, cy), r, colour, -1)
            elif name == "square":
                cv2.rectangle(image, (cx - r, cy - r), (cx + r, cy + r), colour, -1)
            else:
                cv2.fillPoly(image, [np.array([[cx, cy - r], [cx - r, cy + r], [cx + r, cy + r]], np.int32)], colour)
            write_image(root / name / f"{i}.png", image)
    return root


@pytest.mark.slow
def test_tiny_folder_trains_well_with_the_defaults(tmp_path):
    """126 training images, 2 steps an epoch at the default batch of 64: patience counted in epochs used to halve
    the learning rate and stop training while validation still sat at chance (BatchNorm's statistics lagging).
    Every setting is the plan's but the steps: 600 instead of its floor of 2,000, a third of the time (the plan's
    own figures on harder folders are in benchmarks/: python benchmarks/run.py --only user-data)."""
    folder = _tiny_shape_folder(tmp_path / "shapes")
    predictor = dlapps.train("image-classification", folder, out=tmp_path / "m", config={"steps": 600},
                             verbose=0)
    assert predictor.meta["data"]["sizes"]["train"] == 126
    assert predictor.metrics["accuracy"] >= 0.9, predictor.metrics
    assert predictor.metrics["baseline_check"]["better"]


def _user_like_folder(folder, **spec):
    """A folder as users bring them (benchmarks/user_data.py): random colours on noisy, gradient and cluttered
    backgrounds, many sizes, formats and colour modes."""
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from user_data import write_image_folder

    return write_image_folder(folder, **spec)


def test_the_plan_follows_a_user_folder(tmp_path, image_folder):
    from dlapps.plugin import Recipe
    from dlapps_plugins.image_classification.image_recipe import plan_images

    def plan(folder, user=()):
        task = ImageClassification()
        dataset = task.load_data(str(folder))
        task.config.update(dataset.config)
        recipe = Recipe(task.config, user=user, given=dataset.config)
        plan_images(task, dataset, recipe)
        return task.config, {c.key: c.why for c in recipe.choices.values()}

    # Shapes in random colours, 60-120 px, imbalanced: colour says nothing, so it is jittered; a small input.
    shapes = _user_like_folder(tmp_path / "user-shapes", classes=3, per_class=(20, 60), sizes=(60, 120), seed=4)
    config, why = plan(shapes)
    assert config["colour_jitter"] is True and "says nothing about the class" in why["colour_jitter"], why["colour_jitter"]
    assert config["image_size"] == 32 and config["filters"] == [32, 64, 128, 256, 256]
    weights = config["class_weights"]
    counts = np.bincount(ImageClassification().load_data(str(shapes)).train.targets)
    assert list(np.argsort(weights)) == list(np.argsort(-counts)) and len(set(counts)) == 3  # the rarest weighs most
    assert np.isclose(sum(w * c for w, c in zip(weights, counts)), counts.sum(), rtol=0.01)
    assert config["rotation"] == 0.5 and config["flip"] == "both"  # shapes at any angle
    # Classes that are colours (red, green, blue): colour is kept, and the classes are balanced.
    config, why = plan(image_folder)
    assert config["colour_jitter"] is False and "tells the classes apart" in why["colour_jitter"]
    assert config["class_weights"] is None and config["image_size"] == 32  # short sides 20-90 px: 32 for small data
    # What the user sets stays.
    config, why = plan(shapes, user={"colour_jitter", "image_size"})
    assert why["colour_jitter"] == why["image_size"] == "set by you"


def test_a_user_like_folder_trains_from_the_cli_against_both_baselines(tmp_path, capsys):
    """The plan, the classical baseline and the checks end to end from ``dlapps train``, on a folder of colour
    classes (a few hundred steps learn them; shapes in random colours need the full plan: benchmarks/)."""
    from dlapps.cli import main

    folder = tmp_path / "colours"
    rng = np.random.default_rng(1)
    for label, colour in (("orange", (240, 140, 20)), ("teal", (20, 150, 150))):
        for i in range(16):
            size = int(rng.integers(40, 120))
            pixels = np.clip(rng.normal(rng.uniform(60, 200), 20, (size, size, 3)), 0, 255).astype(np.uint8)
            r = size // 4
            pixels[r:3 * r, r:3 * r] = colour
            write_image(folder / label / f"{i}.png", pixels)
    out = tmp_path / "model"
    assert main(["train", "image-classification", "--data", str(folder), "--out", str(out),
                 "--set", "steps=120", "--time-budget", "300"]) == 0
    printed = capsys.readouterr()
    assert "training plan, from the data" in printed.err and "steps=120: set by you" in printed.err
    assert "classical baseline (logistic regression" in printed.out
    assert "against the classical baseline" in printed.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.8 and metrics["macro_f1"] > 0.5
    kinds = {c["kind"]: c for c in metrics["baseline_checks"]}
    assert set(kinds) == {"trivial", "classical"}
    assert kinds["classical"]["baseline"] == metrics["classical_accuracy"] > 0.5
    assert (out / "assets" / "classical_baseline.npz").is_file()
    # dlapps eval scores the saved classical model again, on other data too.
    again = dlapps.evaluate("image-classification", out, folder)
    assert again["classical_accuracy"] >= 0.9 and again["examples"] == 32
    plan = {c["key"]: c["value"] for c in json.loads((out / "task.json").read_text())["training"]["recipe"]["choices"]}
    assert plan["colour_jitter"] is False and plan["time_budget"] == 300


def test_clearing_the_image_clears_the_answer(digits_model, example_images):
    """A cleared image leaves no label or heatmap of a picture that is no longer there (the handler behind the
    image's change event, called as Gradio calls it); a new one is classified with the top-k asked for."""
    from dlapps.ui import task_blocks

    blocks = task_blocks("image-classification", digits_model)
    handler = next(f.fn for f in blocks.fns.values() if f.name == "classify_if_any")
    assert handler(None, 3) == (None, None, "")
    shown, heatmap, _ = handler(str(example_images[0]), 2)
    assert len(shown) == 2 and heatmap is not None
