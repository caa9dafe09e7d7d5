"""dlapps export: each format, loaded with its own runtime, gives what `dlapps predict` gives on the same inputs."""

import json

import numpy as np
import pytest

from dlapps.cli import main
from dlapps.errors import ExportError
from dlapps.export import export

#: Image sizes that take every path of the in-graph resize to the digits model's 16 x 16: bilinear enlarging
#: (the 8 x 8 digits themselves), none, a 2 x 2 and a 4 x 2 whole-number shrink, a shrink by area weights, and
#: OpenCV's area filter with one side growing.
IMAGE_SIZES = [(8, 8), (16, 16), (32, 32), (64, 32), (45, 29), (13, 40)]


def run_export(folder, images: np.ndarray) -> dict:
    """The exported model in ``folder`` run by its own runtime on a uint8 batch: {output name: array}."""
    signature = json.loads((folder / "signature.json").read_text())
    if signature["format"] == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
        return {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}
    if signature["format"] == "litert":
        import tensorflow as tf

        return _litert(folder)(images=images)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": images})))


def _pictures(sizes, seed=0) -> list:
    """Smooth random RGB pictures (gradients and blobs, like photos, unlike pixel noise) of the given sizes."""
    rng = np.random.default_rng(seed)
    pictures = []
    for height, width in sizes:
        y, x = np.mgrid[0:height, 0:width] / max(height, width)
        channels = [np.sin(rng.uniform(2, 9) * x + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 9) * y) for _ in range(3)]
        pictures.append(np.clip(np.stack(channels, -1) * 120 + 128 + rng.normal(0, 12, (height, width, 3)), 0, 255)
                        .astype(np.uint8))
    return pictures


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_image_classifier_export_matches_predict(digits_model, example_images, tmp_path, fmt):
    from PIL import Image

    pictures = [np.asarray(Image.open(p).convert("RGB")) for p in example_images[:3]] + _pictures(IMAGE_SIZES)
    if fmt == "saved_model":  # the command line, as a user runs it
        assert main(["export", "image-classification", "--format", fmt, "--out", str(tmp_path / "export")]) == 0
        folder = tmp_path / "export"
    else:
        folder = export("image-classification", format=fmt, out=tmp_path / "export")
    signature = json.loads((folder / "signature.json").read_text())
    labels = (folder / "assets" / "labels.txt").read_text().split()
    assert labels == digits_model.task.labels() and signature["inputs"][0]["shape"] == [None, None, None, 3]
    assert (folder / "README.md").is_file() and (folder / "task.json").is_file()
    expected = digits_model.predict(list(pictures), top_k=len(labels))
    for picture, result in zip(pictures, expected):
        probabilities = run_export(folder, picture[None])["probabilities"][0]
        assert labels[int(np.argmax(probabilities))] == result["label"], picture.shape
        want = np.array([next(t["score"] for t in result["top_k"] if t["label"] == label) for label in labels])
        np.testing.assert_allclose(probabilities, want, atol=1e-4, err_msg=str(picture.shape))
    batch = np.stack([p for p in pictures if p.shape == pictures[-1].shape] * 2)  # a batch of several images
    assert run_export(folder, batch)["probabilities"].shape == (2, len(labels))


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", "litert", "onnx"])
def test_detector_export_matches_predict_records(detection_model, tmp_path, fmt):
    from dlapps_plugins.object_detection.generated_scenes import draw_scene

    rng = np.random.default_rng(4)
    pictures = [draw_scene(rng)[0] for _ in range(2)] + _pictures([(40, 56), (64, 64)])  # shrunk, enlarged, kept
    options = {"conf": 0.0, "iou": 0.5, "max_detections": 15}  # the tiny test model's scores are low
    folder = export("object-detection", format=fmt, out=tmp_path / "export", **options)
    labels = (folder / "assets" / "labels.txt").read_text().split()
    assert json.loads((folder / "signature.json").read_text())["options"]["conf"] == 0.0
    records = detection_model.predict(list(pictures), draw=False, **options)
    for picture, record in zip(pictures, records):
        out = run_export(folder, picture[None])
        count = int(out["count"][0])
        assert count == len(record["detections"]) > 0, picture.shape
        for i, detection in enumerate(record["detections"]):
            assert labels[int(out["classes"][0][i])] == detection["label"], (picture.shape, i)
            assert abs(float(out["scores"][0][i]) - detection["score"]) <= 1e-4
            np.testing.assert_allclose(out["boxes"][0][i], detection["box"], atol=2e-3)
        assert (out["classes"][0][count:] == -1).all() and not out["scores"][0][count:].any()


