"""The image classifier's part of the training plan: input size, depth, colour augmentation and class weights,
each chosen from the user's images.

What the choices are for (measured on generated user-like folders, ``benchmarks/user_data.py``): a folder of
coloured shapes on noisy backgrounds, 60 images a class, was classified at chance by the old fixed recipe
(64 px, 150 steps) while training accuracy rose: the network fitted the colours and backgrounds of the few
training images, which say nothing about the class there, and never learned the shapes. Removing the colour
cue in training (random hue, grey and inverted copies) and giving it 2,000 steps at 32 px gets it above 0.9.
Colour is removed only when the data shows it carries no class information: a colour-histogram classifier,
cross-validated on the training split, scores no better on the images than on the same images with their
colours scrambled.
"""

from __future__ import annotations

import math

import numpy as np

#: Input sizes the plan picks from; small data gets at most ``SMALL_DATA_SIZE`` (more steps in the same time
#: beat more pixels when there are few images), larger data at most ``LARGE_DATA_SIZE``.
SIZES = (16, 32, 48, 64)
SMALL_DATA_SIZE, LARGE_DATA_SIZE, LARGE_DATA = 32, 64, 3000
#: Colour histograms that lose less than this share of the room above the majority class when the colours are
#: scrambled carry no class information worth keeping: colour augmentation then makes the network learn shape.
COLOUR_INFORMATIVE_SHARE = 0.25
#: Classes this much rarer than the most frequent one get a larger weight in the loss.
IMBALANCE_RATIO = 1.5


def plan_images(task, dataset, recipe) -> dict:
    """Choose ``image_size``, ``filters``, ``colour_jitter``, ``augment`` and ``class_weights`` for ``dataset``;
    returns the training images it read (``{index: RGB array}``), for the classical baseline to reuse."""
    from dlapps.plugin import resize_image
    from dlapps_plugins.image_classification.classical_baseline import decode_sample

    train = dataset.train
    labels = np.asarray(train.targets)
    decoded = decode_sample(train, 400)  # read once for every measure below
    short = float(np.median([min(_original_size(image)) for image in decoded.values()] or [0]))
    cap = LARGE_DATA_SIZE if len(train) >= LARGE_DATA else SMALL_DATA_SIZE
    size = max([s for s in SIZES if s <= min(short, cap)] or [SIZES[0]])
    recipe.choose("image_size", size, f"the images' median short side is {short:.0f} px; at most {cap} px for "
                  f"{len(train):,} training images ({'' if cap == LARGE_DATA_SIZE else 'fewer than '}"
                  f"{LARGE_DATA:,}: more steps at a smaller size learn more than fewer at a larger one)")
    size = int(recipe.config["image_size"])
    stages = max(3, int(math.log2(size)))
    recipe.choose("filters", [min(256, 32 * 2 ** i) for i in range(stages)],
                  f"{stages} convolution stages, halving {size} px down to a {max(1, size // 2 ** (stages - 1))} px "
                  "map, so that the last stage sees the whole object")
    recipe.choose("augment", True, "random shifts and flips in training: a few hundred images are too few to learn "
                  "position from")
    recipe.choose("standardize", True, "each image minus its own mean over its own spread: users' photos differ in "
                  "brightness and contrast")
    recipe.choose("fill_mode", "reflect", "shifted and turned images are filled by reflection: a black border would be "
                  "a cue no real image has")
    recipe.choose("shift", 0.1, "shifts of up to 10% of the size")
    recipe.choose("zoom", 0.0, "no zoom (measured on the user-data zoo: shifts and turns suffice)")
    spread = orientation_spread(list(decoded.values())[:200])
    turned = spread is not None and spread >= ORIENTATION_SPREAD
    recipe.choose("rotation", 0.5 if turned else 0.0,
                  (f"the edges' main directions vary from image to image (spread {spread:.2f} of 1): the classes "
                   "come at any angle, so training turns images by any angle" if turned else
                   f"the edges' main directions are much the same in every image (spread {spread or 0:.2f} of 1): "
                   "the images are upright, so training does not turn them"))
    recipe.choose("flip", "both" if recipe.config["rotation"] else True,
                  "mirrored left-right and upside down, as turns allow" if recipe.config["rotation"]
                  else "mirrored left-right only")
    if recipe.is_set("colour_jitter"):
        recipe.choose("colour_jitter", recipe.config.get("colour_jitter"), "")
    else:
        colour, scrambled, majority = colour_only_accuracy([resize_image(image, 32) for image in decoded.values()],
                                                           labels[list(decoded)])
        informative = colour - scrambled >= COLOUR_INFORMATIVE_SHARE * (1 - majority)
        recipe.choose("colour_jitter", not informative,
                      f"a colour-histogram classifier scores {colour:.2f} on the training images (cross-validated) "
                      f"and {scrambled:.2f} on the same images with their colours scrambled as the augmentation "
                      f"would (majority class {majority:.2f}): colour "
                      + ("tells the classes apart, so colours are kept" if informative else
                         "says nothing about the class, so training sees random channel orders, grey and inverted "
                         "copies, and the network learns shape and texture instead of the training images' colours"))
    counts = np.bincount(labels, minlength=len(recipe.config["labels"]))
    if counts.max() > IMBALANCE_RATIO * max(1, counts.min()):
        weights = [round(float(len(labels) / (len(counts) * max(1, c))), 3) for c in counts]
        recipe.choose("class_weights", weights, f"classes of {counts.min()} to {counts.max()} training images: "
                      "each class weighs the same in the loss (weight = images / (classes x class images))")
    else:
        recipe.choose("class_weights", None, f"classes of {counts.min()} to {counts.max()} training images: "
                      "balanced enough")
    return decoded


