"""The image-classification plugin through the shared harness, user folders and presets."""

import json

import numpy as np
import pytest
from PIL import Image

import dlapps
from conftest import TINY_CONFIG
from dlapps.errors import DataError, InvalidInputError, PresetError
from dlapps.testing import run_task_test
from dlapps_plugins.image_classification import ImageClassification


def test_contract_on_digits(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    predictor = run_task_test(
        ImageClassification, tmp_path, config=TINY_CONFIG,
        examples=[rgb, rgb[..., 0], Image.fromarray(rgb)],
        bad_inputs=[(tmp_path / "missing.png", InvalidInputError), ({"x": 1}, InvalidInputError),
                    (np.zeros((2, 2, 2, 2, 2)), InvalidInputError)],
    )
    result = predictor.predict(rgb)
    assert result["label"] in [str(d) for d in range(10)]
    assert 0.0 <= result["score"] <= 1.0
    assert len(result["top_k"]) == 5
    assert sum(t["score"] for t in result["top_k"]) <= 1.0 + 1e-6


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
    predictor = run_task_test(ImageClassification, tmp_path, preset=str(tiny_keras_hub_preset), limit=40)
    meta = json.loads((tmp_path / "model" / "task.json").read_text())
    assert meta["training"]["preset"] == str(tiny_keras_hub_preset)
    assert meta["config"]["image_size"] == 32  # taken from the preset's image converter
    assert predictor.model.get_layer("gradcam_features") is not None


def test_grad_cam_highlights_a_region(digits_model, example_images):
    from dlapps.inputs import read_image
    from dlapps_plugins.image_classification.grad_cam import GradCam, overlay

    image = read_image(example_images[0])
    heat = GradCam(digits_model.model).heatmap(digits_model.task.preprocess(image), 0)
    assert heat.ndim == 2 and 0.0 <= heat.min() and heat.max() <= 1.0
    shown = overlay(image, heat)
    assert shown.shape[0] >= 256 and shown.dtype == np.uint8
