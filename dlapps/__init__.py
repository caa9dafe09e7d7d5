"""dlapps: deep-learning applications behind one plugin host.

Script users::

    import dlapps
    dlapps.tasks()                                   # what is installed
    p = dlapps.load("image-classification")          # a Predictor
    p.predict("a.png"); p.predict([path, array, pil_image])

Plugin authors import everything they use from ``dlapps.plugin`` (see its
docstring). Importing this package does not import TensorFlow.
"""

from dlapps.api import evaluate, load, tasks, train
from dlapps.errors import (
    DataError,
    DlappsError,
    InvalidInputError,
    ModelNotFoundError,
    PresetError,
    UnknownTaskError,
    UnsafeModelError,
)
from dlapps.inference import Predictor
from dlapps.outputs import AudioOutput, FileOutput, ImageOutput

__version__ = "0.1.0"


def studio(task_names=None, train_missing: bool = True):
    """The Gradio studio: every installed task (or ``task_names``) as a tab."""
    from dlapps.ui import studio as build_studio

    return build_studio(task_names, train_missing)


def task_app(task_name: str):
    """A Gradio app of one task (its model trained first if there is none)."""
    from dlapps.ui import task_blocks

    return task_blocks(task_name)


__all__ = [
    "AudioOutput", "DataError", "DlappsError", "FileOutput", "ImageOutput", "InvalidInputError",
    "ModelNotFoundError", "Predictor", "PresetError", "UnknownTaskError", "UnsafeModelError", "evaluate",
    "load", "studio", "task_app", "tasks", "train",
]
