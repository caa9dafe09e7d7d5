"""The image-classification task: declarations, plus the few steps only it knows."""

from __future__ import annotations

import numpy as np

import dlapps
from dlapps.inputs import read_image, resize_image


class ImageClassification(dlapps.Task):
    name = "image-classification"
    title = "Image classification"
    description = "Any image in, the top-k labels with probabilities and a Grad-CAM heatmap out."
    input_kind = "image"
    output_kind = "labels"
    monitor = "val_loss"
    default_config = {
        "image_size": 64,        # the digits dataset asks for 16 (they are 8x8)
        "labels": [],
        "top_k": 5,
        "filters": [32, 64, 128],
        "dropout": 0.3,
        "augment": False,
        "epochs": 60,
        "batch_size": 64,
        "patience": 10,
        "learning_rate": 2e-3,
    }

    # -- data --------------------------------------------------------------
    def default_data(self, seed=0):
        from dlapps_plugins.image_classification.image_folder_data import digits_dataset

        return digits_dataset()

    def load_data(self, path, seed=0):
        from dlapps_plugins.image_classification.image_folder_data import folder_dataset

        return folder_dataset(path, seed=seed)

    def load_eval_data(self, path):
        from dlapps_plugins.image_classification.image_folder_data import folder_split

        return folder_split(path, self.config["labels"])

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.image_classification.cnn_classifier import build_cnn

        return build_cnn(config)

    def load_preset(self, preset, config):
        from dlapps_plugins.image_classification.keras_hub_presets import classifier_from_preset

        return classifier_from_preset(preset, config)

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers for preset-based models

        return {}

    def write_assets(self, assets_dir, dataset):
        from dlapps_plugins.image_classification.image_folder_data import write_examples

        (assets_dir / "labels.txt").write_text("\n".join(self.config["labels"]) + "\n", encoding="utf-8")
        if dataset is not None:
            write_examples(self, dataset.test, assets_dir / "examples")

    # -- inference ---------------------------------------------------------
    def is_single(self, raw):
        if isinstance(raw, np.ndarray):
            return raw.ndim in (2, 3)
        return not isinstance(raw, (list, tuple))

    def preprocess(self, raw):
        return resize_image(read_image(raw), self.config["image_size"])

    def postprocess(self, output):
        labels = self.config["labels"]
        probabilities = np.asarray(output, dtype=np.float64)
        order = np.argsort(-probabilities)[: max(1, min(self.config["top_k"], len(labels)))]
        top = [{"label": labels[i], "score": float(probabilities[i])} for i in order]
        return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}

    def summarize(self, result):
        return ", ".join(f"{t['label']} ({t['score']:.1%})" for t in result["top_k"][:3])

    def evaluate(self, predictor, split):
        from dlapps_plugins.image_classification.classification_metrics import classification_report

        return classification_report(predictor, split, self.config["labels"])

    def format_metrics(self, metrics):
        from dlapps_plugins.image_classification.classification_metrics import format_report

        return format_report(metrics)

    # -- UI ----------------------------------------------------------------
    def examples(self, predictor):
        folder = getattr(self, "assets_dir", None)
        return sorted(str(p) for p in folder.glob("examples/*.png")) if folder else []

    def ui(self, predictor):
        from dlapps_plugins.image_classification.image_classifier_ui import build_ui

        build_ui(self, predictor)
