"""The object-detection plugin: the shared harness, the three dataset formats, boxes in original pixels,
options, COCO results, video, presets and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gradio_client import handle_file

import dlapps
from conftest import TINY_DETECTION_CONFIG, write_coco_folder, write_image
from dlapps.errors import DataError, InvalidInputError, PresetError
from dlapps.testing import gradio_client, run_task_test
from dlapps_plugins.object_detection import ObjectDetection
from dlapps_plugins.object_detection.detection_data import detection_dataset
from dlapps_plugins.object_detection.generated_scenes import CLASSES, draw_scene, write_scenes


def test_contract_on_a_coco_folder(tmp_path, capsys):
    data = write_coco_folder(tmp_path / "coco", count=20)
    picture = str(data / "images" / "0005.png")
    predictor = run_task_test(
        ObjectDetection, tmp_path, config=TINY_DETECTION_CONFIG, data=data,
        inputs=[picture, str(data / "images" / "0002.png"), _scene(7)],
        options={"conf": 0.0, "max_detections": 30},
        bad_inputs=[(str(tmp_path / "missing.png"), InvalidInputError), (_text_file(tmp_path), InvalidInputError),
                    ({"image": 1}, InvalidInputError)],
        ui_call=("/detect", [handle_file(picture), 0.0, 0.5, 30, []]),
    )
    assert "1 box(es) reaching outside their image were clipped" in capsys.readouterr().err
    result = predictor.predict(picture, conf=0.0, max_detections=30)
    assert set(result) == {"width", "height", "detections", "image", "in_distribution", "out_of_domain"}
    assert 1 <= len(result["detections"]) <= 30  # boxes wholly in the letterbox margin are left out
    assert all(d["label"] in CLASSES and 0 <= d["score"] <= 1 for d in result["detections"])
    assert result["image"].shape[2] == 3 and min(result["image"].shape[:2]) >= 384  # drawn, scaled up to be read
    assert "image" not in predictor.predict(picture, draw=False)
    # What the model knows is kept: the data's own category ids (not contiguous), and labels.txt for people.
    meta = json.loads((tmp_path / "model" / "task.json").read_text())
    assert meta["config"]["category_ids"] == [10, 20, 30, 40, 50]
    assert (tmp_path / "model" / "assets" / "labels.txt").read_text().split() == list(CLASSES)
    examples = [Path(p).stem for p in predictor.examples()]
    assert examples and all(part in CLASSES or part in ("no", "objects") for e in examples
                            for part in e.split("_")[1:])
    assert not examples[0].endswith("no_objects"), "the first example shows objects; an empty scene comes last"


def test_coco_reader(tmp_path, capsys):
    data = detection_dataset(write_coco_folder(tmp_path / "coco", count=20))
    assert data.config == {"labels": list(CLASSES), "category_ids": [10, 20, 30, 40, 50]}
    assert (len(data.train), len(data.validation), len(data.test)) == (16, 2, 2)
    report = capsys.readouterr().err
    assert "1 box(es) reaching outside their image were clipped to it and 1 box(es) of zero area" in report
    targets = {Path(p).name: t for split in (data.train, data.validation, data.test)
               for p, t in zip(split.inputs, split.targets)}
    empty = targets["0001.png"]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    clipped = targets["0002.png"]
    width = json.loads((tmp_path / "coco" / "annotations.json").read_text())["images"][1]["width"]
    assert [width - 10, 5, width, 25] in clipped["boxes"].tolist()  # clipped at the right edge
    assert not any(b[0] >= width for b in clipped["boxes"].tolist())  # the box outside was dropped
    crowd = targets["0003.png"]
    assert crowd["crowd"].tolist().count(True) == 1
    assert crowd["labels"][crowd["crowd"]].tolist() == [2]  # category 30 is the third class
    # Crowd regions are not trained on; an image without boxes trains as background (one padding row).
    task = ObjectDetection({**TINY_DETECTION_CONFIG, **data.config})
    path = next(p for p in data.train.inputs + data.validation.inputs + data.test.inputs if p.endswith("0003.png"))
    _, target = task.training_example(path, crowd)
    assert len(target["labels"]) == int((~crowd["crowd"]).sum())
    _, target = task.training_example(next(p for p in [*data.train.inputs, *data.validation.inputs,
                                                       *data.test.inputs] if p.endswith("0001.png")), empty)
    assert target["labels"].tolist() == [-1] and target["boxes"].tolist() == [[-1, -1, -1, -1]]


def test_coco_split_files_and_image_folders(tmp_path):
    folder = write_scenes(tmp_path / "scenes", {"train": 6, "validation": 3, "test": 3})
    data = detection_dataset(folder)
    assert (len(data.train), len(data.validation), len(data.test)) == (6, 3, 3)
    assert all("/images/test/" in p for p in data.test.inputs)
    again = write_scenes(tmp_path / "again", {"train": 6, "validation": 3, "test": 3})
    assert (again / "annotations" / "instances_test.json").read_bytes() == \
        (folder / "annotations" / "instances_test.json").read_bytes()  # deterministic
    assert (again / "images" / "train" / "000004.png").read_bytes() == \
        (folder / "images" / "train" / "000004.png").read_bytes()


def test_yolo_folder(tmp_path, capsys):
    root = tmp_path / "yolo"
    for split, count in (("train", 6), ("val", 3), ("test", 3)):
        for i in range(count):
            image, objects = draw_scene(np.random.default_rng([5, i, len(split)]))
            write_image(root / "images" / split / f"{split}{i}.jpg", image)
            if i == 0:
                continue  # no label file: an image without objects
            height, width = image.shape[:2]
            lines = [f"{label} {(x0 + x1) / 2 / width} {(y0 + y1) / 2 / height} {(x1 - x0) / width} "
                     f"{(y1 - y0) / height}" for label, (x0, y0, x1, y1) in objects]
            if split == "train" and i == 1:
                lines.append("seven 0.5 0.5 0.1 0.1")  # malformed: reported and skipped
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{split}{i}.txt").write_text("\n".join(lines) + "\n")
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names:\n" + "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASSES)))
    data = detection_dataset(root)
    assert "yolo_data" not in data.description and "YOLO folder" in data.description
    assert data.config["labels"] == list(CLASSES)
    assert (len(data.train), len(data.validation), len(data.test)) == (6, 3, 3)
    assert "train1.txt:" in capsys.readouterr().err
    image, objects = draw_scene(np.random.default_rng([5, 2, len("val")]))
    index = data.validation.inputs.index(str(root / "images" / "val" / "val2.jpg"))
    expected = np.array([box for _, box in objects], np.float32)
    assert np.allclose(data.validation.targets[index]["boxes"], expected, atol=0.01)
    assert data.validation.targets[index]["labels"].tolist() == [label for label, _ in objects]
    assert data.train.targets[data.train.inputs.index(str(root / "images" / "train" / "train0.jpg"))][
        "boxes"].shape == (0, 4)
    (root / "data.yaml").unlink()
    with pytest.raises(DataError, match="data.yaml .* or classes.txt"):
        detection_dataset(root)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    assert detection_dataset(root).config["labels"] == list(CLASSES)


def test_pascal_voc_folder(tmp_path):
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    for i in range(10):
        image, objects = draw_scene(np.random.default_rng([9, i]))
        write_image(root / "JPEGImages" / f"img{i}.jpg", image)
        objects_xml = "".join(
            f"<object><name>{CLASSES[label]}</name><difficult>{int(i == 3 and k == 0)}</difficult><bndbox>"
            f"<xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            for k, (label, (x0, y0, x1, y1)) in enumerate(objects))
        (root / "Annotations" / f"img{i}.xml").write_text(
            f"<annotation><filename>img{i}.jpg</filename><size><width>{image.shape[1]}</width>"
            f"<height>{image.shape[0]}</height><depth>3</depth></size>{objects_xml}</annotation>")
    data = detection_dataset(root)
    assert "Pascal VOC" in data.description
    everything = {Path(p).stem: t for split in (data.train, data.validation, data.test)
                  for p, t in zip(split.inputs, split.targets)}
    assert len(everything) == 10
    _, objects = draw_scene(np.random.default_rng([9, 3]))
    assert np.allclose(everything["img3"]["boxes"], [box for _, box in objects])  # 1-based pixels converted
    assert everything["img3"]["crowd"].tolist()[:1] == [True]  # difficult: ignored, as VOC's evaluation does
    assert data.config["labels"] == sorted({CLASSES[label] for i in range(10)
                                            for label, _ in draw_scene(np.random.default_rng([9, i]))[1]})


def test_unrecognised_folders_say_what_was_expected(tmp_path):
    images_only = tmp_path / "photos"
    write_image(images_only / "a.png", _scene(1))
    with pytest.raises(DataError, match="expected a COCO folder.*YOLO folder.*Pascal VOC.*holds a.png"):
        detection_dataset(images_only)
    with pytest.raises(DataError, match="does not exist"):
        detection_dataset(tmp_path / "nowhere")
    coco = write_coco_folder(tmp_path / "coco", count=6)
    broken = json.loads((coco / "annotations.json").read_text())
    del broken["annotations"]
    (coco / "annotations.json").write_text(json.dumps(broken))
    with pytest.raises(DataError, match="lacks 'annotations'"):
        detection_dataset(coco)
    voc = tmp_path / "voc"
    (voc / "Annotations").mkdir(parents=True)
    with pytest.raises(DataError, match="no JPEGImages/ folder"):
        detection_dataset(voc)


def test_boxes_come_back_in_original_pixels(detection_model, tmp_path):
    """A known rectangle, found in the model's letterboxed square, maps back to where it is in the original:
    for an image the task shrinks and for one over 2048 px that the core decodes at a reduced scale."""
    task = detection_model.task
    for width, height, suffix in ((300, 200, ".png"), (4000, 3000, ".jpg")):
        image = np.full((height, width, 3), 40, np.uint8)
        x0, y0, x1, y1 = int(width * 0.3), int(height * 0.4), int(width * 0.55), int(height * 0.9)
        image[y0:y1, x0:x1] = 230
        path = write_image(tmp_path / f"big{width}{suffix}", image)
        options = detection_model.options({"conf": 0.0})
        square, context = task.preprocess(str(path), options)
        assert context["original_size"] == (width, height)
        if width > 2048:
            assert context["image"].shape[1] < width  # decoded at a reduced scale by the core
        ys, xs = np.nonzero(square[..., 0] > 135)
        found = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float32)
        output = {"boxes": found, "scores": np.array([0.9]), "classes": np.array([0]), "count": 1}
        box = task.postprocess(output, context, options)["detections"][0]["box"]
        tolerance = 1.5 * width / task.config["image_size"]  # a pixel of the square, in original pixels
        assert np.allclose(box, [x0, y0, x1, y1], atol=tolerance), (box, [x0, y0, x1, y1])
        result = detection_model.predict(str(path), conf=0.0, max_detections=20)
        assert (result["width"], result["height"]) == (width, height)
        boxes = np.array([d["box"] for d in result["detections"]])
        assert len(boxes) and boxes[:, [0, 2]].max() <= width and boxes[:, [1, 3]].max() <= height


def test_options_filter_detections(detection_model, tmp_path):
    picture = str(write_image(tmp_path / "square.png", _scene(5, (128, 128))))  # no letterbox margin to clip to
    every = detection_model.predict(picture, conf=0.0, iou=1.0, max_detections=1000, draw=False)["detections"]
    assert len(every) > 20
    scores = [d["score"] for d in every]
    assert scores == sorted(scores, reverse=True)
    top = detection_model.predict(picture, conf=0.0, iou=1.0, max_detections=3, draw=False)["detections"]
    # boxes left without area by the image's edge are no candidates, so they never take one of the 3 places
    assert sorted(d["score"] for d in top) == sorted(scores[:3])
    distinct = sorted(set(scores))
    assert len(distinct) > 1
    cut = distinct[len(distinct) // 2]
    kept = detection_model.predict(picture, conf=float(cut), iou=1.0, max_detections=1000, draw=False)["detections"]
    assert kept and all(d["score"] >= cut for d in kept) and len(kept) < len(every)
    suppressed = detection_model.predict(picture, conf=0.0, iou=0.1, max_detections=1000, draw=False)["detections"]
    assert len(suppressed) < len(every)
    assert all(_iou(a["box"], b["box"]) <= 0.1 + 1e-3 for a in suppressed for b in suppressed
               if a is not b and a["label"] == b["label"])
    unfiltered = detection_model.predict(picture, conf=0.0, max_detections=1000, draw=False)["detections"]
    assert len(unfiltered) < 1000  # nothing cut by max_detections: the filter keeps exactly these classes' boxes
    present = sorted({d["label"] for d in unfiltered})
    chosen = present[:max(1, len(present) - 1)]  # leave a class out when the model found several
    only = detection_model.predict(picture, conf=0.0, classes=", ".join(chosen), max_detections=1000,
                                   draw=False)["detections"]
    assert only and {d["label"] for d in only} <= set(chosen)
    key = (lambda d: (d["label"], d["score"], tuple(d["box"])))
    assert sorted(only, key=key) == sorted((d for d in unfiltered if d["label"] in chosen), key=key)
    with pytest.raises(InvalidInputError, match="expected classes to be class names of the model.*'dog' is not one"):
        detection_model.predict(picture, classes="circle,dog")
    with pytest.raises(InvalidInputError, match="expected conf to be a number from 0 to 1"):
        detection_model.predict(picture, conf=1.5)


def test_cli_coco_results_load_in_pycocotools_and_bad_rows(detection_model, detection_folder, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for image in sorted((detection_folder / "images").iterdir())[:6]:
        (inputs / image.name).write_bytes(image.read_bytes())
    (inputs / "0099.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out = tmp_path / "out.jsonl"
    run = _dlapps("predict", "object-detection", str(inputs), "--model", str(detection_model.model_dir),
                  "--output", str(out), "--output-dir", str(tmp_path / "drawn"), "--conf", "0", "--max-detections", "5",
                  "--format", "coco", "--no-progress")
    assert run.returncode == 0, run.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 7
    bad = [r for r in records if "error" in r]
    assert len(bad) == 1 and bad[0]["input"].endswith("0099.jpg") and bad[0]["error_type"] == "InvalidInputError"
    good = [r for r in records if "error" not in r]
    assert all((out.parent / r["image"]).is_file() for r in good)  # each image drawn under --output-dir
    assert all(str(tmp_path / "drawn") in str((out.parent / r["image"]).resolve()) for r in good)
    results = tmp_path / "out.coco.json"
    gt = COCO(str(detection_folder / "annotations.json"))
    ids = {i["file_name"]: i["id"] for i in gt.dataset["images"]}
    entries = json.loads(results.read_text())
    assert entries and {e["image_id"] for e in entries} <= {int(Path(r["input"]).stem) for r in good}
    # The image ids are the file names' numbers; map them onto this ground truth's ids and evaluate.
    for entry in entries:
        entry["image_id"] = ids[Path(entry["file_name"]).name]
    detections = gt.loadRes(entries)
    evaluation = COCOeval(gt, detections, "bbox")
    evaluation.params.imgIds = sorted({e["image_id"] for e in entries})
    evaluation.evaluate()
    evaluation.accumulate()
    assert {e["category_id"] for e in entries} <= {10, 20, 30, 40, 50}
    numbered = COCO()  # a ground truth whose image ids are the file names' numbers takes the file as it is
    numbered.dataset = {"images": [{"id": int(Path(r["input"]).stem)} for r in good],
                        "categories": gt.dataset["categories"], "annotations": []}
    numbered.createIndex()
    assert len(numbered.loadRes(str(results)).getAnnIds()) == len(entries)

    unknown = _dlapps("predict", "object-detection", str(inputs), "--model", str(detection_model.model_dir),
                      "--classes", "dog")
    assert unknown.returncode == 2 and "'dog' is not one" in unknown.stderr
    wrong = _dlapps("predict", "object-detection", str(inputs), "--model", str(detection_model.model_dir),
                    "--format", "voc", "--output", str(tmp_path / "x.jsonl"))
    assert wrong.returncode == 2 and "expected --format to be one of: 'coco'" in wrong.stderr

    evaluated = _dlapps("eval", "object-detection", "--model", str(detection_model.model_dir), "--data",
                        str(detection_folder), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert {"map", "map_50", "map_75", "per_class", "baseline_map_50"} <= set(metrics)
    assert set(metrics["per_class"]) == set(CLASSES) and metrics["images"] == 24


def _write_clip(path: Path, frames: int = 10) -> Path:
    """A 160 x 120 MP4 of ``frames`` generated scenes at 10 frames a second."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (160, 120))
    for i in range(frames):
        writer.write(np.ascontiguousarray(_scene(i, (120, 160))[..., ::-1]))
    writer.release()
    return path


