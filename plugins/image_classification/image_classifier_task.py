"""The image-classification task: declarations, plus the few steps only it knows."""

from __future__ import annotations

import numpy as np

from dlapps.plugin import (Baseline, Option, Param, PerModel, Task, classification_report, format_report,
                           predict_on_batch, read_image, resize_image)

#: Each model with its pooled features as a second output (for the out-of-distribution check), built once.
_WITH_FEATURES = PerModel()


class ImageClassification(Task):
    name = "image-classification"
    title = "Image classification"
    description = "Any image in, the top-k labels with probabilities and a Grad-CAM heatmap out."
    input_kind = "image"
    output_kind = "labels"
    training_seconds = 230  # the default model on 2 CPU cores (benchmarks/: 213-244 s with the 2,000-step plan)
    baseline = (Baseline("accuracy", "majority_accuracy", "always predicting the most frequent class"),
                Baseline("accuracy", "classical_accuracy", "a logistic regression on gradient and colour histograms",
                         margin=0.0, kind="classical"))
    #: The classical baseline (``classical_baseline.ClassicalBaseline``): fitted when training plans, saved
    #: with the model.
    classical = None
    ood_note = "the Mahalanobis distance of the network's pooled features to the nearest class"
    monitor = "val_accuracy"  # not val_loss: on a few validation images a model guessing uniformly has the lowest loss
    predict_options = {
        "top_k": Option(int, 5, "how many labels to return", min=1, max=lambda config: len(config["labels"])),
    }
    default_config = {
        "image_size": 64,        # the digits dataset asks for 16 (they are 8x8)
        "labels": [],
        "filters": [32, 64, 128],
        "dropout": 0.3,
        "augment": False,         # random shifts and zooms in training (and flips, unless flip is false)
        "flip": True,             # left-right; "both": upside down too
        "shift": 0.08,            # at most this share of the size
        "zoom": 0.1,              # a share, or [low, high]: negative zooms in, positive out
        "rotation": 0.0,          # random turns of at most this share of a full turn (0.5: any angle)
        "fill_mode": "constant",  # how shifted and turned images are filled: constant (black) or reflect
        "standardize": False,     # each image minus its mean over its spread (the plan: for users' folders)
        "dark_background": False,  # invert images with a light border (the digits model: any polarity)
        "colour_jitter": False,    # random hue, grey and inverted copies in training (the plan: when colour says nothing)
        "class_weights": None,     # one loss weight per class (the plan: for imbalanced classes)
        # The plan (image_recipe.py, dlapps/recipes.py) chooses image_size, filters, augment, colour_jitter and
        # class_weights for a user's folder, and the steps: 60 passes over the data, 2,000 to 6,000 steps.
        "epochs": 60,
        "min_steps": 2000,
        "max_steps": 6000,
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

    def plan(self, dataset, recipe):
        from dlapps_plugins.image_classification.classical_baseline import WHAT, fit_on_split
        from dlapps_plugins.image_classification.image_recipe import plan_images

        decoded = plan_images(self, dataset, recipe)
        self.classical = fit_on_split(dataset.train, len(self.labels()), decoded=decoded)
        if self.classical is not None:
            recipe.note(f"the classical baseline to beat: {WHAT}")

    def save_state(self, folder):
        if self.classical is not None:
            self.classical.save(folder)

    def load_state(self, folder):
        from dlapps_plugins.image_classification.classical_baseline import ClassicalBaseline

        self.classical = ClassicalBaseline.load(folder)

    def training_example(self, raw, target):
        """The resized image and its class, weighted by ``class_weights`` when the plan chose them."""
        example = super().training_example(raw, target)
        weights = self.config.get("class_weights")
        if target is None or not weights:
            return example
        return (*example, np.float32(weights[int(target)]))

    # -- model -------------------------------------------------------------
    def build_model(self, config):
        from dlapps_plugins.image_classification.cnn_classifier import build_cnn

        return build_cnn(config)

    def load_preset(self, preset, config):
        from dlapps_plugins.image_classification.keras_hub_presets import classifier_from_preset

        return classifier_from_preset(preset, config)

    def custom_objects(self):
        import keras_hub  # noqa: F401  registers KerasHub layers for preset-based models

        from dlapps_plugins.image_classification.cnn_classifier import (colour_jitter_class, dark_background_class,
                                                                         standardization_class)

        return {"dlapps_image_classification>DarkBackground": dark_background_class(),
                "dlapps_image_classification>ColourJitter": colour_jitter_class(),
                "dlapps_image_classification>PerImageStandardization": standardization_class()}

    def export_graph(self, model, options):
        from dlapps_plugins.image_classification.classifier_export import classifier_graph

        return classifier_graph(model, int(self.config["image_size"]), self.labels())

    # -- inference ---------------------------------------------------------
    def preprocess(self, raw, options):
        image = read_image(raw)
        return resize_image(image, self.config["image_size"]), {"original_size": image.original_size}

    def forward(self, model, batch, options):
        """The class probabilities, and the pooled features the out-of-distribution check measures."""
        from dlapps_plugins.image_classification.cnn_classifier import with_features

        return predict_on_batch(_WITH_FEATURES.get(model, with_features), batch)

    def ood_features(self, output):
        return output.get("features") if isinstance(output, dict) else None

    def summarize(self, result):
        return ", ".join(f"{t['label']} ({t['score']:.1%})" for t in result["top_k"][:3])

    def evaluate(self, predictor, split):
        return classification_report(predictor, split, self.labels(), classical=self.classical)

    def format_metrics(self, metrics):
        return format_report(metrics, "logistic regression on gradient and colour histograms")

    # -- UI ----------------------------------------------------------------
    def ui(self, predictor):
        from dlapps_plugins.image_classification.image_classifier_ui import build_ui

        build_ui(self, predictor)
