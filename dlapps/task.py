"""The Task base class: the one interface every plugin implements.

A plugin writes only what is specific to its task (the model, its data, how one
raw input becomes model input and one model output becomes plain data, the
field's metric and the UI). The core does the rest: runtime, training loop,
saving, loading, batching, the CLI and the studio.

Keep this module, and the module that defines a Task subclass, free of
TensorFlow imports: import Keras inside methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

from dlapps.errors import PresetError

#: Input kinds the core knows how to read from files, and the suffixes it looks for.
FILE_KINDS = {
    "image": (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"),
    "audio": (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif"),
}


class Pieces(list):
    """What ``Task.preprocess`` returns when one raw input becomes several model inputs.

    A long text becomes its sentences, a long recording its windows. The
    predictor runs every piece (batched with the other inputs' pieces) and gives
    their results, in order, to ``Task.combine``. No pieces at all (an empty
    text) is fine: ``combine([])`` gives the result.
    """


@dataclass
class Split:
    """One split of a dataset: raw inputs (paths, arrays, strings, ids) and their targets."""

    inputs: Sequence[Any]
    targets: Any = None
    names: Sequence[str] | None = None  # how to refer to each input in reports

    def __len__(self) -> int:
        return len(self.inputs)

    def name(self, i: int) -> str:
        return str(self.names[i]) if self.names is not None else f"#{i}"

    def head(self, n: int) -> "Split":
        """The first ``n`` examples (splits are shuffled or stratified when built)."""
        names = None if self.names is None else self.names[:n]
        targets = None if self.targets is None else self.targets[:n]
        return Split(self.inputs[:n], targets, names)


@dataclass
class Dataset:
    """Train, validation and test splits, plus what the model card says about them."""

    train: Split
    validation: Split
    test: Split
    description: str = ""
    config: dict = field(default_factory=dict)  # task config from the data (labels, sizes); the user's --set wins

    def head(self, n: int) -> "Dataset":
        """At most ``n`` examples per split, for quick runs."""
        return Dataset(self.train.head(n), self.validation.head(n), self.test.head(n),
                       f"{self.description} (first {n} examples per split)", self.config)


class Task:
    """Base class of every dlapps task. Subclasses are mostly declarations."""

    #: CLI / API key, e.g. ``image-classification``.
    name: str = ""
    #: Human title for the studio tab, e.g. ``Image classification``.
    title: str = ""
    #: One sentence for ``dlapps plugins`` and the studio.
    description: str = ""
    #: What one input is: ``image`` (read from files), ``text``, ``audio``, ``id``...
    input_kind: str = "text"
    #: What one output is: ``labels``, ``text``, ``ranked-items``...
    output_kind: str = "labels"
    #: Defaults of the task config; data and the user's options update a copy.
    default_config: dict = {}
    #: Options of ``predict`` with their defaults (e.g. ``{"beam_size": 4}``); the CLI takes
    #: them as ``dlapps predict --set KEY=VALUE`` and ``dlapps plugins`` lists them.
    predict_options: dict = {}
    #: The field of a JSONL / CSV record that holds the input (``dlapps predict --input``).
    input_field: str = "input"
    #: Extra ``dlapps predict`` flags that give inputs, ``{flag: (METAVAR, help)}``, e.g.
    #: ``{"similar_to": ("ITEM", "movies like this one")}`` for ``--similar-to ITEM``; ``cli_inputs`` reads them.
    input_flags: dict = {}
    #: The Keras metric that early stopping watches.
    monitor: str = "val_loss"
    #: Filled in by the host: the plugin that registered the task.
    plugin: str = ""
    #: Set when a saved model is loaded: its assets/ folder.
    assets_dir = None

    def __init__(self, config: dict | None = None):
        self.config = copy.deepcopy(self.default_config)
        self.config.update(config or {})

    # -- data --------------------------------------------------------------
    def default_data(self, seed: int = 0) -> Dataset:
        """The small offline dataset the task ships or generates."""
        raise NotImplementedError(f"task {self.name!r} has no default data")

    def load_data(self, path: str, seed: int = 0) -> Dataset:
        """User data in the field's standard on-disk format."""
        raise NotImplementedError(f"task {self.name!r} cannot read user data")

    def load_eval_data(self, path: str) -> Split:
        """A whole folder or file of labelled data, used as one test split by ``dlapps eval --data``."""
        return self.load_data(path).test

    # -- model -------------------------------------------------------------
    def build_model(self, config: dict):
        """A fresh, uncompiled ``keras.Model`` for ``config``."""
        raise NotImplementedError

    def compile_model(self, model, jit_compile: bool = False) -> None:
        """Attach optimizer, loss and metrics. The default suits a softmax classifier."""
        import keras

        model.compile(
            optimizer=keras.optimizers.Adam(self.config.get("learning_rate", 1e-3)),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
            jit_compile=jit_compile,
        )

    def adapt(self, dataset: Dataset) -> None:
        """Learn preprocessing state (a tokenizer, a vocabulary) from the training data.

        Called by training before ``build_model`` when no preset is given; put
        sizes the model needs (e.g. ``vocab_size``) into ``self.config``.
        """

    def training_example(self, raw, target):
        """One training example: ``(model input, target)`` or ``(model input, target, sample weight)``.

        The default pairs ``preprocess(raw)`` with the target as it is; a
        sequence-to-sequence task feeds the target to the decoder too.
        """
        return self.preprocess(raw), target

    def load_preset(self, preset: str, config: dict):
        """A model that starts from a pretrained preset (a name or a local directory)."""
        raise PresetError(f"task {self.name!r} does not support presets; received preset={preset!r}")

    def write_assets(self, assets_dir, dataset: Dataset | None) -> None:
        """Write files the saved model should carry (label lists, example inputs)."""

    def custom_objects(self) -> dict:
        """Registered Keras classes the saved model needs; import their modules here."""
        return {}

    # -- inference ---------------------------------------------------------
    def is_single(self, raw) -> bool:
        """Whether ``predict(raw)`` got one input (True) or a collection of inputs."""
        return not isinstance(raw, (list, tuple))

    def cli_inputs(self, flag: str, value: str) -> list:
        """(record id, raw input) pairs for ``dlapps predict --FLAG VALUE``, one of ``input_flags``."""
        raise NotImplementedError(f"task {self.name!r} declares the input flag {flag!r} but does not read it")

    def check_options(self, options: dict) -> dict:
        """Validate the predict options (all of them, defaults filled in) before any input is read.

        Raise InvalidInputError saying what was expected; return the options to use.
        """
        return options

    def preprocess(self, raw):
        """One raw input -> one model input (an array, or a dict or tuple of arrays; no batch axis).

        Return ``Pieces([...])`` to split one input into several (see ``combine``).
        """
        raise NotImplementedError

    def forward(self, model, batch, **options):
        """The model on one batch of model inputs; the only step that touches the device.

        ``options`` are ``predict_options`` as the caller set them. Override for
        more than one call of the model per batch (e.g. a decoding loop).
        """
        return model.predict_on_batch(batch)

    def postprocess(self, output) -> dict:
        """One model output (no batch axis) -> plain JSON-able data."""
        raise NotImplementedError

    def combine(self, results: list) -> dict:
        """The result of an input that ``preprocess`` split into ``Pieces``, from its pieces' results."""
        raise NotImplementedError(f"task {self.name!r} split an input into pieces but does not combine them")

    def summarize(self, result: dict) -> str:
        """One line a person reads, for ``dlapps predict`` without ``--output``."""
        return ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, (list, dict)))

    def evaluate(self, predictor, split: Split) -> dict:
        """The field's standard metrics on ``split``, as plain data."""
        raise NotImplementedError

    def format_metrics(self, metrics: dict) -> str:
        """How ``dlapps eval`` prints the metrics."""
        import json

        return json.dumps(metrics, indent=2)

    # -- UI ----------------------------------------------------------------
    def examples(self, predictor) -> list:
        """Example inputs for the UI, e.g. paths of images saved with the model."""
        return []

    def ui(self, predictor) -> None:
        """Build this task's Gradio components inside the current ``gr.Blocks``."""
        from dlapps.ui import default_task_ui

        default_task_ui(self, predictor)
