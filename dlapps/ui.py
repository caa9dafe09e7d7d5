"""Shared Gradio pieces, and the studio that mounts every task as a tab."""

from __future__ import annotations

import contextlib

from dlapps.errors import DlappsError, ModelNotFoundError


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


#: Gradio input components for each input kind; other kinds get a text box.
INPUT_COMPONENTS = {"image": "Image", "text": "Textbox", "audio": "Audio"}


def default_task_ui(task, predictor) -> None:
    """A UI built from the task's input and output kinds, for tasks that do not write their own.

    Labels show as a Gradio Label (top-k with bars); any other result as JSON.
    """
    import gradio as gr

    def run(value):
        if value is None or (isinstance(value, str) and not value.strip()):
            raise gr.Error(f"Give an input ({task.input_kind}) first.")
        with raise_for_ui():
            result = predictor.predict(value)
        if task.output_kind == "labels" and "top_k" in result:
            return {t["label"]: t["score"] for t in result["top_k"]}
        return result

    input_cls = getattr(gr, INPUT_COMPONENTS.get(task.input_kind, "Textbox"))
    output_cls = gr.Label if task.output_kind == "labels" else gr.JSON
    gr.Markdown(model_summary(predictor))
    with gr.Row():
        source = input_cls(label=task.input_kind.capitalize(), elem_id=f"{task.name}-input")
        result = output_cls(label="Result", elem_id=f"{task.name}-output")
    button = gr.Button("Run", variant="primary", elem_id=f"{task.name}-run")
    examples = task.examples(predictor)
    if examples:
        gr.Examples(examples, inputs=source)
    button.click(run, source, result, api_name=task.name.replace("-", "_"))


def load_or_train(task_name: str, train_missing: bool = True):
    """The task's predictor; trains the default model first if none exists and asked to."""
    from dlapps.inference import load
    from dlapps.training import train

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
        predictor.task.ui(predictor)
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
                    predictor.task.ui(predictor)
        broken = host.errors()
        if broken:
            with gr.Tab("Plugin errors", id="plugin-errors"):
                gr.Markdown("\n".join(f"- **{p.name}**: `{p.error}`" for p in broken))
    return demo
