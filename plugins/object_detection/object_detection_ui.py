"""The object-detection tab: an image (or a video) in, its boxes drawn over it and a table of detections out.

The model runs once per image: its candidate boxes are kept, and moving the confidence, IoU or
max-detections slider (or the class filter) only repeats the non-maximum suppression on them.
A video runs through the same batched prediction as ``dlapps predict`` (every n-th frame); the
boxes come back drawn on the video, as WebM so that the browser plays it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from dlapps.plugin import mark_in_distribution, ood_notice


def build_ui(task, predictor) -> None:
    import gradio as gr

    from dlapps.plugin import FILE_KINDS, image_input, model_summary, option_control, raise_for_ui

    labels = task.labels()
    options = task.predict_options
    examples = predictor.examples()
    gr.Markdown(model_summary(predictor))
    gr.Markdown(_what_it_knows(task, predictor))
    with gr.Row():
        with gr.Column(scale=1):
            conf = option_control("conf", options["conf"], task.config, label="Confidence (lowest score shown)",
                                  elem_id="object-detection-conf")
            iou = option_control("iou", options["iou"], task.config, label="IoU (non-maximum suppression)",
                                 elem_id="object-detection-iou")
            max_detections = option_control("max_detections", options["max_detections"], task.config,
                                             label="Max detections (per image or frame)",
                                             elem_id="object-detection-max-detections")
            classes = gr.CheckboxGroup(labels, value=[], label="Only these classes (none ticked: every class)",
                                       elem_id="object-detection-classes")
        with gr.Column(scale=3), gr.Tabs():
            with gr.Tab("Image", elem_id="object-detection-image-tab"), gr.Row():
                with gr.Column():
                    image = image_input(label="Image", sources=["upload", "clipboard", "webcam"], height=320,
                                        elem_id="object-detection-input")
                    button = gr.Button("Detect", variant="primary", elem_id="object-detection-run")
                    if examples:  # a click on one puts it in the image, which detects it (image.change below)
                        gr.Examples(examples, inputs=image, label="Examples (held-out test images): click one to "
                                    "detect its objects", elem_id="object-detection-examples")
                with gr.Column():
                    annotated = gr.AnnotatedImage(label="Detections", color_map=_color_map(labels),
                                                  elem_id="object-detection-output")
                    status = gr.Markdown(elem_id="object-detection-status")
                    table = gr.Dataframe(headers=["label", "score", "x_min", "y_min", "x_max", "y_max"],
                                         label="Detections (pixels of the original image)", interactive=False,
                                         elem_id="object-detection-table")
            with gr.Tab("Video", elem_id="object-detection-video-tab"), gr.Row():
                with gr.Column():
                    video = gr.Video(label=f"Video ({', '.join(FILE_KINDS['video'])})", sources=["upload"],
                                     height=320, elem_id="object-detection-video-input")
                    frame_step = option_control("frame_step", options["frame_step"], task.config,
                                                label="Detect on every n-th frame",
                                                elem_id="object-detection-frame-step")
                    video_button = gr.Button("Detect in video", variant="primary",
                                             elem_id="object-detection-video-run")
                    clip = _example_clip(examples) if examples else None
                    if clip is not None:
                        gr.Examples([[str(clip)]], inputs=video,
                                    label="Example video (a pan across held-out test images)")
                with gr.Column():
                    video_out = gr.Video(label="Detections drawn on the video", interactive=False,
                                         elem_id="object-detection-video-output")
                    video_status = gr.Markdown(elem_id="object-detection-video-status")
                    video_table = gr.Dataframe(headers=list(VIDEO_COLUMNS), interactive=False,
                                               label="Detections per frame (pixels of the video)",
                                               elem_id="object-detection-video-table")
    candidates = gr.State(None)

    def detect(picture, conf_value, iou_value, max_value, chosen):
        if picture is None:
            raise gr.Error("Upload, paste or pick an image first.")
        with raise_for_ui():
            checked = predictor.options(_options(conf_value, iou_value, max_value, chosen))
            found = run_model(task, predictor, picture, checked)
            return (*show(task, found, checked), found)

    def detect_if_any(picture, *values):  # a cleared image clears the answer too: none is left for no image
        return detect(picture, *values) if picture is not None else (None, None, "", None)

    def refilter(found, conf_value, iou_value, max_value, chosen):
        if found is None:
            return gr.update(), gr.update(), gr.update()
        with raise_for_ui():
            return show(task, found, predictor.options(_options(conf_value, iou_value, max_value, chosen)))

    def detect_video(path, conf_value, iou_value, max_value, chosen, step):
        if not path:
            raise gr.Error("Upload a video first.")
        with raise_for_ui():
            checked = {**_options(conf_value, iou_value, max_value, chosen), "frame_step": int(step)}
            return video_result(task, predictor, path, checked)

    controls = [conf, iou, max_detections, classes]
    outputs = [annotated, table, status]
    video_button.click(detect_video, [video, *controls, frame_step], [video_out, video_table, video_status],
                       api_name="detect_video")
    button.click(detect, [image, *controls], [*outputs, candidates], api_name="detect")
    # An upload, a paste and an example all change the image: each is detected at once (a cleared image clears).
    image.change(detect_if_any, [image, *controls], [*outputs, candidates], api_name=False)
    for control in controls:
        control.change(refilter, [candidates, *controls], outputs, api_name=False)


#: The video table's columns.
VIDEO_COLUMNS = ("frame", "time (s)", "label", "score", "x_min", "y_min", "x_max", "y_max")


def video_result(task, predictor, path, options: dict):
    """(annotated WebM path, table rows, status) for a video: the batched prediction ``dlapps predict`` runs,
    its per-frame detections drawn with ``annotated_video``."""
    import tempfile

    from dlapps_plugins.object_detection.detection_images import annotated_video

    result = predictor.predict(str(path), **options)
    rows = [[frame["frame"], frame["time"], d["label"], d["score"], *d["box"]]
            for frame in result["frames"] for d in frame["detections"]]
    with tempfile.NamedTemporaryFile(prefix="detections-", suffix=".webm", dir=_video_folder(),
                                     delete=False) as out:
        out.write(annotated_video(path, result["frames"], task.labels(), result["fps"], container=".webm"))
    frames = len(result["frames"])
    with_boxes = sum(1 for frame in result["frames"] if frame["detections"])
    step = options["frame_step"]
    read = f"{frames} frame(s) read" + (f" (one in {step} of {result['frame_count']})" if step > 1 else "")
    notice = ood_notice(result)
    if rows:
        seen = sorted({row[2] for row in rows})
        status = (f"{read}: {len(rows)} detection(s) in {with_boxes} frame(s) at confidence >= "
                  f"{options['conf']:.2f} ({', '.join(seen)}).")
    else:
        status = (f"{read}: **nothing found** at confidence >= {options['conf']:.2f}: lower the confidence, or "
                  f"try a video with {', '.join(task.labels())}.")
    return out.name, rows, f"{notice}\n\n{status}" if notice else status


#: Annotated videos older than this are removed from the tab's folder (Gradio serves its own copy of each).
KEEP_VIDEOS_SECONDS = 3600


@lru_cache(maxsize=1)
def _video_folder_path():
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="dlapps-detection-videos-"))


def _video_folder():
    """The tab's folder of annotated videos (in the system's temp folder, where Gradio may read), pruned of
    those older than ``KEEP_VIDEOS_SECONDS`` so that a long-running server does not fill the disk."""
    import time

    folder = _video_folder_path()
    for old in folder.glob("detections-*.webm"):
        try:
            if time.time() - old.stat().st_mtime > KEEP_VIDEOS_SECONDS:
                old.unlink()
        except OSError:
            pass
    return folder


def _example_clip(examples: list):
    """The example clip (a pan across the first held-out examples), made once per set of examples; None when
    this OpenCV cannot write WebM."""
    paths = tuple(str(e[0] if isinstance(e, (list, tuple)) else e) for e in examples[:4])
    try:
        return _example_clip_of(paths)
    except OSError:
        return None


@lru_cache(maxsize=8)
def _example_clip_of(paths: tuple):
    from dlapps_plugins.object_detection.detection_images import example_video

    return example_video(list(paths), _video_folder_path() / f"example-{abs(hash(paths)):x}.webm")


def _what_it_knows(task, predictor) -> str:
    data = predictor.meta.get("data", {})
    source = "the generated shapes on noise" if data.get("source", "default") == "default" else \
        f"`{data.get('source')}`"
    return (f"**This model detects {len(task.labels())} classes:** {', '.join(task.labels())} "
            f"(trained on {source}). Boxes of anything else are not expected.")


def _options(conf, iou, max_detections, chosen) -> dict:
    return {"conf": float(conf), "iou": float(iou), "max_detections": int(max_detections),
            "classes": ",".join(chosen or []), "draw": False}


def _color_map(labels: list[str]) -> dict:
    from dlapps_plugins.object_detection.detection_images import COLORS

    return {label: "#%02x%02x%02x" % COLORS[i % len(COLORS)] for i, label in enumerate(labels)}


def run_model(task, predictor, picture, options) -> dict:
    """The model's candidate boxes for one image (before non-maximum suppression) and what postprocess needs."""
    from dlapps.plugin import read_image

    rgb = read_image(picture)
    square, context = task.preprocess(rgb, options)
    boxes, scores, *features = task._candidates(predictor.model)(square[None])
    typical: dict = {}  # in_distribution and out_of_domain, as a prediction carries them
    if features:
        mark_in_distribution(task, typical, {key: value[0] for key, value in
                                             task.feature_outputs(features[0], square[None]).items()})
    return {"image": np.asarray(rgb), "boxes": np.asarray(boxes), "scores": np.asarray(scores),
            "context": {k: v for k, v in context.items() if k != "image"}, "ood": typical}


def show(task, found: dict, options: dict):
    """(annotated image, table rows, status) of the candidates at the options' thresholds."""
    from dlapps_plugins.object_detection.retinanet_detector import select

    boxes, scores, classes, counts = select(found["boxes"], found["scores"], options["conf"], options["iou"],
                                            options["max_detections"], task._class_mask(options["classes"]))
    output = {"boxes": boxes[0], "scores": scores[0], "classes": classes[0], "count": counts[0]}
    detections = task.postprocess(output, found["context"], options)["detections"]
    annotations = [(tuple(int(round(v)) for v in d["box"]), d["label"]) for d in detections]
    rows = [[d["label"], d["score"], *d["box"]] for d in detections]
    if detections:
        status = f"{len(detections)} object(s) found at confidence >= {options['conf']:.2f}."
    else:
        status = (f"**Nothing found** at confidence >= {options['conf']:.2f}"
                  f"{' among ' + options['classes'] if options['classes'] else ''}: lower the confidence, or try "
                  f"an image with {', '.join(task.labels())}.")
    notice = ood_notice(found.get("ood"))
    return (found["image"], annotations), rows, f"{notice}\n\n{status}" if notice else status
