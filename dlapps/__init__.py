"""dlapps: deep-learning applications behind one plugin host.

Script users::

    import dlapps
    dlapps.tasks()                                   # what is installed
    p = dlapps.load("image-classification")          # a Predictor
    p.predict("a.png"); p.predict([path, array, pil_image])

Plugin authors import everything they use from ``dlapps.plugin`` (see its
docstring). Importing this package does not import TensorFlow.
"""

from dlapps.quiet import quiet_tensorflow_import

quiet_tensorflow_import()  # before anything imports TensorFlow: its native start-up noise is filtered

from dlapps.api import batch_predict, evaluate, load, tasks, train  # noqa: E402
from dlapps.errors import (  # noqa: E402
    DataError,
    DlappsError,
    InvalidInputError,
    ModelNotFoundError,
    PresetError,
    UnknownTaskError,
    UnsafeModelError,
)
from dlapps.inference import Predictor  # noqa: E402
from dlapps.outputs import AudioOutput, FileOutput, ImageOutput  # noqa: E402

__version__ = "0.1.0"


def studio(task_names=None, train_missing: bool = True):
    """The Gradio studio: every installed task (or ``task_names``) as a tab; a missing default model
    trains in the background once the app is served (see ``dlapps.ui``)."""
    from dlapps.ui import studio as build_studio

    return build_studio(task_names, train_missing)


def task_app(task_name: str, train_missing: bool = True):
    """A Gradio app of one task, as its studio tab."""
    from dlapps.ui import studio as build_studio

    return build_studio([task_name], train_missing)


__all__ = [
    "AudioOutput", "DataError", "DlappsError", "FileOutput", "ImageOutput", "InvalidInputError",
    "ModelNotFoundError", "Predictor", "PresetError", "UnknownTaskError", "UnsafeModelError", "batch_predict",
    "evaluate", "load", "studio", "task_app", "tasks", "train",
]
