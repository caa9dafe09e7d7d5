"""Image classification: any image in, the top-k labels and a Grad-CAM heatmap out."""

from dlapps.plugin import hookimpl
from dlapps_plugins.image_classification.image_classifier_task import ImageClassification


@hookimpl
def dlapps_register_tasks(register):
    register(ImageClassification)
