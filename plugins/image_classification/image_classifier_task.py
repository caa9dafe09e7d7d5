"""The image-classification task: declarations, plus the few steps only it knows."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import Baseline, Option, Param, Task, read_image, resize_image



class ImageClassification(Task):
    name = "image-classification"
    title = "Image classification"
    description = "Any image in, the top-k labels with probabilities and a Grad-CAM heatmap out."
    input_kind = "image"
    output_kind = "labels"
    training_seconds = 60  # the default model on 2 CPU cores (benchmarks/)
    baseline = Baseline("accuracy", "majority_accuracy", "always predicting the most frequent class")
    monitor = "val_loss"
    predict_options = {
        "top_k": Option(int, 5, "how many labels to return", min=1, max=lambda config: len(config["labels"])),
    }
    default_config = {
        "image_size": 64,        # the digits dataset asks for 16 (they are 8x8)
        "labels": [],
        "filters": [32, 64, 128],
        "dropout": 0.3,
        "augment": False,         # random shifts and zooms in training (and flips, unless flip is false)
        "flip": True,
        "shift": 0.08,            # at most this share of the size
        "zoom": 0.1,              # a share, or [low, high]: negative zooms in, positive out
        "dark_background": False,  # invert images with a light border (the digits model: any polarity)
        "epochs": 60,
        "batch_size": 64,
        "patience": 10,
        "learning_rate": 2e-3,
    }
    search_space = {  # dlapps tune image-classification
        "learning_rate": Param(float, 3e-4, 1e-2, log=True),
        "dropout": Param(float, 0.0, 0.5),
        "filters": Param(choices=([16, 32, 64], [32, 64, 128], [32, 64, 128, 256])),
        "image_size": Param(choices=(16, 32, 64)),
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

        return folder_split(path, self.labels())

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.image_classification.cnn_classifier import build_cnn

        return build_cnn(config)

    def load_preset(self, preset, config):
        from dlapps_plugins.image_classification.keras_hub_presets import classifier_from_preset

        return classifier_from_preset(preset, config)

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers for preset-based models

        from dlapps_plugins.image_classification.cnn_classifier import dark_background_class

        return {"dlapps_image_classification>DarkBackground": dark_background_class()}

    def export_graph(self, model, options):
        from dlapps_plugins.image_classification.classifier_export import classifier_graph

        return classifier_graph(model, int(self.config["image_size"]), self.labels())

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        image = read_image(raw)
        return resize_image(image, self.config["image_size"]), {"original_size": image.original_size}

    def postprocess(self, output, context, options):
        labels = self.labels()
        probabilities = np.asarray(output, dtype=np.float64)
        order = np.argsort(-probabilities)[: options["top_k"]]
        top = [{"label": labels[i], "score": float(probabilities[i])} for i in order]
        return {"label": top[0]["label"], "score": top[0]["score"], "top_k": top}

    def summarize(self, result):
        return ", ".join(f"{t['label']} ({t['score']:.1%})" for t in result["top_k"][:3])

    def evaluate(self, predictor, split):
        from dlapps_plugins.image_classification.classification_metrics import classification_report

        return classification_report(predictor, split, self.labels())

    def format_metrics(self, metrics):
        from dlapps_plugins.image_classification.classification_metrics import format_report

        return format_report(metrics)

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.image_classification.image_classifier_ui import build_ui

        build_ui(self, predictor)