def test_video_input(detection_model, tmp_path):
    import cv2

    from dlapps.batch import collect_inputs, run_batch

    folder = tmp_path / "clips"
    folder.mkdir()
    video = _write_clip(folder / "clip.mp4")
    write_image(folder / "still.png", _scene(3))
    result = detection_model.predict(str(video), conf=0.0, max_detections=10)
    assert (result["width"], result["height"], result["frame_count"]) == (160, 120, 10)
    assert [f["frame"] for f in result["frames"]] == list(range(10))
    assert [f["time"] for f in result["frames"]][:3] == [0.0, 0.1, 0.2]
    assert all(len(f["detections"]) <= 10 for f in result["frames"]) and any(f["detections"] for f in result["frames"])
    assert all(b["box"][2] <= 160 and b["box"][3] <= 120 for f in result["frames"] for b in f["detections"])
    annotated = tmp_path / "annotated.mp4"
    result["video"].save(annotated)
    capture = cv2.VideoCapture(str(annotated))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 10
    capture.release()
    stepped = detection_model.predict(str(video), conf=0.0, frame_step=4, draw=False)
    assert [f["frame"] for f in stepped["frames"]] == [0, 4, 8] and "video" not in stepped
    # The batch runner finds videos in folders and writes the annotated video under --output-dir.
    items = collect_inputs(detection_model.task, [str(folder)])
    assert sorted(Path(i).name for i, _ in items) == ["clip.mp4", "still.png"]
    out = tmp_path / "videos.jsonl"
    summary = run_batch(detection_model, items, out, progress=False, options={"conf": 0.0},
                        output_dir=tmp_path / "files")
    assert summary.succeeded == 2
    record = next(json.loads(line) for line in out.read_text().splitlines() if "clip.mp4" in line)
    assert record["video"].endswith(".mp4") and (out.parent / record["video"]).stat().st_size > 1000
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InvalidInputError, match="that OpenCV can decode"):
        detection_model.predict(str(bad))


