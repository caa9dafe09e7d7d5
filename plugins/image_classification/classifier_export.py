"""The classifier as an exported graph: uint8 images of any size in, class probabilities out."""

from __future__ import annotations

from dlapps.plugin import ExportGraph, resize_image_graph


def classifier_graph(model, size: int, labels: list[str]) -> ExportGraph:
    """Resize as ``preprocess`` does (``resize_image``, pixel for pixel), then the network (whose first layers
    scale the pixels, or apply a preset's normalisation) and its softmax."""

    def classify(images):
        return {"probabilities": model(resize_image_graph(images, size), training=False)}

    return ExportGraph(
        classify,
        inputs=[("images", (None, None, None, 3), "uint8",
                 "a batch of RGB images, all of one height and width (any); one image is a batch of 1")],
        outputs={"probabilities": f"(batch, {len(labels)}) the probability of each class, in the order of "
                                  "assets/labels.txt (the top one is dlapps' label)"},
        inside=f"resizing to {size}x{size} exactly as dlapps does (OpenCV's area filter when shrinking, bilinear "
               "when enlarging), the pixel normalisation, the network and its softmax",
        outside="decoding an image file to RGB uint8 (dlapps also turns grayscale, RGBA, palette and 16-bit images "
                "into RGB, and decodes very large JPEGs at a reduced scale), and sorting the top-k labels")