#: The spread of the images' main edge directions (0: all alike, 1: any) above which they come at any angle:
#: digits and upright things measure below 0.1, shapes drawn at any angle 0.3 to 0.6.
ORIENTATION_SPREAD = 0.2


def orientation_spread(images) -> float | None:
    """How much the main direction of the edges varies between ``images``: 1 minus the length of the mean of
    each image's main gradient direction on the circle (directions taken modulo 90 degrees, so that the
    horizontal and vertical edges of upright things count as one direction). Near 0 for upright photos and
    drawings, near 1 for things that come at any angle. None for fewer than 8 images."""
    import cv2

    from dlapps.plugin import resize_image

    angles = []
    for image in images:
        grey = cv2.cvtColor(resize_image(np.asarray(image), 64), cv2.COLOR_RGB2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        magnitude, angle = np.hypot(gx, gy), np.arctan2(gy, gx)
        if magnitude.sum() <= 0:
            continue
        vector = (magnitude * np.exp(4j * angle)).sum()  # 4 x the angle: modulo 90 degrees
        angles.append(np.angle(vector))
    if len(angles) < 8:
        return None
    return float(1.0 - abs(np.exp(1j * np.array(angles)).mean()))


def _original_size(image) -> tuple[int, int]:
    """(width, height) of the file an image was decoded from (large JPEGs are decoded smaller)."""
    return tuple(getattr(image, "original_size", None) or (image.shape[1], image.shape[0]))


def colour_only_accuracy(images, labels, seed: int = 0) -> tuple[float, float, float]:
    """Cross-validated accuracy of a logistic regression on colour histograms alone, on ``images`` (RGB arrays)
    with ``labels`` as they are and with their colours scrambled (channels in a random order, half inverted: what
    ``colour_jitter`` does), and the majority class's accuracy. The histograms also carry how much of the image
    the object covers, which scrambling keeps: the difference is what the colours themselves say."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    labels = np.asarray(labels)
    counts = np.bincount(labels)
    majority = float(counts.max() / len(labels))
    folds = int(min(3, counts[counts > 0].min()))
    if folds < 2:
        return majority, majority, majority
    rng = np.random.default_rng(seed)
    scrambled = []
    for image in images:
        image = np.asarray(image)[..., rng.permutation(3)]
        scrambled.append(255 - image if rng.random() < 0.5 else image)
    scores = []
    for group in (images, scrambled):
        features = np.stack([colour_histogram(image) for image in group])
        scores.append(float(cross_val_score(LogisticRegression(max_iter=2000), features, labels,
                                            cv=StratifiedKFold(folds, shuffle=True, random_state=seed)).mean()))
    return scores[0], scores[1], majority


def colour_histogram(image: np.ndarray, bins: int = 4) -> np.ndarray:
    """A normalized ``bins``^3 RGB histogram of ``image`` (uint8), plus each channel's mean and spread."""
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=-1)
    rgb = rgb[..., :3].reshape(-1, 3).astype(np.float32)
    histogram, _ = np.histogramdd(rgb, bins=(bins,) * 3, range=((0, 256),) * 3)
    return np.concatenate([histogram.ravel() / len(rgb), rgb.mean(0) / 255.0, rgb.std(0) / 255.0])


