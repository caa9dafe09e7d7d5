"""The object-detection task: declarations, plus the steps only it knows."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import Baseline, FileOutput, ImageOutput, InvalidInputError, Option, Param, PerModel, Pieces, Task, read_image

#: Evaluation keeps every detection above this score (COCO mAP integrates over all of them), at most 100 an image.
EVAL_CONF, EVAL_MAX_DETECTIONS = 0.01, 100


def _classes_expected(value: str, config: dict):
    """None when ``value`` names only classes of the model (comma-separated), else what was expected."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    labels = config.get("labels") or []
    unknown = [n for n in names if n not in labels]
    if unknown:
        return (f"class names of the model, comma-separated ({', '.join(labels) or 'none: train a model first'}); "
                f"{', '.join(map(repr, unknown))} is not one")
    return None


class ObjectDetection(Task):
    name = "object-detection"
    title = "Object detection"
    description = ("Images and videos in, boxes with labels and scores out; the default model knows generated "
                   "shapes on noise, classes: circle, square, triangle, star, cross.")
    input_kind = "image"
    input_file_kinds = ("image", "video")
    output_kind = "boxes"
    training_seconds = 720  # the default model on 2 CPU cores (benchmarks/)
    pad_values = {"boxes": -1, "labels": -1}
    monitor = "val_loss"
    ood_note = ("the Mahalanobis distances of the detector's feature pyramid, averaged over the image, and of the "
                "image's pixel statistics (colour, contrast, grain, smoothness) to the training images'")
    #: mAP@.5 must be more than twice that of a detector that puts each class's mean training box on every image,
    #: and 0.05 more: on a user's data, where objects are anywhere, the mean box scores about 0.
    baseline = Baseline("map_50", "baseline_map_50", "the trivial detector (each class's mean training box on "
                        "every image)", margin=1.0, floor=0.05)
    predict_options = {
        "conf": Option(float, 0.5, "the lowest score a detection may have", min=0.0, max=1.0),
        "iou": Option(float, 0.5, "non-maximum suppression: of two boxes of a class overlapping more than this "
                                  "IoU, the lower-scored one is dropped", min=0.0, max=1.0),
        "max_detections": Option(int, 100, "at most this many detections per image (or video frame)",
                                 min=1, max=1000),
        "classes": Option(str, "", "only these classes, comma-separated (default: every class)",
                          validate=_classes_expected),
        "draw": Option(bool, True, "also return the image (or video) with the boxes drawn"),
        "frame_step": Option(int, 1, "videos: detect on every n-th frame", min=1, max=10_000),
    }
    default_config = {
        "labels": [],
        "category_ids": [],       # the data's category id of each label (COCO ids need not be contiguous)
        "image_size": 96,         # images are letterboxed to a square of this side
        "backbone_filters": [64, 128, 256],  # ResNet stacks of basic blocks (KerasHub: the first must be 64)
        "backbone_blocks": [1, 1, 1],
        "min_level": 3,           # feature pyramid levels P3 (stride 8) to P4 (stride 16)
        "max_level": 4,
        "head_convs": 0,          # convolutions of width 256 before each head's output layer
        "anchor_size": 2.0,       # anchors of anchor_size * stride * 2^(i / anchor_scales) pixels
        "anchor_scales": 3,
        "aspect_ratios": [1.0],
        "positive_iou": 0.4,      # anchors matched to a box at this IoU or more learn it; below negative_iou:
        "negative_iou": 0.3,      # background; in between: ignored
        "augment": True,
        "box_priors": [],         # per class: frequency and mean normalised box in training (the baseline)
        "box_loss_weight": 25.0,  # box offsets weigh as in RetinaNet's smooth-L1 loss of offsets scaled by 5
        "epochs": 18,             # passes over the default scenes (5,400 steps): warm-up, then a cosine decay
        "min_steps": 4000,        # smaller data gets more passes (18 epochs of 500 images are only 1,125 steps)
        "max_steps": 8000,
        "batch_size": 8,
        "patience": 6,
        "learning_rate": 1e-3,
    }
    search_space = {  # dlapps tune object-detection
        "learning_rate": Param(float, 3e-4, 3e-3, log=True),
        "image_size": Param(choices=(64, 96, 128)),
        "backbone_blocks": Param(choices=([1, 1, 1], [2, 2, 2])),
        "anchor_size": Param(float, 1.5, 3.0),
        "box_loss_weight": Param(float, 5.0, 50.0, log=True),
    }

    def __init__(self, config=None):
        super().__init__(config)
        self._candidate_functions = PerModel()  # built once per model, shared by the server's threads
        self._augmenter = None

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.object_detection.detection_data import detection_dataset
        from dlapps_plugins.object_detection.generated_scenes import CLASSES, SPLIT_SIZES, default_folder

        data = detection_dataset(default_folder(), seed)
        data.description = (
            f"Generated scenes ({', '.join(f'{n} {s}' for s, n in SPLIT_SIZES.items())}): 0-4 shapes "
            f"({', '.join(CLASSES)}) of varied size, colour, position and rotation, partly overlapping, on "
            "gradients, blurred noise or stripes with clutter lines and pixel noise; a tenth have no object. "
            "Written once in COCO format and read back by the COCO reader; the test scenes are never trained on.")
        return data

    def load_data(self, path, seed=0):
        from dlapps_plugins.object_detection.detection_data import detection_dataset

        return detection_dataset(path, seed)

    def load_eval_data(self, path):
        from dlapps_plugins.object_detection.detection_data import evaluation_split

        return evaluation_split(path, self.labels())

    def adapt(self, dataset):
        from dlapps_plugins.object_detection.coco_metrics import box_priors

        self.config["box_priors"] = box_priors(dataset.train, len(self.config["labels"]))

    def plan(self, dataset, recipe):
        from dlapps_plugins.object_detection.detection_recipe import plan_detection

        plan_detection(self, dataset, recipe)

    def training_example(self, raw, target):
        from dlapps_plugins.object_detection.detection_images import letterbox

        image = read_image(raw)
        square, (sx, sy) = letterbox(image, int(self.config["image_size"]))
        if target is None:
            return (square,)
        keep = ~target["crowd"]  # crowd regions are not objects to learn
        scale = np.array([sx, sy, sx, sy], np.float32) * image.scale
        boxes = target["boxes"][keep].astype(np.float32) * scale
        labels = target["labels"][keep].astype(np.int32)
        if self.config.get("family") == "DFineObjectDetector":
            from dlapps_plugins.object_detection.keras_hub_presets import dfine_boxes

            return square, {"boxes": dfine_boxes(boxes, square.shape[0]), "labels": labels}
        if not len(boxes):  # an image without objects: one padding row, so a batch always has a box axis
            boxes, labels = np.full((1, 4), -1, np.float32), np.full((1,), -1, np.int32)
        return square, {"boxes": boxes, "labels": labels}

    def augment(self, example):
        if not self.config.get("augment"):
            return example
        if self._augmenter is None:
            from dlapps_plugins.object_detection.box_augmentation import BoxAugmenter

            dfine = self.config.get("family") == "DFineObjectDetector"
            self._augmenter = BoxAugmenter("rel_center_xywh" if dfine else "xyxy")
        return self._augmenter(example)

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.object_detection.retinanet_detector import build_retinanet

        self.labels()
        return build_retinanet(config)

    def compile_model(self, model, jit_compile=False):
        from dlapps_plugins.object_detection.retinanet_detector import compile_detector

        compile_detector(model, float(self.config["learning_rate"]), float(self.config["box_loss_weight"]),
                         jit_compile)

    def load_preset(self, preset, config):
        from dlapps_plugins.object_detection.keras_hub_presets import detector_from_preset

        self.labels()
        return detector_from_preset(preset, config)

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub's detector classes

        return {}

    def export_graph(self, model, options):
        from dlapps_plugins.object_detection.detector_export import detector_graph

        return detector_graph(model, int(self.config["image_size"]), self.labels(), options,
                              self._class_mask(options["classes"]))

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        from dlapps_plugins.object_detection.detection_images import is_video, letterbox

        if is_video(raw):
            return self._video_pieces(raw, options)
        image = read_image(raw)
        square, (sx, sy) = letterbox(image, int(self.config["image_size"]))
        context = {"scale": (sx * image.scale, sy * image.scale), "original_size": image.original_size,
                   "image": image if options["draw"] else None, "image_scale": image.scale}
        return square, context

    def _video_pieces(self, path, options):
        from dlapps_plugins.object_detection.detection_images import (
            MAX_VIDEO_FRAMES, letterbox, open_video, video_frames)

        capture, facts = open_video(path)
        capture.release()
        expected = facts["frame_count"] // options["frame_step"]
        if expected > MAX_VIDEO_FRAMES:
            raise InvalidInputError(f"expected a video of at most {MAX_VIDEO_FRAMES:,} frames to read, received "
                                    f"'{path}' with {facts['frame_count']:,} frames; set frame_step to "
                                    f"{-(-facts['frame_count'] // MAX_VIDEO_FRAMES)} or more, or cut the video")
        size = int(self.config["image_size"])
        pieces = Pieces(context={**facts, "path": str(path)})
        for index, frame in video_frames(path, options["frame_step"]):
            square, (sx, sy) = letterbox(frame, size)
            pieces.append((square, {"frame": index, "time": round(index / facts["fps"], 3), "scale": (sx, sy),
                                    "original_size": (frame.shape[1], frame.shape[0])}))
        return pieces

    def forward(self, model, batch, options):
        from dlapps_plugins.object_detection.retinanet_detector import select

        boxes, scores, *features = self._candidates(model)(batch)
        found = dict(zip(("boxes", "scores", "classes", "count"),
                         select(boxes, scores, options["conf"], options["iou"], options["max_detections"],
                                self._class_mask(options["classes"]))))
        return {**found, **self.feature_outputs(features[0], batch)} if features else found

    def feature_outputs(self, pooled, images) -> dict:
        """What ``ood_features`` reads, per image of the batch ``images``: the candidate function's ``pooled``
        pyramid and the images' pixel statistics."""
        from dlapps_plugins.object_detection.detection_images import pixel_statistics

        return {"features": np.asarray(pooled), "pixels": pixel_statistics(images)}

    def _candidates(self, model):
        """The model's compiled candidate function (made once per model): boxes, scores and, where the model
        family has them, the pooled features the out-of-distribution check measures."""
        from dlapps_plugins.object_detection.keras_hub_presets import candidate_function

        return self._candidate_functions.get(model, lambda m: candidate_function(m, features=True))

    def ood_features(self, output):
        if not isinstance(output, dict) or "features" not in output:
            return None
        return {"network": output["features"], "pixels": output["pixels"]}

    def _class_mask(self, classes: str):
        names = {n.strip() for n in classes.split(",") if n.strip()}
        if not names:
            return None
        return np.array([label in names for label in self.labels()], np.float32)

    def postprocess(self, output, context, options):
        from dlapps_plugins.object_detection.detection_images import draw_detections, to_original

        labels = self.labels()
        count = int(output["count"])
        boxes = to_original(output["boxes"][:count], context["scale"], context["original_size"])
        detections = [{"label": labels[int(c)], "score": round(float(s), 6), "box": [round(float(v), 4) for v in b]}
                      for b, s, c in zip(boxes, output["scores"][:count], output["classes"][:count])
                      if b[2] > b[0] and b[3] > b[1]]  # a box wholly in the letterbox margin has no area left
        if "frame" in context:  # one frame of a video
            return {"frame": context["frame"], "time": context["time"], "detections": detections}
        width, height = context["original_size"]
        result = {"width": int(width), "height": int(height), "detections": detections}
        if context.get("image") is not None:
            result["image"] = ImageOutput(draw_detections(np.asarray(context["image"]), detections,
                                                          context["image_scale"], labels))
        return result

    def combine(self, results, context, options):
        from dlapps_plugins.object_detection.detection_images import annotated_video

        result = {"width": context["width"], "height": context["height"], "fps": round(context["fps"], 3),
                  "frame_count": context["frame_count"], "frame_step": options["frame_step"], "frames": results}
        if options["draw"]:
            result["video"] = FileOutput(annotated_video(context["path"], results, self.labels(), context["fps"]),
                                         ".mp4")
        return result

    def summarize(self, result):
        if "frames" in result:
            found = sum(len(f["detections"]) for f in result["frames"])
            return f"{len(result['frames'])} frames read, {found} detections"
        shown = ", ".join(f"{d['label']} {d['score']:.2f}" for d in result["detections"][:6])
        more = ", ..." if len(result["detections"]) > 6 else ""
        return f"{len(result['detections'])} object(s)" + (f": {shown}{more}" if shown else "")

    def evaluate(self, predictor, split):
        from dlapps_plugins.object_detection.coco_metrics import evaluate_detector

        return evaluate_detector(predictor, split, self.labels(), self._category_ids(), self.config["box_priors"],
                                 conf=EVAL_CONF, max_detections=EVAL_MAX_DETECTIONS)

    def _category_ids(self) -> list[int]:
        ids = self.config.get("category_ids") or []
        return list(ids) if len(ids) == len(self.labels()) else list(range(1, len(self.labels()) + 1))

    def format_metrics(self, metrics):
        from dlapps_plugins.object_detection.coco_metrics import format_report

        return format_report(metrics)

    def example_inputs(self, split, limit=8):
        """Test images with objects of several classes (and one without any, last: the first example shows what
        the model finds), named after what they hold."""
        labels = self.config.get("labels") or []
        chosen, seen = [], set()
        for i in range(len(split)):
            classes = sorted({labels[c] for c in split.targets[i]["labels"].tolist() if c < len(labels)})
            if (classes and not set(classes) <= seen) or (not classes and "" not in seen):
                seen |= set(classes) or {""}
                chosen.append((split.inputs[i], "_".join(classes) or "no_objects"))
            if len(chosen) >= limit:
                break
        return sorted(chosen, key=lambda example: (example[1] == "no_objects", -example[1].count("_")))

    # -- other file formats of a batch run ------------------------------------------
    result_formats = {"coco": ".coco.json"}

    def write_results(self, fmt, records, path):
        from dlapps_plugins.object_detection.coco_metrics import write_coco_results

        return write_coco_results(records, path, self.labels(), self._category_ids())

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.object_detection.object_detection_ui import build_ui

        build_ui(self, predictor)