def test_video_tab_through_the_gradio_client(detection_model, tmp_path):
    import cv2

    from dlapps.ui import task_blocks

    video = _write_clip(tmp_path / "clip.mp4")
    iou = detection_model.task.predict_options["iou"].default
    expected = detection_model.predict(str(video), conf=0.0, iou=iou, max_detections=10, frame_step=2, draw=False)
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    with gradio_client(task_blocks("object-detection", detection_model)) as client:
        shown, table, status = client.predict(handle_file(str(video)), 0.0, iou, 10, [], 2,
                                              api_name="/detect_video")
        _, empty, nothing = client.predict(handle_file(str(video)), 1.0, iou, 10, [], 1,
                                           api_name="/detect_video")
        with pytest.raises(Exception, match="OpenCV can decode"):
            client.predict(handle_file(str(bad)), 0.0, iou, 10, [], 1, api_name="/detect_video")
        # The image tab: the file reaches dlapps' decoder (a broken one is its message, not Gradio's).
        picture = tmp_path / "scene.png"
        cv2.imwrite(str(picture), _scene(2, (128, 128))[..., ::-1])
        _, found, _ = client.predict(handle_file(str(picture)), 0.0, iou, 10, [], api_name="/detect")
        assert found["data"] == [[d["label"], d["score"], *d["box"]] for d in detection_model.predict(
            str(picture), conf=0.0, iou=iou, max_detections=10, draw=False)["detections"]]
        broken = tmp_path / "broken.png"
        broken.write_text("not an image")
        with pytest.raises(Exception, match="expected an image") as refused:
            client.predict(handle_file(str(broken)), 0.0, iou, 10, [], api_name="/detect")
        assert "Could not preprocess" not in str(refused.value)
    rows = [[f["frame"], f["time"], d["label"], d["score"], *d["box"]] for f in expected["frames"]
            for d in f["detections"]]
    assert rows and table["data"] == rows, "the table is the batched prediction's, frame by frame"
    assert status.startswith("5 frame(s) read (one in 2 of 10)") and f"{len(rows)} detection(s)" in status
    assert empty["data"] == [] and "nothing found" in nothing
    path = shown["video"] if isinstance(shown, dict) else shown
    assert str(path).endswith(".webm"), "WebM (VP8) plays in the browser; OpenCV's MP4 (mp4v) does not"
    capture = cv2.VideoCapture(str(path))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) in (10, 0) and capture.read()[0], "a readable video"
    frames = 1
    while capture.read()[0]:
        frames += 1
    capture.release()
    assert frames == 10, "every frame of the video is shown, with the last detections drawn on skipped ones"
    # Annotated videos are kept in one folder, and those older than an hour are removed.
    import os

    from dlapps_plugins.object_detection import object_detection_ui as ui

    old, recent = (ui._video_folder_path() / f"detections-{n}.webm" for n in ("old", "recent"))
    for file in (old, recent):
        file.write_bytes(b"x")
    os.utime(old, (0, 0))
    ui._video_folder()
    assert not old.exists() and recent.exists()
    # The tab's example video: a pan across held-out images, which the detector reads as any other video.
    from dlapps_plugins.object_detection.detection_images import example_video

    clip = example_video([_scene(1), _scene(2)], tmp_path / "pan.webm", frames_each=4)
    panned = detection_model.predict(str(clip), conf=0.0, draw=False)
    assert len(panned["frames"]) == 8 and (panned["width"], panned["height"]) == (160, 160)