@pytest.mark.slow
def test_recommender_export_ranks_as_predict(recommendation_model, tmp_path):
    task = recommendation_model.task
    folder = export("recommendation", format="litert", out=tmp_path / "export", k=5)
    runner = _litert(folder)
    catalogue = task.knowledge.catalogue.ids
    for user in task.knowledge.known.users[:4].tolist():
        model_input, _ = task.preprocess(user, task.default_options())
        out = runner(user=model_input["user"][None], history=model_input["history"][None],
                     seen=model_input["seen"][None])
        result = recommendation_model.predict(user, k=5)
        assert [int(catalogue[i - 1]) for i in out["items"][0]] == [item["item"] for item in result["items"]]
        np.testing.assert_allclose(out["scores"][0], [item["score"] for item in result["items"]], atol=1e-4)


@pytest.mark.slow
def test_speech_export_is_the_network_with_its_features_documented(speech_model, tmp_path):
    import tensorflow as tf

    folder = export("speech-recognition", format="saved_model", out=tmp_path / "export")
    signature = json.loads((folder / "signature.json").read_text())
    assert signature["inputs"][0]["name"] == "waveform" and "16000 Hz" in signature["inputs"][0]["description"]
    assert "CTC decoding" in signature["outside"] and "log-mel" in signature["inside"]
    waveform = np.sin(np.arange(16000, dtype=np.float32) * 0.05)[None] * 0.3
    serve = tf.saved_model.load(str(folder / "saved_model")).signatures["serve"]
    [logits] = serve(waveform=tf.constant(waveform)).values()
    np.testing.assert_allclose(logits.numpy(), np.asarray(speech_model.model(waveform)), atol=1e-4)


def _litert(folder):
    import tensorflow as tf

    return tf.lite.Interpreter(str(folder / "model.tflite")).get_signature_runner("serve")


def test_export_errors_say_what_was_expected(digits_model, tmp_path, monkeypatch, capsys):
    with pytest.raises(ExportError, match="expected format to be one of saved_model, litert, onnx, received 'tf'"):
        export("image-classification", format="tf", out=tmp_path / "x")
    assert main(["export", "image-classification", "--format", "saved_model", "--out", str(tmp_path / "x"),
                 "--model", str(tmp_path / "none")]) == 2
    assert "no trained 'image-classification' model" in capsys.readouterr().err

    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "tf2onnx" else find_spec(name, *args))
    with pytest.raises(ExportError, match=r'needs tf2onnx.*pip install -e "\.\[onnx\]"'):
        export("image-classification", format="onnx", out=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="expected --out to be a new folder or a previous export"):
        export("image-classification", out=tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_a_model_without_inputs_cannot_be_exported_and_says_why():
    import keras

    from dlapps.task import Task

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ExportError, match="cannot be exported: its model \\(Subclassed\\) declares no inputs"):
        Task().export_graph(Subclassed(), {})


def test_resize_graph_is_opencv_pixel_for_pixel():
    import cv2

    from dlapps.image_graph import cv2_resize_graph

    rng = np.random.default_rng(1)
    # 72 x 106 -> 80 x 64: OpenCV's area filter with a side growing, where its double maths floor rows lower
    drawn = [(tuple(rng.integers(1, 160, 2)), tuple(rng.integers(1, 70, 2))) for _ in range(24)]
    cases = [((72, 106), (80, 64)), *drawn]
    for (height, width), (new_h, new_w) in cases:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for area in (True, False):
            flag = cv2.INTER_AREA if area else cv2.INTER_LINEAR
            want = cv2.resize(image, (int(new_w), int(new_h)), interpolation=flag)
            got = cv2_resize_graph(image[None], int(new_h), int(new_w), area)[0].numpy()
            np.testing.assert_array_equal(got, want, err_msg=f"{image.shape} -> {(new_h, new_w)}, area={area}")
