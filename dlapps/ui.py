"""Shared Gradio pieces, the default UI of a task that writes none, and the studio that mounts every
task as a tab. Gradio is imported inside functions: importing this module stays cheap."""

from __future__ import annotations

import contextlib

from dlapps.errors import DlappsError, ModelNotFoundError
from dlapps.outputs import ImageOutput, describe_file_outputs, replace_file_outputs


@contextlib.contextmanager
def raise_for_ui():
    """Show a dlapps error as a Gradio error message instead of a stack trace."""
    import gradio as gr

    try:
        yield
    except DlappsError as exc:
        raise gr.Error(str(exc)) from exc


def model_summary(predictor) -> str:
    """One markdown paragraph: what the task does and how good the loaded model is."""
    task = predictor.task
    headline = {k: v for k, v in predictor.metrics.items() if isinstance(v, (int, float))}
    figures = ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in headline.items())
    where = f" Model: `{predictor.model_dir}`." if predictor.model_dir else ""
    return f"{task.description}{where}" + (f" Held-out test: {figures}." if figures else "")


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
            gallery = gr.Gallery(label="Images", elem_id=f"{task.name}-images") \
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
    """The task's own UI, or the default one built from its kinds, inside the current ``gr.Blocks``."""
    if predictor.task.ui is not None:
        predictor.task.ui(predictor)
    else:
        default_task_ui(predictor.task, predictor)


def load_or_train(task_name: str, train_missing: bool = True):
    """The task's predictor; trains the default model first if none exists and asked to."""
    from dlapps.api import load, train

    try:
        return load(task_name)
    except ModelNotFoundError:
        if not train_missing:
            raise
        print(f"No trained {task_name!r} model yet: training the default one (offline, once)...")
        return train(task_name)


def task_blocks(task_name: str, predictor=None):
    """A standalone Gradio app for one task."""
    import gradio as gr

    predictor = predictor or load_or_train(task_name)
    with gr.Blocks(title=f"dlapps · {predictor.task.title}") as demo:
        gr.Markdown(f"# {predictor.task.title}")
        task_ui(predictor)
    return demo


def studio(task_names=None, train_missing: bool = True):
    """Every installed task as a tab; a task that fails to load shows its error in its tab."""
    import gradio as gr

    from dlapps.host import get_host

    host = get_host()
    names = list(task_names or host.task_names())
    with gr.Blocks(title="dlapps studio") as demo:
        gr.Markdown("# dlapps studio\nEvery installed task, one tab each.")
        with gr.Tabs():
            for name in names:
                task_cls = host.task_class(name)
                with gr.Tab(task_cls.title or name, id=name):
                    try:
                        predictor = load_or_train(name, train_missing)
                    except DlappsError as exc:
                        gr.Markdown(f"**{name} is not available:** {exc}")
                        continue
                    task_ui(predictor)
        broken = host.errors()
        if broken:
            with gr.Tab("Plugin errors", id="plugin-errors"):
                gr.Markdown("\n".join(f"- **{p.name}**: `{p.error}`" for p in broken))
    return demo