def test_ui_refilters_without_running_the_model_again(detection_model, monkeypatch):
    from dlapps_plugins.object_detection import object_detection_ui as ui

    task = detection_model.task
    picture = _scene(2, (128, 128))  # square: no box is lost to the letterbox margin
    found = ui.run_model(task, detection_model, picture, detection_model.options({"conf": 0.0, "draw": False}))

    def no_model(model):
        raise AssertionError("the model ran again")

    monkeypatch.setattr(task, "_candidates", no_model)
    loose = ui.show(task, found, detection_model.options({"conf": 0.0, "iou": 1.0, "max_detections": 50,
                                                          "draw": False}))
    strict = ui.show(task, found, detection_model.options({"conf": 0.0, "iou": 1.0, "max_detections": 4,
                                                           "draw": False}))
    suppressed = ui.show(task, found, detection_model.options({"conf": 0.0, "iou": 0.3, "max_detections": 50,
                                                               "draw": False}))
    # Non-maximum suppression at IoU 0.3: no two kept boxes of one class overlap by more than that.
    for i, a in enumerate(suppressed[1]):
        for b in suppressed[1][i + 1:]:
            if a[0] == b[0]:
                assert _iou(a[2:], b[2:]) <= 0.3 + 1e-3, (a, b)  # boxes are rounded to 4 decimals
    none = ui.show(task, found, detection_model.options({"conf": 1.0, "draw": False}))
    # (a box left without area by the image's edge is left out, so "at most" max_detections)
    assert 4 < len(loose[1]) <= 50 and 1 <= len(strict[1]) <= 4 and strict[1] == loose[1][:len(strict[1])]
    assert loose[0][0].shape == picture.shape and len(loose[0][1]) == len(loose[1])
    assert none[1] == [] and "Nothing found" in none[2]


