"""The plugin API: everything a dlapps plugin may use, in one place.

A plugin imports only from here (an import-linter contract in the tests keeps
it so), which is what lets the core change behind it::

    from dlapps.plugin import Dataset, InvalidInputError, Option, Split, Task, hookimpl

    class Sentiment(Task):
        name = "sentiment"
        ...

    @hookimpl
    def dlapps_register_tasks(register):
        register(Sentiment)

Importing this module does not import TensorFlow or Gradio.
"""

from dlapps.caching import PerModel
from dlapps.data import Dataset, Split, read_class_folders, split_dataset, split_indices
from dlapps.errors import DataError, DlappsError, ExportError, InvalidInputError, PresetError
from dlapps.hookspecs import hookimpl
from dlapps.image_graph import cv2_resize_graph, resize_image_graph
from dlapps.inputs import (
    AUDIO_SAMPLE_RATE,
    FILE_KINDS,
    DecodedImage,
    check_rows,
    exif_orientation,
    read_audio,
    read_image,
    report_skipped,
    resize_image,
    upright_box,
)
from dlapps.batch import read_input_file, read_text_lines
from dlapps.inference import stack_inputs
from dlapps.label_outputs import LinearBaseline, classification_report, format_report, label_result
from dlapps.layers import float32_output, predict_on_batch
from dlapps.ood import mark as mark_in_distribution
from dlapps.options import Option, Param
from dlapps.outputs import AudioOutput, FileOutput, ImageOutput
from dlapps.presets import from_preset, load_preprocessor, save_preprocessor
from dlapps.recipes import Recipe, TrainingClock, WarmupCosine, warmup_cosine_class
from dlapps.store import generated_data, home
from dlapps.task import Baseline, ExportGraph, Pieces, Task, metric_label
from dlapps.ui import image_input, model_summary, ood_notice, option_control, raise_for_ui

__all__ = [
    "AUDIO_SAMPLE_RATE", "AudioOutput", "Baseline", "DataError", "Dataset", "DecodedImage", "DlappsError", "ExportError",
    "ExportGraph", "FILE_KINDS",
    "FileOutput", "ImageOutput", "LinearBaseline", "classification_report", "format_report", "label_result", "InvalidInputError", "Option", "Param", "PerModel", "Pieces", "PresetError", "Recipe", "Split", "Task", "TrainingClock", "WarmupCosine",
    "check_rows", "cv2_resize_graph", "exif_orientation", "upright_box", "float32_output", "from_preset", "generated_data", "home", "hookimpl", "image_input", "load_preprocessor", "mark_in_distribution", "predict_on_batch",
    "metric_label", "model_summary", "ood_notice", "option_control", "raise_for_ui", "read_audio", "read_image", "read_input_file",
    "read_class_folders", "read_text_lines", "report_skipped", "resize_image", "resize_image_graph", "save_preprocessor", "split_dataset",
    "split_indices", "stack_inputs", "warmup_cosine_class",
]
