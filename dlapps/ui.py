"""Shared Gradio pieces (error display, the model summary, option controls, the default UI of a task
that writes none) and the studio that mounts every task as a tab.

The studio opens at once: tabs of trained models are built when it is; a
missing default model trains in the background (``dlapps.background_training``)
while its tab shows the progress, and the tab becomes usable, without a
reload, when the model is ready. Nothing trains until ``demo.start_training()``
is called (``dlapps demo`` calls it once the server is up; an app served by
``gradio apps/studio.py`` when the first page opens), so importing an app
never trains. Gradio is imported inside functions: importing this module stays
cheap."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
import time
from pathlib import Path

from dlapps.errors import DlappsError, ModelNotFoundError
from dlapps.metric_names import metric_label
from dlapps.outputs import ImageOutput, describe_file_outputs, replace_file_outputs

log = logging.getLogger("dlapps.ui")

#: Serving defaults of the studio and task apps (``dlapps demo`` flags change them).
SERVING = {"max_file_size": "50mb", "max_queue": 64, "delete_cache": (3600, 3600)}


def serving_options(**overrides) -> dict:
    """Upload size limit, queue bound (beyond it a request is told the server is busy) and how often
    uploaded files are deleted (every hour, those older than an hour)."""
    return {**SERVING, **{k: v for k, v in overrides.items() if v is not None}}


@contextlib.contextmanager
def raise_for_ui():
    """Show an error in the tab: a dlapps error's own message (without temporary upload paths); any other
    error as a short message, logged in full on the server."""
    import gradio as gr

    try:
        yield
    except gr.Error:
        raise
    except DlappsError as exc:
        raise gr.Error(without_upload_paths(str(exc)), print_exception=False) from exc
    except Exception as exc:
        log.exception("unexpected error in the UI")
        raise gr.Error(f"Something went wrong ({type(exc).__name__}); the details are in the server log.",
                       print_exception=False) from exc


def image_input(**kwargs):
    """An image input (``gr.Image``'s arguments) for a tab whose handler decodes the file with ``read_image``
    inside ``raise_for_ui``: a broken upload is then dlapps' one-line message in the tab, not Gradio's
    preprocessing error with the temporary path and a traceback (``dlapps.image_input``)."""
    from dlapps.image_input import ImageInput

    return ImageInput(type="filepath", **kwargs)


def without_upload_paths(text: str) -> str:
    """``text`` with paths of uploaded files (Gradio's temporary folder) cut to the file's name."""
    roots = {os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")}
    for root in roots:
        text = re.sub(re.escape(root.rstrip("/")) + r"/[^'\"\s]*/([^/'\"\s]+)", r"\1", text)
    return text


#: Metric names (or parts of them) whose values are shares of a whole, shown as percentages.
SHARES = ("accuracy", "precision", "recall", "f1", "rate", "wer", "cer", "map", "exact", "share", "coverage",
          "hit", "ndcg", "flagged", "kept")


def readable_metric(name: str, value, task=None) -> str:
    """``accuracy 98.9%``: the metric's name for a person (``metric_label``), a share in [0, 1] as a percentage,
    a count as it is, anything else to 4 digits."""
    label = metric_label(name, task)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{label} {value}"
    if isinstance(value, int):
        return f"{label} {value:,}"
    if 0.0 <= value <= 1.0 and any(word in name for word in SHARES) and "_vs_" not in name:
        return f"{label} {value:.1%}"
    return f"{label} {value:.4g}"


def model_name(predictor) -> str:
    """``Model: image-classification, trained 2026-12-07 14:20`` (a preset's name when it was not trained)."""
    training = (predictor.meta or {}).get("training") or {}
    when = training.get("finished")
    meta_file = Path(predictor.model_dir) / "task.json" if predictor.model_dir else None
    if when is None and meta_file is not None and meta_file.is_file():  # a model saved before it was recorded
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(meta_file.stat().st_mtime))
    if not training and (predictor.meta or {}).get("preset"):
        return f"Model: {predictor.task.name}, straight from the preset {predictor.meta['preset']}"
    return f"Model: {predictor.task.name}" + (f", trained {when}" if when else "")


def model_summary(predictor) -> str:
    """Markdown: what the task does, in one line what this model knows (the data it was trained on), how
    good it is on held-out data, and a warning when it is no better than a trivial baseline."""
    task = predictor.task
    headline = [readable_metric(k, v, task) for k, v in predictor.metrics.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)]
    knows = predictor.meta.get("data", {}).get("description")
    text = f"{task.description} {model_name(predictor)}." + (f" Held-out test: {', '.join(headline[:6])}."
                                                            if headline else "")
    if knows:
        text = f"**What this model knows:** {knows}\n\n{text}"
    for check in baseline_checks(predictor.metrics):
        if not check["better"]:
            text += f"\n\n**Warning: this model is not clearly better than a {check.get('kind', 'trivial')} " \
                    f"baseline:** {check['message']}."
        elif check.get("kind") == "classical":
            text += f" Against a classical model: {check['message']}."
    if predictor.model_dir:
        text += f"\n\n<details><summary>Where the model is</summary>\n\n`{predictor.model_dir}`\n\n</details>"
    return text


#: Example images are shown at least 72 pixels wide instead of as a speck (a tab's examples have an ``elem_id``
#: ending in ``-examples``); the digits' 8x8 examples are enlarged with sharp pixels.
STUDIO_CSS = """
[id$="-examples"] img { min-width: 72px; min-height: 72px; object-fit: contain; }
#image-classification-examples img { image-rendering: pixelated; }
"""


def studio_blocks(**kwargs):
    """``gr.Blocks(**kwargs)`` with the studio's CSS. Gradio 6 reads a Blocks' CSS when it launches, and takes it
    from the constructor (with a warning, silenced here) when ``launch`` is not given one: so the CSS holds
    however the app is launched (``dlapps demo``, ``demo.launch()`` in apps/, the tests' server)."""
    import warnings

    import gradio as gr

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The parameters have been moved from the Blocks constructor")
        return gr.Blocks(css=STUDIO_CSS, **kwargs)


def ood_notice(result) -> str:
    """Markdown a tab shows under a prediction that is outside what its model knows (``out_of_domain``, see
    ``dlapps.ood``); "" for one within it."""
    from dlapps.ood import FLAG_TEXT

    if not isinstance(result, dict) or not result.get("out_of_domain"):
        return ""
    score = result.get("in_distribution")
    how = f" (in-distribution score {score:.3g})" if isinstance(score, (int, float)) else ""
    return f"**⚠ This input is {FLAG_TEXT}**{how}: the answer above is a guess; do not rely on it."


def baseline_checks(metrics: dict) -> list[dict]:
    """The baseline checks of a model's metrics (older models have the trivial one only)."""
    return metrics.get("baseline_checks") or ([metrics["baseline_check"]] if metrics.get("baseline_check") else [])


def option_control(name: str, option, config: dict, **kwargs):
    """The Gradio control for one predict option: a slider for a bounded number, a number box for an
    unbounded one, a checkbox for a flag, a dropdown for choices, a text box for a string."""
    import gradio as gr

    label = kwargs.pop("label", f"{name.replace('_', ' ').capitalize()}" + (f" ({option.help})" if option.help
                                                                           else ""))
    value = kwargs.pop("value", option.default)
    if option.choices is not None:
        return gr.Dropdown(list(option.choices), value=value, label=label, **kwargs)
    if option.type is bool:
        return gr.Checkbox(value=value, label=label, **kwargs)
    if option.type is str:
        return gr.Textbox(value=value, label=label, **kwargs)
    low, high = option.bounds(config)
    step = 1 if option.type is int else None
    if low is not None and high is not None:
        return gr.Slider(low, high, value=value, step=step or (high - low) / 100, label=label, **kwargs)
    return gr.Number(value=value, label=label, precision=0 if option.type is int else None, **kwargs)


#: Gradio input components for each input kind; other kinds get a text box.
INPUT_COMPONENTS = {"image": "Image", "text": "Textbox", "audio": "Audio"}


def default_task_ui(task, predictor) -> None:
    """A UI built from the task's input and output kinds and its predict options.

    Labels show as a Gradio Label (top-k with bars); images that a result holds
    in a gallery; the rest of the result as JSON. The endpoint's API name is the
    task name with underscores (``/tiny_text``).
    """
    import gradio as gr

    names = list(task.predict_options)

    def run(value, *option_values):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise gr.Error(f"Give an input ({task.input_kind}) first.")
        with raise_for_ui():
            result = predictor.predict(value, **dict(zip(names, option_values)))
        images = [image for image in _file_outputs(result) if isinstance(image, ImageOutput)]
        if task.output_kind == "labels" and isinstance(result, dict) and "top_k" in result:
            shown = {t["label"]: t["score"] for t in result["top_k"]}
        else:
            shown = describe_file_outputs(result)
        return (shown, [np_image(i) for i in images]) if gallery is not None else shown

    input_cls = getattr(gr, INPUT_COMPONENTS.get(task.input_kind, "Textbox"))
    output_cls = gr.Label if task.output_kind == "labels" else gr.JSON
    gr.Markdown(model_summary(predictor))
    with gr.Row():
        with gr.Column():
            source = input_cls(label=task.input_kind.capitalize(), elem_id=f"{task.name}-input")
            controls = [option_control(name, option, task.config, elem_id=f"{task.name}-{name}")
                        for name, option in task.predict_options.items()]
        with gr.Column():
            gallery = gr.Gallery(label="Images", interactive=False, elem_id=f"{task.name}-images") \
                if task.output_kind in ("images", "boxes") else None
            result = output_cls(label="Result", elem_id=f"{task.name}-output")
    button = gr.Button("Run", variant="primary", elem_id=f"{task.name}-run")
    examples = predictor.examples()
    if examples:
        gr.Examples(examples, inputs=source)
    outputs = [result] if gallery is None else [result, gallery]
    button.click(run, [source, *controls], outputs, api_name=task.name.replace("-", "_"))


def np_image(image: ImageOutput):
    """An image result as the plain array Gradio's image components take."""
    import numpy as np

    return np.asarray(image)


def _file_outputs(result) -> list:
    found: list = []
    replace_file_outputs(result, lambda value, where: found.append(value))
    return found


def task_ui(predictor) -> None:
    """The task's own UI, or the default one built from its kinds, inside the current ``gr.Blocks``.

    Every event the task's UI registers shares one concurrency group named after the task, one run at a
    time, so two tabs or two listeners on one model never run it at once.
    """
    import gradio as gr

    root = gr.context.Context.root_block
    before = set(root.fns) if root is not None else set()
    if predictor.task.ui is not None:
        predictor.task.ui(predictor)
    else:
        default_task_ui(predictor.task, predictor)
    tuning_panel(predictor)
    for key in (set(root.fns) - before) if root is not None else ():
        root.fns[key].concurrency_id = f"dlapps-task-{predictor.task.name}"
        root.fns[key].concurrency_limit = 1


def tuning_table(tuning: dict):
    """The trials of the search that chose a tuned model's config (task.json's ``tuning``) as a pandas
    DataFrame: trial, the values tried, the validation score, epochs and seconds."""
    import json

    import pandas as pd

    from dlapps.store import trial_table

    header, rows = trial_table(tuning.get("trials", []), tuning.get("objective", {}).get("name", "score"),
                               status_for_no_score=False)  # a numeric column to plot: a failed trial has none
    return pd.DataFrame([[json.dumps(v) if isinstance(v, (list, dict)) else v for v in row] for row in rows],
                        columns=header)


def tuning_panel(predictor) -> None:
    """For a model whose config ``dlapps tune`` chose: the search (objective, space), its trials as a table and
    a plot of the validation score against the trial. Nothing for a model that was not tuned."""
    import gradio as gr

    tuning = (predictor.meta or {}).get("tuning")
    if not tuning:
        return
    name = tuning.get("objective", {}).get("name", "score")
    direction = "higher" if tuning.get("objective", {}).get("direction") == "max" else "lower"
    frame = tuning_table(tuning)
    task = predictor.task.name
    best = readable_metric(name, tuning.get("best_score"), predictor.task)
    title = f"Hyperparameter search: {len(frame)} trials, best validation {best} (trial {tuning.get('best_trial')})"
    with gr.Accordion(title, open=False, elem_id=f"{task}-tuning"):
        space = ", ".join(f"`{k}` {v}" for k, v in tuning.get("space", {}).items())
        gr.Markdown(f"{tuning.get('algorithm', '').capitalize()} search ({tuning.get('engine')}); each trial trained "
                    f"on the training split and scored on the validation split by {name} ({direction} is better). "
                    f"Space: {space}. The best config was trained again on training + validation for this model.")
        gr.Dataframe(frame, interactive=False, label="Trials", elem_id=f"{task}-trials")
        gr.ScatterPlot(frame.dropna(subset=[name]), x="trial", y=name, title=f"Validation {name} by trial",
                       elem_id=f"{task}-trials-plot")


def task_blocks(task_name: str, predictor):
    """A standalone Gradio app of one task's ``predictor`` (``dlapps.task_app`` makes one for the task's
    default model, trained in the background if there is none)."""
    import gradio as gr

    with studio_blocks(title=f"dlapps · {predictor.task.title}", delete_cache=SERVING["delete_cache"]) as demo:
        gr.Markdown(f"# {predictor.task.title}")
        task_ui(predictor)
    return demo


def studio(task_names=None, train_missing: bool = True):
    """Every installed task (or ``task_names``) as a tab; returns the ``gr.Blocks``.

    Trained models load now. With ``train_missing`` a missing model trains in the
    background once ``demo.start_training()`` is called (or the first page opens);
    without it, its tab says how to train it.
    """
    import gradio as gr

    from dlapps.api import load
    from dlapps.background_training import BackgroundTraining
    from dlapps.host import get_host

    host = get_host()
    names = list(task_names or host.task_names())
    predictors, missing = {}, {}
    for name in names:
        try:
            predictors[name] = load(name)
        except ModelNotFoundError as exc:
            missing[name] = exc
        except DlappsError as exc:  # a model that cannot be loaded: its tab says why
            missing[name] = exc
    training = BackgroundTraining({n: host.task_class(n) for n in missing if train_missing
                                   and isinstance(missing[n], ModelNotFoundError)})
    with studio_blocks(title="dlapps studio", delete_cache=serving_options()["delete_cache"]) as demo:
        gr.Markdown("# dlapps studio\nEvery installed task, one tab each.")
        if training.statuses:
            _progress_header(demo, training, len(predictors))
        with gr.Tabs():
            for name in names:
                task_cls = host.task_class(name)
                with gr.Tab(task_cls.title or name, id=name):
                    if name in predictors:
                        task_ui(predictors[name])
                    elif name in training.statuses:
                        _training_tab(demo, task_cls, training, name)
                    else:
                        gr.Markdown(f"**{name} is not available:** {missing[name]}")
        broken = host.errors()
        if broken:
            with gr.Tab("Plugin errors", id="plugin-errors"):
                gr.Markdown("\n".join(f"- **{p.name}**: `{p.error}`" for p in broken))
        if training.statuses:
            demo.load(training.start, None, None)  # `gradio apps/studio.py`: training starts with the first page
    demo.training = training
    demo.start_training = training.start
    return demo


def _progress_header(demo, training, loaded: int) -> None:
    """The studio's overall progress ("2 of 6 models ready; training ..."), fresh on each page load and
    every 2 s until every model is trained or failed (neither event is part of the public API)."""
    import gradio as gr

    header = gr.Markdown(training.ready_line(loaded), elem_id="studio-progress")
    demo.load(lambda: training.ready_line(loaded), None, header, api_name=False, show_progress="hidden", queue=False)
    timer = gr.Timer(2.0)

    def poll():
        done = all(s.state in ("ready", "failed") for s in training.statuses.values())
        return training.ready_line(loaded), gr.Timer(active=not done)

    timer.tick(poll, None, [header, timer], show_progress="hidden", queue=False, api_name=False)


def _training_tab(demo, task_cls, training, name: str) -> None:
    """A tab whose model trains in the background: its place in line or its progress (fresh on each page
    load), then only the task's UI once it is ready, or only its error if it failed."""
    import gradio as gr

    from dlapps.background_training import duration

    status = training.statuses[name]
    ended = status.state in ("ready", "failed")
    intro = gr.Markdown(f"{task_cls.description}\n\nNo trained model yet: the default one is being trained on "
                        f"this machine (offline; about {duration(task_cls.training_seconds)} on 2 CPU cores).",
                        visible=not ended)
    progress = gr.Markdown(f"**Training:** {training.tab_line(name)}", elem_id=f"{task_cls.name}-training",
                           visible=not ended)
    state = gr.Textbox(status.state, visible=False)  # a component: its change event re-renders the body
    timer = gr.Timer(2.0)

    def poll(shown):
        text = f"**Training:** {training.tab_line(name)}"
        done = status.state in ("ready", "failed")  # then only the body: the task's UI or the error
        return (gr.update(value=text, visible=not done), gr.update(visible=not done),
                (status.state if status.state != shown else gr.skip()), gr.Timer(active=not done))

    outputs = [progress, intro, state, timer]
    demo.load(poll, state, outputs, api_name=False, show_progress="hidden", queue=False)  # fresh on a page load
    timer.tick(poll, state, outputs, show_progress="hidden", queue=False, api_name=False)

    @gr.render(inputs=state)
    def body(current):
        if current == "ready" and status.predictor is not None:
            task_ui(status.predictor)
        elif current == "failed":
            gr.Markdown(f"**{task_cls.name} could not be trained:** {status.error}\n\nTry it in a terminal: "
                        f"`dlapps train {task_cls.name}`")


def launch(demo, host: str = "127.0.0.1", port: int = 7860, **options) -> None:
    """Serve the studio with the hardening of ``serving_options`` and start any background training."""
    settings = serving_options(**options)
    demo.queue(max_size=settings["max_queue"], default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=port, max_file_size=settings["max_file_size"],
                prevent_thread_lock=True, show_error=True, quiet=True)
    start = getattr(demo, "start_training", None)
    if start:
        start()
