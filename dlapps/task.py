"""The Task base class: the one interface every plugin implements (contract v2).

A plugin writes only what is specific to its task; the core does the rest.
The flow of one prediction::

    model_input, context = task.preprocess(raw, options)      # in a thread pool, per input
    outputs = task.forward(model, batch_of_model_inputs, options)  # the only step on the device
    result = task.postprocess(output_row, context, options)   # per input, plain data

``context`` is whatever postprocess must know about its input (the original
image size, the source text, warnings): it never goes through the device.
``preprocess`` may return ``Pieces`` (a long text's sentences, a recording's
windows): each piece is predicted (batched with the other inputs' pieces) and
``combine`` joins their results.

State (tokenizers, vocabularies, label lists) lives in plain attributes that
``adapt`` (before training) or ``load_preset`` set; the store calls
``save_state(dir)`` when it saves a model and ``load_state(dir)`` once when it
loads one, after the task is made from its config and before the Keras model is
loaded.

Keep this module, and the module that defines a Task subclass, free of
TensorFlow imports: import Keras inside methods.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from dlapps.data import Dataset, Split
from dlapps.errors import MissingMethodError, PresetError
from dlapps.inputs import FILE_KINDS  # noqa: F401  (re-exported: the input kinds read from files)
from dlapps.metric_names import baselines_of, metric_label  # noqa: F401  (baselines_of: re-exported)
from dlapps.options import Option, Param, check_options  # noqa: F401  (Param: search_space's type)


class Pieces(list):
    """What ``Task.preprocess`` returns when one raw input becomes several model inputs.

    Each item is a ``(model_input, piece_context)`` pair; ``context`` is about
    the whole input and goes to ``Task.combine``. No pieces at all (an empty
    text, a silent recording) is fine: ``combine([], context, options)`` gives
    the result without running the model.
    """

    def __init__(self, pairs=(), context=None):
        super().__init__(pairs)
        self.context = context


@dataclass(frozen=True)
class Baseline:
    """What a trained model must clearly beat: the held-out ``metric`` against a ``baseline`` (both keys of
    what ``Task.evaluate`` returns), e.g. accuracy against always predicting the majority class.
    "Clearly" is by ``margin`` (relative: 0.05 is 5% of the baseline's value) and at least ``floor``
    (absolute: where the baseline scores about 0, as a mean box does in mAP, twice nothing is not clearly
    better). ``kind`` is ``trivial`` (a
    model no better is useless: always the majority class, a copy of the source) or ``classical`` (a cheap
    model fitted on the same training split in seconds, such as scikit-learn's logistic regression on
    gradient histograms: a network no better is not worth its training)."""

    metric: str
    baseline: str
    what: str
    higher_is_better: bool = True
    margin: float = 0.05
    kind: str = "trivial"
    floor: float = 0.0

    def check(self, metrics: dict, task=None) -> dict | None:
        """``{"metric", "value", "baseline", "better", "message"}``, or None when a value is missing; the message
        names the metric as ``task`` names it (``Task.metric_names``)."""
        value, reference = metrics.get(self.metric), metrics.get(self.baseline)
        if not isinstance(value, (int, float)) or not isinstance(reference, (int, float)):
            return None
        perfect = 1.0 if self.higher_is_better else 0.0  # accuracy 1, error rate 0
        if self.kind == "classical" and value == reference == perfect:  # both perfect: nothing to tell apart
            better, verdict = True, "as good as (both perfect)"
        else:
            if self.higher_is_better:
                better = value > reference + max(abs(reference) * self.margin, self.floor)
            else:
                better = value < reference - max(abs(reference) * self.margin, self.floor)
            verdict = "clearly better than" if better else "NOT clearly better than"
        return {"metric": self.metric, "value": value, "baseline": reference, "better": bool(better),
                "kind": self.kind,
                "message": f"held-out {metric_label(self.metric, task)} {value:.4g} is {verdict} {self.what} "
                           f"({reference:.4g})"}


@dataclass
class ExportGraph:
    """What ``Task.export_graph`` gives ``dlapps export``: a function from what a user has to what dlapps
    returns, to be traced into a SavedModel, LiteRT or ONNX graph.

    ``function(*inputs)`` takes one tensor per ``inputs`` entry, in order, and returns a dict of named
    tensors; ``inputs`` is ``[(name, shape, dtype, what it is)]`` (None for any size) and ``outputs``
    ``{name: what it is}``. ``inside`` and ``outside`` say, for the export's README, which steps of
    ``dlapps predict`` the graph does and which stay with the user (decoding files, tokenizing...).
    """

    function: Any
    inputs: list
    outputs: dict
    inside: str
    outside: str

    def described(self, inputs: dict | None = None, outputs: dict | None = None, inside: str | None = None,
                  outside: str | None = None) -> "ExportGraph":
        """A copy saying better what its inputs and outputs are (``{name: what}``; names not given keep their
        text) and what is inside and outside: how a task explains the default graph (the network alone)."""
        import dataclasses

        inputs, outputs = inputs or {}, outputs or {}
        return dataclasses.replace(
            self, inputs=[(name, shape, dtype, inputs.get(name, what)) for name, shape, dtype, what in self.inputs],
            outputs={name: outputs.get(name, what) for name, what in self.outputs.items()},
            inside=inside or self.inside, outside=outside or self.outside)


class Task:
    """Base class of every dlapps task. Subclasses are mostly declarations."""

    #: CLI / API key, e.g. ``image-classification``.
    name: str = ""
    #: Human title for the studio tab, e.g. ``Image classification``.
    title: str = ""
    #: What the default model knows, in one sentence (``dlapps plugins`` and the studio show it).
    description: str = ""
    #: What one input is: ``image`` or ``audio`` (read from files), ``text``, ``id``...
    input_kind: str = "text"
    #: The kinds of file (keys of ``FILE_KINDS``) the batch runner collects from folders for this task; empty:
    #: ``(input_kind,)``. A detector that also reads videos says ``("image", "video")``.
    input_file_kinds: tuple = ()
    #: What one output is: ``labels``, ``boxes``, ``text``, ``ranked-items``, ``images``...
    output_kind: str = "labels"
    #: Defaults of the task config; data and the user's options update a copy.
    default_config: dict = {}
    #: What ``dlapps tune`` searches by default: ``{config key: Param(...)}`` (int / float ranges, log scale or
    #: not, or choices), e.g. the learning rate, widths, dropout. Keys are keys of the task config.
    search_space: dict[str, Param] = {}
    #: Typed predict options, ``{name: Option(type, default, help, min=..., max=..., choices=...)}``.
    #: The core checks them, makes ``dlapps predict`` flags and studio controls from them.
    predict_options: dict[str, Option] = {}
    #: The field of a JSONL / CSV record that holds the input (``dlapps predict --input``); a task that does
    #: not set it reads ``text`` when its ``input_kind`` is text, else ``input``.
    input_field: str = "text"
    #: Pad values of ragged example leaves, by dict key (``{"labels": -1, "boxes": -1}``); 0 otherwise.
    #: Used when batching examples for training and model inputs for prediction.
    pad_values: dict = {}
    #: The Keras metric that early stopping watches (a task may add its own to the logs with a callback).
    monitor: str = "val_loss"
    #: Whether ``monitor`` improves by going down ("min") or up ("max"); "auto" lets Keras tell from a
    #: compiled metric's name (loss, accuracy), which it cannot for a metric a callback adds.
    monitor_mode: str = "auto"
    #: The baselines every trained model is compared with: a ``Baseline`` (the trivial one) or a tuple of them
    #: (the trivial one first, then a classical one); training warns loudly, and the model card, the CLI and
    #: the studio say so, when the model is not clearly better than each.
    baseline: Baseline | tuple | None = None
    #: About how long the default model takes to train on 2 CPU cores, in seconds: the studio trains
    #: missing models fastest first and shows this as the first estimate of the time left.
    training_seconds: float = 60.0
    #: Filled in by the host: the plugin that registered the task.
    plugin: str = ""
    #: The task's Gradio UI: a method ``ui(self, predictor)`` that builds components inside the current
    #: ``gr.Blocks``. None: the studio builds one from the input and output kinds.
    ui = None
    #: A person's name for each of ``evaluate``'s own metric keys (``{"flagged_out_of_domain": "sentences
    #: flagged as outside what the model knows"}``), shown in the tab, the model card and the CLI; shared keys
    #: (accuracy, mAP@.5, chrF, ...) and the baselines' figures are named already (``metric_label``).
    metric_names: dict = {}
    #: What the out-of-distribution check measures, in a few words ("distance of the pooled convolutional
    #: features to the nearest class"), or, for a task whose ``ood_features`` gives None, why it has none; the
    #: model card shows it (``dlapps.ood``).
    ood_note: str = ""
    #: Whether the task flags inputs by rules of its own (its ``postprocess`` sets ``out_of_domain``: a
    #: recommendation query about a user it knows nothing of, a translation of mostly unseen words); ``ood_note``
    #: says what they are. Such a task may also have features to measure.
    ood_by_rule: bool = False
    #: The ``dlapps.ood.InDistribution`` learnt from the training split's ``ood_features`` after training (the
    #: core sets, saves and loads it); None: no feature check.
    feature_density = None
    #: A text-labels task's classical baseline (``label_outputs.TextBaseline``), which the core fits when training
    #: plans, and saves and loads with the model.
    _text_baseline = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        below_task = cls.__mro__[:cls.__mro__.index(Task)] if Task in cls.__mro__ else cls.__mro__

        def declared(member: str) -> bool:  # by the plugin: a parent's default by kind does not count
            return any(member in vars(klass) and member not in vars(klass).get("_by_kind", ())
                       for klass in below_task)

        # Defaults by kind, for what the plugin does not declare itself (``_by_kind`` names them):
        by_kind = {}
        if not declared("input_field"):
            by_kind["input_field"] = "text" if cls.input_kind == "text" else "input"
        if cls.output_kind == "labels":  # a labels task that keeps the kind's postprocess / evaluate
            from dlapps.label_outputs import TextBaseline

            if not declared("postprocess") and not declared("predict_options"):
                by_kind["predict_options"] = {"top_k": Option(
                    int, 3, "how many labels to return", min=1,
                    max=lambda config: max(1, len(config.get("labels") or [])))}
            if not declared("evaluate") and not declared("baseline"):
                by_kind["baseline"] = (Baseline("accuracy", "majority_accuracy",
                                                "always predicting the most frequent class"),)
                if cls.input_kind == "text":
                    by_kind["baseline"] += (Baseline("accuracy", "classical_accuracy", TextBaseline.WHAT,
                                                     margin=0.0, kind="classical"),)
        for member, value in by_kind.items():
            setattr(cls, member, value)
        # a parent's default by kind that this class's kind does not give goes back to Task's
        for member in {m for klass in below_task[1:] for m in vars(klass).get("_by_kind", ())} - set(by_kind):
            if not declared(member):
                setattr(cls, member, vars(Task)[member])
        cls._by_kind = frozenset(by_kind)

    def __init__(self, config: dict | None = None):
        self.config = copy.deepcopy(self.default_config)
        self.config.update(config or {})

    # -- data --------------------------------------------------------------
    def _missing(self, signature: str, consequence: str) -> MissingMethodError:
        """The one-line error of a method the plugin has not implemented: what to write."""
        return MissingMethodError(f"task {self.name!r} ({type(self).__module__}.{type(self).__name__}) does not "
                                  f"implement {signature}, so {consequence}; add the method to the task class "
                                  "(README: Writing a plugin)")

    def default_data(self, seed: int = 0) -> Dataset:
        """The small offline dataset the task ships or generates."""
        raise self._missing("default_data(self, seed=0) -> Dataset", "it has no default data; train it with --data")

    def load_data(self, path: str, seed: int = 0) -> Dataset:
        """User data in the field's standard on-disk format. A labels task reads, unless it says otherwise, a
        CSV / TSV / JSONL file of ``text`` and ``label`` fields (text input) or a folder with one subfolder of
        images per class (image input), split by class (``dlapps.label_outputs``)."""
        from dlapps import label_outputs

        if self.output_kind == "labels" and self.input_kind == "text":
            return label_outputs.labelled_texts_dataset(path, seed=seed)
        if self.output_kind == "labels" and self.input_kind == "image":
            return label_outputs.class_folders_dataset(path, seed=seed)
        raise self._missing("load_data(self, path, seed=0) -> Dataset", f"it cannot read user data ({path!r})")

    def load_eval_data(self, path: str) -> Split:
        """A whole folder or file of labelled data, used as one test split by ``dlapps eval --data`` (the
        default: the test split of ``load_data``; all of it for a labels task that reads data by its kind)."""
        from dlapps import label_outputs

        if self.output_kind == "labels" and self.input_kind in ("text", "image") and \
                type(self).load_data is Task.load_data:
            return label_outputs.labelled_split(path, self.input_kind, self.labels())
        return self.load_data(path).test

    def make_dataset(self, split: Split, training: bool, batch_size: int, seed: int = 0):
        """The batched ``tf.data.Dataset`` that ``fit`` reads for ``split``.

        The core default (``dlapps.pipeline.make_tf_dataset``) serves most tasks:
        it makes ``training_example`` for every example, pads ragged leaves per
        batch with ``pad_values``, shuffles and applies ``augment`` anew each
        epoch when ``training``. Override for a pipeline of your own.
        """
        from dlapps.pipeline import make_tf_dataset

        return make_tf_dataset(self, split, batch_size, training=training, seed=seed)

    def training_example(self, raw, target):
        """One training example: ``(model input, target)`` or ``(model input, target, sample weight)``.

        The default pairs ``preprocess``'s model input with the target as it is;
        ``target`` None (unlabelled data) gives ``(model input,)``. A
        sequence-to-sequence task feeds the target to the decoder too.
        """
        model_input, _ = self.preprocess(raw, self.default_options())
        return (model_input,) if target is None else (model_input, target)

    #: Random augmentation: a method ``augment(self, example) -> example`` that changes one training
    #: example (a tuple of tf tensors, as ``training_example`` gives it) at random. The core applies it in
    #: the tf.data pipeline of the training split, drawn anew each epoch. None: no augmentation.
    augment = None

    def callbacks(self, defaults: list, run_dir) -> list:
        """The Keras callbacks of training: return ``defaults`` (backup for resume, early stopping,
        learning-rate schedule, TensorBoard) with yours added, or a list of your own."""
        return defaults

    # -- model -------------------------------------------------------------
    def build_model(self, config: dict):
        """A fresh, uncompiled ``keras.Model`` for ``config``; it may have its own ``train_step``."""
        raise self._missing("build_model(self, config) -> keras.Model", "it cannot build a model")

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

    def plan(self, dataset: Dataset, recipe) -> None:
        """Choose the task's own training settings from the data, before the model is built: call
        ``recipe.choose(key, value, why)`` for each (input size, anchors, class weights, augmentation...), and
        ``recipe.note(text)`` for facts the choice followed. The core then plans the batch size, steps, epochs,
        patience and warm-up (``dlapps.recipes.plan_training``); a value the user set (``--set``) or the
        dataset declares is kept whatever ``choose`` is told. Called after ``adapt``. The default chooses
        nothing. (The core fits a text-labels task's classical baseline itself, beside this.)"""

    def load_preset(self, preset: str, config: dict):
        """A model that starts from a pretrained preset (a name or a local directory)."""
        raise PresetError(f"task {self.name!r} does not support presets; received preset={preset!r}")

    def load_pretrained(self, preset: str, config: dict):
        """A model that predicts straight from a pretrained preset, without training (``dlapps.load(task,
        preset=...)``, ``dlapps predict TASK --preset ...``), such as a text-to-image preset that cannot be
        fine-tuned; put what prediction needs into ``config``. The default: not supported."""
        raise PresetError(f"task {self.name!r} cannot predict straight from a preset; received preset={preset!r}. "
                          f"Train from it: dlapps train {self.name} --preset {preset}")

    def labels(self) -> list[str]:
        """The class names of the model (``config["labels"]``, which the data sets); an InvalidInputError
        saying to train or load a model when there are none yet."""
        from dlapps.errors import InvalidInputError

        labels = self.config.get("labels")
        if not labels:
            raise InvalidInputError(f"task {self.name!r} has no classes yet: train a model "
                                    f"(dlapps train {self.name}) or load one")
        return list(labels)

    def save_state(self, folder) -> None:
        """Write the state prediction needs besides the model (tokenizer, vocabulary) into ``folder``.

        Called once when a model is saved, after ``model.keras`` is written. (The core saves what it learnt
        itself beside it: the out-of-distribution density, a text-labels task's classical baseline.)"""

    def load_state(self, folder) -> None:
        """Read what ``save_state`` wrote. Called once when a model is loaded, before the Keras model."""

    def custom_objects(self) -> dict:
        """Registered Keras classes the saved model needs; import their modules here."""
        return {}

    def export_graph(self, model, options: dict) -> ExportGraph:
        """What ``dlapps export`` writes (``ExportGraph``), with the predict ``options`` (checked) baked in.

        The default is the network alone, on the inputs ``preprocess`` makes (batched); ``preprocess``
        and ``postprocess`` stay outside, and the export keeps the model's assets (labels, tokenizer)
        beside it. Override to put tensor work inside (an image task's resizing, a detector's NMS);
        raise ``ExportError`` saying why when the task cannot be exported."""
        from dlapps.errors import ExportError

        if not getattr(model, "inputs", None):
            raise ExportError(f"task {self.name!r} cannot be exported: its model ({type(model).__name__}) declares "
                              "no inputs to trace (a subclassed model that was never built on a keras.Input)")
        import keras

        structure, names = model.input, list(getattr(model, "output_names", None) or [])  # input: as built
        inputs = [(t.name.split(":")[0], tuple(t.shape), str(t.dtype), "a batch of what preprocess makes")
                  for t in keras.tree.flatten(structure)]

        def network(*values):
            outputs = model(keras.tree.pack_sequence_as(structure, list(values)), training=False)
            if isinstance(outputs, dict):
                return dict(outputs)
            outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
            keys = names if len(names) == len(outputs) else [f"output_{i}" for i in range(len(outputs))]
            return dict(zip(keys, outputs))

        outputs = {name: "the network's output, as forward gets it" for name in names} or {
            "output_0": "the network's output, as forward gets it"}
        return ExportGraph(network, inputs, outputs, inside=f"the network ({type(model).__name__}) only",
                           outside=f"{self.name} preprocessing (raw input -> model input) and postprocessing "
                                   "(network output -> result), which dlapps does in Python")

    # -- inference ---------------------------------------------------------
    def default_options(self) -> dict:
        """Every predict option at its default, checked."""
        return check_options(self.predict_options, {}, self.config, self.name)

    def preprocess(self, raw, options: dict):
        """One raw input -> ``(model_input, context)``; or ``Pieces`` of such pairs (see ``combine``).

        ``model_input`` is an array, or a dict or tuple of arrays, without a batch
        axis. ``context`` is anything postprocess needs about this input.
        """
        raise self._missing("preprocess(self, raw, options) -> (model_input, context)", "it cannot predict")

    def forward(self, model, batch, options: dict):
        """The model on one batch of model inputs; the only step that touches the device.

        Override for more than one call of the model per batch (a decoding or sampling loop); call the
        model there with ``predict_on_batch(model, batch)`` from ``dlapps.plugin`` (one row per input on
        every distribution strategy).
        """
        from dlapps.layers import predict_on_batch

        return predict_on_batch(model, batch)

    def postprocess(self, output, context, options: dict):
        """One model output (no batch axis) and its input's context -> a result: plain JSON-able data,
        with ``ImageOutput`` / ``AudioOutput`` / ``FileOutput`` values for files. A labels task whose model gives
        class probabilities gets ``{"label", "score", "top_k"}`` (``label_outputs.label_result``)."""
        if self.output_kind == "labels":
            from dlapps.label_outputs import label_result

            return label_result(output, self.labels(), options.get("top_k", 1))
        raise self._missing("postprocess(self, output, context, options) -> dict", "it cannot predict")

    def combine(self, results: list, context, options: dict):
        """The result of an input that ``preprocess`` split into ``Pieces``, from its pieces' results."""
        raise NotImplementedError(f"task {self.name!r} split an input into pieces but does not combine them")

    def ood_features(self, output):
        """The feature vector of one model output (a row of what ``forward`` returns, no batch axis) that the
        out-of-distribution check measures, such as a classifier's pooled features, or a dict of named vectors
        (blocks, each measured on its own: a detector's features beside pixel statistics); ``forward`` must
        return them beside the prediction. None (the default): the task has no feature check, and ``ood_note`` says
        why. The core learns their density on the training split, scores every prediction
        (``in_distribution``) and flags the untypical ones (``out_of_domain``): see ``dlapps.ood``."""
        return None

    def ood_groups(self, split):
        """The group of each example of ``split`` for the out-of-distribution density (one mean per group):
        the class index when the targets are class indices (the default), else None (one group)."""
        import numpy as np

        if not self.config.get("labels") or split.targets is None:
            return None
        targets = np.asarray(split.targets, dtype=object)
        if targets.ndim != 1 or not all(isinstance(t, (int, np.integer)) for t in targets):
            return None
        return targets.astype(np.int64)

    def summarize(self, result: dict) -> str:
        """One line a person reads, for ``dlapps predict`` without ``--output``: ``7 (98.2%)`` for a label and
        its score, else each plain field as ``key=value``."""
        if isinstance(result.get("label"), str) and isinstance(result.get("score"), (int, float)):
            return f"{result['label']} ({result['score']:.1%})"
        return ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, (list, dict)))

    def evaluate(self, predictor, split: Split) -> dict:
        """The field's standard metrics on ``split``, as plain data. A labels task gets accuracy, macro-F1,
        per-class scores and the confusion matrix beside the majority class and, for text, the classical
        baseline (``label_outputs.classification_report``)."""
        if self.output_kind == "labels":
            from dlapps.label_outputs import classification_report

            return classification_report(predictor, split, self.labels(), classical=self._text_baseline)
        raise self._missing("evaluate(self, predictor, split) -> dict", "it cannot be evaluated")

    def format_metrics(self, metrics: dict) -> str:
        """How ``dlapps eval`` prints the metrics (a labels task's: a report with the confusion matrix)."""
        import json

        if self.output_kind == "labels" and "confusion_matrix" in metrics:
            from dlapps.label_outputs import TextBaseline, format_report

            return format_report(metrics, TextBaseline.WHAT)
        return json.dumps(metrics, indent=2)

    #: Other file formats a batch run's results can be written in (``dlapps predict --format NAME``), each with
    #: the suffix its file gets beside the JSONL: ``{"coco": ".coco.json"}`` writes ``out.coco.json``.
    result_formats: dict[str, str] = {}

    def write_results(self, fmt: str, records: list[dict], path) -> None:
        """Write the JSONL records of a batch run (results and error records, in input order) as ``fmt``, one
        of ``result_formats``, to ``path``."""
        raise NotImplementedError(f"task {self.name!r} has no result format {fmt!r}")

    # -- examples for the UI -------------------------------------------------
    def example_inputs(self, split: Split, limit: int = 8) -> list[tuple[Any, str]]:
        """(raw input, name) pairs from the test split, saved with the model as the UI's examples.

        The default takes one input per class when the targets are class indices
        (named after the class), else the first ``limit`` (named after their text
        target, if any). The store writes images as PNG, audio as FLAC and
        anything else as JSON lines.
        """
        import numpy as np

        targets, labels = split.targets, self.config.get("labels") or []
        if isinstance(targets, np.ndarray) and targets.ndim == 1 and targets.dtype.kind in "iu":
            first: dict = {}
            for i, target in enumerate(targets.tolist()):
                first.setdefault(target, i)
            chosen = sorted(first.values())[:limit]
            return [(split.inputs[i], str(labels[targets[i]]) if targets[i] < len(labels) else str(targets[i]))
                    for i in chosen]
        count = min(limit, len(split))
        return [(split.inputs[i], _name_of(split.target(i))) for i in range(count)]


    def example_is_right(self, result, name: str) -> bool | None:
        """Whether the model's ``result`` for an example candidate (named ``name`` by ``example_inputs``) is
        right. ``None`` (the default): no check, every candidate is shipped. A task that answers True/False
        ships only examples its trained model gets right (speech: the transcript is exactly the words said)
        and should say so in its tab."""
        return None


def _name_of(target) -> str:
    """A text target's first words, as a name for an example; other targets give none."""
    return "_".join(target.split()[:6]) if isinstance(target, str) else ""
