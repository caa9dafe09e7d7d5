"""COCO evaluation by pycocotools: mAP@[.5:.95], mAP@.5, mAP@.75, by object size and per class, for the model
and for a trivial baseline; and the COCO results file of a batch run (``dlapps predict --format coco``)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np


def box_priors(split, num_classes: int) -> list:
    """Per class: its share of the training boxes and its mean box as fractions of the image
    ``[share, x0, y0, x1, y1]``: what the trivial baseline predicts on every image."""
    from PIL import Image

    from dlapps.plugin import exif_orientation

    sums, counts = np.zeros((num_classes, 4)), np.zeros(num_classes)
    for path, target in zip(split.inputs, split.targets):
        keep = ~target["crowd"]
        if not keep.any():
            continue
        with Image.open(path) as img:
            width, height = img.size
        if exif_orientation(path) in (5, 6, 7, 8):  # the boxes are in the pixels of the picture shown upright
            width, height = height, width
        boxes = target["boxes"][keep] / np.array([width, height, width, height])
        np.add.at(sums, target["labels"][keep], boxes)
        np.add.at(counts, target["labels"][keep], 1)
    shares = counts / max(1.0, counts.sum())
    means = sums / np.maximum(counts, 1)[:, None]
    return [[round(float(s), 6), *[round(float(v), 6) for v in m]] for s, m in zip(shares, means)]


def evaluate_detector(predictor, split, labels: list[str], category_ids: list[int], priors: list, *,
                      conf: float, max_detections: int) -> dict:
    """COCO metrics of the model on ``split``, with the trivial baseline's beside them (the core compares them:
    ``Task.baseline``)."""
    from dlapps_plugins.object_detection.coco_data import coco_ground_truth

    ground_truth = coco_ground_truth(split, labels, category_ids)
    results, sizes, unreadable = [], {}, []
    options = {"conf": conf, "max_detections": max_detections, "draw": False, "classes": ""}
    for i, result in predictor.iter_predict(split.inputs, batch_size=32, **options):
        if isinstance(result, Exception):
            unreadable.append(f"{split.name(i)}: {result}")
            continue
        sizes[i + 1] = (result["width"], result["height"])
        results += coco_results(result["detections"], i + 1, labels, category_ids)
    metrics = coco_metrics(ground_truth, results, labels)
    if not priors:  # a model that started from a preset learnt no priors: take them from this split
        priors = box_priors(split, len(labels))
    baseline = coco_metrics(ground_truth, baseline_results(priors, sizes, category_ids), labels)
    report = {**{k: v for k, v in metrics.items() if k != "per_class"},
              "images": len(split), "objects": len(ground_truth["annotations"]),
              "baseline_map": baseline["map"], "baseline_map_50": baseline["map_50"],
              "per_class": metrics["per_class"], "unreadable": unreadable,
              "baseline": "every class's mean training box on every image, scored by the class's share of boxes"}
    return report


def coco_results(detections: list, image_id, labels: list[str], category_ids: list[int]) -> list[dict]:
    """A result's detections as COCO result entries (``bbox`` as ``[x, y, width, height]``)."""
    index = {label: i for i, label in enumerate(labels)}
    out = []
    for det in detections:
        x0, y0, x1, y1 = det["box"]
        out.append({"image_id": image_id, "category_id": category_ids[index[det["label"]]],
                    "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                    "score": round(float(det["score"]), 5)})
    return out


def baseline_results(priors: list, sizes: dict, category_ids: list[int]) -> list[dict]:
    """The trivial detector: each class's mean box on every image, scored by the class's share of boxes."""
    out = []
    for image_id, (width, height) in sizes.items():
        for (share, x0, y0, x1, y1), category in zip(priors, category_ids):
            if share > 0:
                out.append({"image_id": image_id, "category_id": category, "score": share,
                            "bbox": [x0 * width, y0 * height, (x1 - x0) * width, (y1 - y0) * height]})
    return out


def coco_metrics(ground_truth: dict, results: list[dict], labels: list[str]) -> dict:
    """pycocotools' bbox evaluation: the summary figures and AP / AP@.5 per class (from its precision table)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = ("map", "map_50", "map_75", "map_small", "map_medium", "map_large")
    per_class = {label: {"ap": None, "ap_50": None} for label in labels}
    if not results or not ground_truth["annotations"]:
        return {**{name: 0.0 for name in names}, "per_class": per_class}
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress and table
        gt = COCO()
        gt.dataset = json.loads(json.dumps(ground_truth))
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [max(0.0, float(v)) for v in evaluation.stats[:6]]  # -1: no objects of that size
    precision = evaluation.eval["precision"]  # [IoU thresholds, recall points, classes, areas, max detections]
    all_areas, most = 0, len(evaluation.params.maxDets) - 1
    for k, category in enumerate(evaluation.params.catIds):
        label = labels[[c["id"] for c in ground_truth["categories"]].index(category)]
        table = precision[:, :, k, all_areas, most]
        if (table > -1).any():
            per_class[label] = {"ap": round(float(table[table > -1].mean()), 4),
                                "ap_50": round(float(table[0][table[0] > -1].mean()), 4)}
    return {**{name: round(v, 4) for name, v in zip(names, stats)}, "per_class": per_class}


def format_report(metrics: dict) -> str:
    lines = [f"mAP@[.5:.95] {metrics['map']:.4f}   mAP@.5 {metrics['map_50']:.4f}   mAP@.75 {metrics['map_75']:.4f}"
             f"   (pycocotools, {metrics['images']} images, {metrics['objects']} objects)",
             f"by size: small {metrics['map_small']:.4f}, medium {metrics['map_medium']:.4f}, "
             f"large {metrics['map_large']:.4f}",
             f"baseline ({metrics['baseline']}): mAP@[.5:.95] {metrics['baseline_map']:.4f}, "
             f"mAP@.5 {metrics['baseline_map_50']:.4f}", "", f"{'class':<24} {'AP':>8} {'AP@.5':>8}"]
    for label, row in metrics["per_class"].items():
        shown = [f"{row[k]:>8.4f}" if row[k] is not None else f"{'-':>8}" for k in ("ap", "ap_50")]
        lines.append(f"{label:<24} {' '.join(shown)}")
    if metrics.get("unreadable"):
        lines.append(f"\nunreadable: {len(metrics['unreadable'])} (first: {metrics['unreadable'][0]})")
    return "\n".join(lines)


def write_coco_results(records: list[dict], path, labels: list[str], category_ids: list[int]) -> Path:
    """The image records of a batch run as a COCO results file (a JSON list that pycocotools' ``loadRes``
    reads). ``image_id`` is the number an input's file name is (COCO's ``000000397133.jpg`` is 397133), else the
    input's position among the run's records (1, 2, ...); each entry also names its ``file_name``. Error
    records and videos have no entries."""
    entries = []
    for position, record in enumerate(records, start=1):
        if "detections" not in record:
            continue
        name = Path(str(record["input"])).stem
        image_id = int(name) if name.isdigit() else position
        for entry in coco_results(record["detections"], image_id, labels, category_ids):
            entries.append({**entry, "file_name": str(record["input"])})
    Path(path).write_text(json.dumps(entries), encoding="utf-8")
    return Path(path)