def test_fine_tune_from_a_local_keras_hub_preset(tmp_path, detection_folder):
    import keras_hub

    from dlapps_plugins.object_detection.retinanet_detector import build_retinanet

    config = {**ObjectDetection.default_config, **TINY_DETECTION_CONFIG, "labels": ["a", "b"]}
    preset = tmp_path / "tiny_retinanet"
    build_retinanet(config).save_to_preset(str(preset))
    assert (preset / "config.json").is_file()
    predictor = dlapps.train("object-detection", detection_folder, preset=str(preset), epochs=1,
                             out=tmp_path / "from-preset", config={"image_size": 64}, verbose=0)
    assert predictor.task.config["family"] == "RetinaNetObjectDetector"
    assert isinstance(predictor.model, keras_hub.models.RetinaNetObjectDetector)
    assert predictor.model.num_classes == len(CLASSES)  # a fresh head for the data's classes
    # A square picture: no candidate falls in a letterbox margin (such a box has no area in the original image
    # and is left out), so an untrained head's best three candidates are all detections.
    picture = _scene(4, (128, 128))
    result = predictor.predict(picture, conf=0.0, max_detections=3)
    assert 1 <= len(result["detections"]) <= 3
    reloaded = dlapps.load("object-detection", tmp_path / "from-preset")
    assert reloaded.predict(picture, conf=0.0, max_detections=3)["detections"] == result["detections"]
    with pytest.raises(PresetError, match="expected a KerasHub object detector preset name"):
        dlapps.train("object-detection", detection_folder, preset=str(tmp_path / "nothing-here"), epochs=1,
                     out=tmp_path / "none", verbose=0)


