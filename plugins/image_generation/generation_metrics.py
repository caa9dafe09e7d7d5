"""How good generated images are, measured against held-out real images.

- **class accuracy**: the share of generated images that the independent classifier
  (trained on the real training split only, saved with the model) assigns to the class
  that was asked for;
- **Fréchet distance**: between Gaussians fitted to features of generated images and of
  held-out real ones (Heusel et al., 2017, with the classifier's penultimate layer in
  place of Inception's), by numpy and scipy. Lower is better; the distance between two
  halves of the real held-out images is the reference that sampling noise alone gives.

The held-out images are split into two halves, A and B, stratified by class. The model
generates as many images of each class as half A has; both the generated images and half
A are compared with half B, so the two distances are measured alike. A trivial baseline,
independent per-pixel Gaussians with the mean and spread of each class's real pixels in
half A, is measured the same way.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

#: The seeds evaluation generates from: fixed, so evaluating a model twice gives the same figures.
EVAL_SEED = 1_000_000


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """The Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``; None with fewer than
    two rows on either side."""
    from scipy import linalg

    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # nearly singular covariances (few samples): a little ridge
        ridge = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + ridge) @ (cov_b + ridge))
    distance = np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root.real)
    return float(max(distance, 0.0))


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Features of a model without a classifier (unlabelled data): the image at 8x8, as numbers in 0..1."""
    import cv2

    small = [cv2.resize(image, (8, 8), interpolation=cv2.INTER_AREA).reshape(-1) for image in images]
    return np.asarray(small, np.float64) / 255.0


def gaussian_baseline(real: np.ndarray, labels, wanted, seed: int = 0) -> np.ndarray:
    """The trivial generator: for each wanted class, pixels drawn independently from normal distributions
    with that class's per-pixel mean and standard deviation in ``real``."""
    rng = np.random.default_rng(seed)
    real = real.astype(np.float64)
    out = np.empty((len(wanted), *real.shape[1:]), np.uint8)
    for i, label in enumerate(wanted):
        members = real if labels is None else real[labels == label]
        members = members if len(members) else real
        out[i] = np.clip(np.round(rng.normal(members.mean(axis=0), members.std(axis=0))), 0, 255)
    return out


def evaluate_generation(task, model, split, guidance: float | None = None) -> dict:
    """Class accuracy and Fréchet distance of the model's images (at the default guidance, or ``guidance``),
    against the held-out ``split``."""
    from dlapps.plugin import split_indices

    count = min(len(split), int(task.config["max_eval_images"]))
    chosen = np.sort(np.random.default_rng(0).permutation(len(split))[:count])
    split = split.take(chosen)
    real = np.stack([task.pixels(raw) for raw in split.inputs])
    targets = None if split.targets is None or not task.labels() else np.asarray(split.targets, np.int64)
    half_a, _, half_b = split_indices(len(split), (0.5, 0.0, 0.5), seed=0, strata=targets)
    wanted = np.full(len(half_a), task.null_class, np.int64) if targets is None else targets[half_a]

    options = {**task.default_options(), "steps": min(int(task.config["eval_steps"]), int(task.config["timesteps"]))}
    if guidance is not None:
        options["guidance"] = float(guidance)
    started = time.perf_counter()
    *_, (_, _, generated) = task.sample(model, wanted, EVAL_SEED + np.arange(len(wanted)), options=options)
    seconds = time.perf_counter() - started
    baseline = gaussian_baseline(real[half_a], None if targets is None else targets[half_a], wanted)

    judge = task.judge
    metrics: dict = {"generated": len(generated), "real_a": len(half_a), "real_b": len(half_b),
                     "steps": options["steps"], "guidance": options["guidance"],
                     "images_per_second": round(len(generated) / seconds, 2)}
    if judge is not None:
        features = {}
        for name, images in (("generated", generated), ("baseline", baseline), ("real", real)):
            features[name], probabilities = judge.features_and_probabilities(images)
            predicted = probabilities.argmax(axis=1)
            if name == "real":
                metrics["classifier_accuracy_real"] = float(np.mean(predicted == targets))
            else:
                metrics[f"class_accuracy{'' if name == 'generated' else '_baseline'}"] = \
                    float(np.mean(predicted == wanted))
        metrics["chance_accuracy"] = 1.0 / len(task.labels())
        metrics["features"] = "the independent classifier's penultimate layer (64 numbers)"
        real_a, real_b = features["real"][half_a], features["real"][half_b]
        generated_features, baseline_features = features["generated"], features["baseline"]
    else:
        metrics["features"] = "pixels at 8x8 (no classifier: the model has fewer than two classes)"
        real_a, real_b = pixel_features(real[half_a]), pixel_features(real[half_b])
        generated_features, baseline_features = pixel_features(generated), pixel_features(baseline)
    metrics["frechet_distance"] = frechet_distance(generated_features, real_b)
    metrics["frechet_distance_real"] = frechet_distance(real_a, real_b)
    metrics["frechet_distance_baseline"] = frechet_distance(baseline_features, real_b)
    _warn_unless_better(metrics)
    first = ("class_accuracy", "frechet_distance", "frechet_distance_real", "images_per_second")
    return {**{k: metrics[k] for k in first if k in metrics}, **metrics}  # the headline figures first


def _warn_unless_better(metrics: dict) -> None:
    """A loud warning when the images do not show their class clearly more often than the trivial baseline's
    (the Fréchet distance is checked by the core, through ``ImageGeneration.baseline``)."""
    accuracy = metrics.get("class_accuracy")
    if accuracy is None:
        return
    if accuracy < max(metrics["class_accuracy_baseline"], metrics["chance_accuracy"]) + 0.1:
        message = (f"WARNING: the image-generation model's images show the class asked for no more often than a "
                   f"trivial baseline's: class accuracy {accuracy:.1%} vs {metrics['class_accuracy_baseline']:.1%} "
                   f"for per-pixel Gaussians of each class's real images (chance {metrics['chance_accuracy']:.1%}). "
                   "Train longer or on more data before trusting its images.")
        warnings.warn(message, stacklevel=3)
        print(message, file=sys.stderr)


def format_generation_metrics(metrics: dict) -> str:
    def number(value, spec=".3f"):
        return "n/a" if value is None else format(value, spec)

    lines = [f"{metrics['generated']} images generated ({metrics['steps']} DDIM steps, guidance "
             f"{metrics['guidance']:g}) at {metrics['images_per_second']:.1f} images/s, against "
             f"{metrics['real_a']} + {metrics['real_b']} held-out real images",
             "",
             f"{'':<18}{'model':>9}{'baseline':>10}{'real vs real':>14}"]
    if "class_accuracy" in metrics:
        lines.append(f"{'class accuracy':<18}{metrics['class_accuracy']:>9.1%}"
                     f"{metrics['class_accuracy_baseline']:>10.1%}{'':>14}   chance {metrics['chance_accuracy']:.1%}")
    lines += [
        f"{'Fréchet distance':<18}{number(metrics['frechet_distance']):>9}"
        f"{number(metrics['frechet_distance_baseline']):>10}{number(metrics['frechet_distance_real']):>14}"
        "   lower is better",
        "",
        f"features: {metrics['features']}",
    ]
    if "classifier_accuracy_real" in metrics:
        lines.append(f"judge: a classifier trained on the real training split, "
                     f"{metrics['classifier_accuracy_real']:.1%} right on the held-out real images")
    lines.append("baseline: per-pixel Gaussians with the mean and spread of each class's real pixels")
    return "\n".join(lines)
