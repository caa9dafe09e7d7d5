"""Object detection: images and videos in, boxes with labels and scores out (KerasHub RetinaNet), COCO mAP
by pycocotools, COCO / YOLO / Pascal VOC data."""

from dlapps.plugin import hookimpl
from dlapps_plugins.object_detection.object_detection_task import ObjectDetection


@hookimpl
def dlapps_register_tasks(register):
    register(ObjectDetection)