@pytest.mark.slow
def test_fine_tune_a_local_d_fine_preset(tmp_path, detection_folder):
    """D-FINE (queries, no anchors) through the same task: its own targets, decoding and KerasHub's loss."""
    import keras_hub

    hgnet = keras_hub.models.HGNetV2Backbone(
        stem_channels=[3, 8, 8], stackwise_stage_filters=[[8, 8, 16, 1, 1, 3], [16, 8, 32, 1, 1, 3],
                                                          [32, 16, 64, 1, 1, 3], [64, 16, 64, 1, 1, 3]],
        apply_downsample=[False, True, True, True], use_lightweight_conv_block=[False, False, True, True],
        depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 64], embedding_size=8, use_learnable_affine_block=True,
        hidden_act="relu", image_shape=(64, 64, 3), out_features=["stage3", "stage4"])
    backbone = keras_hub.models.DFineBackbone(
        backbone=hgnet, decoder_in_channels=[16, 16], encoder_hidden_dim=16, num_denoising=0, num_labels=3,
        hidden_dim=16, learn_initial_query=False, num_queries=20, anchor_image_size=(64, 64), feat_strides=[16, 32],
        num_feature_levels=2, encoder_in_channels=[64, 64], encode_proj_layers=[1], num_attention_heads=2,
        encoder_ffn_dim=32, num_encoder_layers=1, hidden_expansion=0.34, depth_multiplier=0.5, eval_idx=-1,
        num_decoder_layers=1, decoder_attention_heads=2, decoder_ffn_dim=32, decoder_n_points=[2, 2],
        lqe_hidden_dim=8, num_lqe_layers=1, out_features=["stage3", "stage4"], image_shape=(64, 64, 3))
    converter = keras_hub.layers.DFineImageConverter(scale=1 / 255, bounding_box_format="xyxy")
    preset = tmp_path / "tiny_dfine"
    keras_hub.models.DFineObjectDetector(
        backbone=backbone, num_classes=3, bounding_box_format="xyxy",
        preprocessor=keras_hub.models.DFineObjectDetectorPreprocessor(image_converter=converter),
    ).save_to_preset(str(preset))
    predictor = dlapps.train("object-detection", detection_folder, preset=str(preset), epochs=1, batch_size=4,
                             out=tmp_path / "dfine", config={"image_size": 64}, verbose=0)
    assert predictor.task.config["family"] == "DFineObjectDetector"
    assert predictor.model.num_classes == len(CLASSES)
    picture = str(write_image(tmp_path / "square.png", _scene(4, (128, 128))))  # no letterbox margin
    result = predictor.predict(picture, conf=0.0, max_detections=10)
    assert 1 <= len(result["detections"]) <= 10
    assert all(0 <= d["box"][0] < d["box"][2] <= result["width"] for d in result["detections"])
    reloaded = dlapps.load("object-detection", tmp_path / "dfine")
    assert reloaded.predict(picture, conf=0.0, max_detections=10)["detections"] == result["detections"]


def _iou(a, b) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _scene(seed: int, shape=None) -> np.ndarray:
    import cv2

    image, _ = draw_scene(np.random.default_rng([77, seed]))
    return image if shape is None else cv2.resize(image, (shape[1], shape[0]))


def _text_file(tmp_path) -> str:
    path = tmp_path / "notes.png"
    path.write_text("this is text, not an image")
    return str(path)


def _dlapps(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlapps.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_the_plan_sizes_the_input_and_anchors_from_the_boxes():
    """Auto-anchor: small objects get a larger input or smaller anchors, boxes of the default scenes keep the
    default recipe, long thin boxes get anchors of their shape, and the numbers quoted are the ones measured."""
    from dlapps_plugins.object_detection.detection_recipe import (anchor_recall, best_anchor_fit, choose_image_size,
                                                                  kmeans_ratios)

    rng = np.random.default_rng(0)
    small = rng.uniform(14, 44, (500, 1)).repeat(2, axis=1)  # square objects of 14-44 px in 160 x 120 images
    assert choose_image_size(small, np.full(500, 160.0), 96, 32) == 128  # 9-26 px at 96: too small
    default_like = rng.uniform(30, 70, (500, 1)).repeat(2, axis=1)  # the default scenes: 0.2-0.45 of 112-192 px
    assert choose_image_size(default_like, np.full(500, 150.0), 96, 32) == 96
    tiny = rng.uniform(4, 6, (50, 2))
    assert choose_image_size(tiny, np.full(50, 600.0), 96, 32) == 160  # none big enough: the largest allowed

    levels = (3, 4)
    at_96 = small * 96 / 160
    size, recall = best_anchor_fit(at_96, levels, 3, [1.0], 0.4, default=2.0)
    assert size < 2.0 and recall > anchor_recall(at_96, levels, 3, [1.0], 2.0, 0.4) + 0.05
    assert recall == anchor_recall(at_96, levels, 3, [1.0], size, 0.4)
    assert best_anchor_fit(default_like * 96 / 150, levels, 3, [1.0], 0.4, default=2.0) == (2.0, 1.0)

    assert kmeans_ratios(default_like) == [1.0]
    thin = np.concatenate([np.column_stack([rng.uniform(40, 48, 200), rng.uniform(8, 12, 200)]),
                           np.column_stack([rng.uniform(8, 12, 200), rng.uniform(40, 48, 200)]),
                           rng.uniform(20, 30, (200, 1)).repeat(2, axis=1)])
    ratios = kmeans_ratios(thin)
    assert len(ratios) == 3 and ratios[0] < 0.35 and 0.8 < ratios[1] < 1.25 and ratios[2] > 3
    square_recall = best_anchor_fit(thin, levels, 3, [1.0], 0.4, default=2.0)[1]
    assert best_anchor_fit(thin, levels, 3, ratios, 0.4, default=2.0)[1] > square_recall + 0.3


def test_cli_training_plans_a_user_like_set_and_beats_the_baseline(tmp_path, home):
    """A user's COCO set of small images with small objects, trained with the plain command: the plan raises the
    input size and shrinks the anchors (printed, kept in task.json), and the model learns more than the mean box."""
    import dlapps_plugins.object_detection.generated_scenes as scenes

    original = scenes.SCENE_SIDES, scenes.OBJECT_SHARES
    scenes.SCENE_SIDES, scenes.OBJECT_SHARES = (120, 160), (0.1, 0.25)
    try:
        folder = write_scenes(tmp_path / "user", {"train": 60, "validation": 10, "test": 10})
    finally:
        scenes.SCENE_SIDES, scenes.OBJECT_SHARES = original
    out = tmp_path / "model"
    run = _dlapps("train", "object-detection", "--data", str(folder), "--out", str(out), "--set", "steps=400",
                  "--set", "backbone_filters=[64,16,16]", "--set", "backbone_blocks=[1,1,1]",
                  timeout=900)  # about 160 s on 2 quiet cores; a timeout is a hang, not slowness
    assert run.returncode == 0, run.stderr[-3000:]
    assert "image_size=128: nine boxes in ten are at least" in run.stderr
    assert "E0000" not in run.stderr and "cuInit" not in run.stderr  # a quiet start on a CPU machine
    assert "have an anchor at IoU 0.4 or more" in run.stderr
    choices = {c["key"]: c for c in json.loads((out / "task.json").read_text())["training"]["recipe"]["choices"]}
    assert choices["image_size"]["value"] == 128 and choices["steps"]["why"] == "set by you"
    assert choices["anchor_size"]["value"] < 2.0
    metrics = json.loads((out / "metrics.json").read_text())
    # 400 steps of a tiny backbone learn something (mAP@.5 0.29 against the mean box's 0.0 here), not always enough
    # for the floored verdict (0.05 above the mean box: Baseline.floor, tested on its own); the benchmarks measure
    # what the full plan reaches.
    assert metrics["map_50"] > max(0.01, 2 * metrics["baseline_map_50"]), metrics
    assert metrics["baseline_check"]["better"] == (metrics["map_50"] > 2 * metrics["baseline_map_50"] + 0.05)


def test_pixel_statistics_tell_noise_and_blank_from_a_scene():
    from dlapps_plugins.object_detection.detection_images import letterbox, pixel_statistics
    from dlapps_plugins.object_detection.generated_scenes import draw_scene

    rng = np.random.default_rng(0)
    scene = letterbox(draw_scene(np.random.default_rng([5, 1]))[0], 128)[0]
    noise = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
    blank = np.full((128, 128, 3), 90, np.uint8)
    stats = pixel_statistics(np.stack([scene, noise, blank]))
    assert stats.shape == (3, 19) and np.isfinite(stats).all()
    flat, likeness = 11, 16  # the share of flat pixels; how alike neighbours are
    assert stats[2, flat] == 1.0 and stats[2, likeness] == 1.0
    assert abs(stats[1, likeness]) < 0.1 < stats[0, likeness]


def test_detections_carry_the_out_of_distribution_score(detection_model):
    detector = detection_model
    calibrated = detector.task.config["ood"]
    assert calibrated["available"] and "pixel statistics" in calibrated["measures"], calibrated
    assert set(detector.task.feature_density.densities) == {"network", "pixels"}
    result = detector.predict(np.random.default_rng(1).integers(0, 256, (90, 120, 3), dtype=np.uint8))
    assert isinstance(result["in_distribution"], float) and isinstance(result["out_of_domain"], bool)


@pytest.mark.browser
def test_a_click_on_an_example_detects_it_in_the_browser(detection_model, tmp_path):
    from playwright.sync_api import sync_playwright

    from dlapps.testing import serve
    from dlapps.ui import task_blocks

    with serve(task_blocks("object-detection", detection_model)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(url)
            examples = page.locator("#object-detection-examples")
            examples.locator("img").first.click()  # no Detect button
            settled = page.wait_for_function(
                "() => { const t = document.querySelector('#object-detection-status').innerText;"
                " return /found/i.test(t) ? t : null; }", timeout=60_000)
            assert "found" in settled.json_value().lower()
            assert examples.locator("img").first.bounding_box()["width"] >= 72  # shown enlarged, not as a speck
            broken = tmp_path / "broken.png"
            broken.write_text("this is a text file, not a picture\n")
            page.locator("#object-detection-input input[type=file]").set_input_files(str(broken))
            page.locator(".toast-body").first.wait_for(timeout=30_000)
            page.wait_for_timeout(1000)  # a second toast (Gradio's own) would be up by now
            toasts = page.locator(".toast-body").all_inner_texts()
        finally:
            browser.close()
    # One short message, ours: not Gradio's own "Could not preprocess" toast with its temporary upload path.
    assert len(toasts) == 1 and "expected" in toasts[0] and "broken.png" in toasts[0], toasts
    assert "Could not preprocess" not in toasts[0] and str(tmp_path) not in toasts[0], toasts


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
def test_boxes_of_a_photo_stored_on_its_side_turn_with_it(tmp_path, orientation):
    """dlapps reads a photo upright by its EXIF orientation: a box drawn on the stored picture must cover the
    same object in the upright one."""
    from PIL import Image

    from dlapps.inputs import read_image
    from dlapps_plugins.object_detection.detection_data import Annotated, BoxReport, clean_boxes

    stored = np.zeros((60, 100, 3), np.uint8)
    stored[10:30, 60:90] = 255  # a white object at x 60-90, y 10-30 of the stored picture
    picture = Image.fromarray(stored)
    exif = picture.getexif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    picture.save(path, quality=95, exif=exif)
    report = BoxReport()
    turned = clean_boxes(Annotated(str(path), 100, 60, [(60, 10, 90, 30)], ["thing"], [False]), report)
    shown = read_image(str(path))
    assert (turned.width, turned.height) == (shown.shape[1], shown.shape[0])
    x0, y0, x1, y1 = (int(round(v)) for v in turned.boxes[0])
    assert shown[y0 + 2:y1 - 2, x0 + 2:x1 - 2].min() > 200  # the object is inside the turned box
    assert report.turned == (orientation != 1)


def test_clearing_the_image_clears_the_answer(detection_model):
    """An upload, a paste, an example and a clear all change the image: a cleared one leaves no boxes of a picture
    that is no longer there (the handler behind the image's change event, called as Gradio calls it)."""
    from dlapps.ui import task_blocks

    blocks = task_blocks("object-detection", detection_model)
    handler = next(f.fn for f in blocks.fns.values() if f.name == "detect_if_any")
    assert handler(None, 0.25, 0.5, 20, []) == (None, None, "", None)
    picture = np.random.default_rng(2).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    annotated, rows, status, found = handler(picture, 0.0, 0.5, 20, [])
    assert annotated is not None and found is not None and status.strip()


def test_nms_keeps_the_best_box_per_class_for_models_of_any_class_count():
    """One NMS for predict and export (per_class_nms): overlapping boxes of one class keep the best, another class's
    box stays; a model with another number of classes in the same process works too (its own trace)."""
    from dlapps_plugins.object_detection.retinanet_detector import select

    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]]], np.float32)
    for classes in (5, 2, 5):
        scores = np.zeros((1, 3, classes), np.float32)
        scores[0, 0, 1], scores[0, 1, 1], scores[0, 2, 0] = 0.9, 0.8, 0.7
        kept, kept_scores, kept_classes, counts = select(boxes, scores, 0.5, 0.5, 10)
        assert counts.tolist() == [2] and kept_classes[0, :2].tolist() == [1, 0] and kept_classes[0, 2] == -1
        assert kept[0, :2].tolist() == [[0, 0, 10, 10], [50, 50, 60, 60]]
        assert kept_scores[0, :2] == pytest.approx([0.9, 0.7])
