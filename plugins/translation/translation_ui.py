"""The translation tab: source text in, translation out, beam size, examples, attention heatmap."""

from __future__ import annotations

import html

from dlapps.plugin import model_summary, ood_notice, option_control, raise_for_ui


#: What the heatmap shows, and what it does not.
ATTENTION_CAPTION = (
    "Cross-attention of the last decoder layer, averaged over its heads: each row is an output subword token, "
    "each column a source subword token, and the shade is how much weight that row's token gave each source "
    "token when the model chose it (rows sum to 1). Placeholders, numbers and unknown names show as ⟨0⟩, ⟨1⟩... "
    "as the model saw them. It shows where the model looked, not a word alignment.")


def attention_table(attention: dict | None) -> str:
    """An HTML heatmap: one row per output token, one column per source token, shade = weight."""
    if not attention:
        return "<p>No attention to show (models loaded from KerasHub presets do not expose it).</p>"
    source = [_show(t) for t in attention["source_tokens"]]
    head = "".join(f"<th>{html.escape(t)}</th>" for t in source)
    rows = []
    for token, weights in zip(attention["output_tokens"], attention["weights"]):
        cells = "".join(
            f'<td title="{html.escape(src)}: {w:.2f}" style="background: rgba(37, 99, 235, {w:.3f}); '
            f'color: {"#fff" if w > 0.5 else "inherit"}">{w:.2f}</td>'
            for src, w in zip(source, weights))
        rows.append(f"<tr><th>{html.escape(_show(token))}</th>{cells}</tr>")
    return ('<table class="dlapps-attention" style="border-collapse: collapse; font-size: 0.85em">'
            f"<caption>{ATTENTION_CAPTION}</caption><tr><th>output \\ source</th>{head}</tr>{''.join(rows)}"
            "</table>")


def result_notes(result: dict) -> str:
    """Markdown under the translation: how sure the model is, a flag when the input is outside what it
    knows, and the warnings."""
    share = result.get("unknown_share", 0.0)
    lines = [f"Confidence {result.get('confidence', 0):.2f} (geometric mean probability of the output tokens); "
             f"{share:.0%} of the input's words were rare or never seen in training."]
    if result.get("out_of_domain"):
        lines.insert(0, ood_notice(result))
    return "\n".join([*lines, *(f"- {w}" for w in result.get("warnings", []))])


def _show(token: str) -> str:
    return token.replace("▁", " ").strip() or "␣"


def translation_ui(task, predictor) -> None:
    import gradio as gr

    def translate(text, beam_size):
        if not text or not text.strip():
            return "", attention_table(None), ""
        with raise_for_ui():
            result = predictor.predict(text, beam_size=int(beam_size), attention=True)
        return result["translation"], attention_table(result.get("attention")), result_notes(result)

    languages = f"{task.config['source_language']} → {task.config['target_language']}"
    gr.Markdown(f"{model_summary(predictor)} Languages: {languages}.")
    with gr.Row():
        source = gr.Textbox(label=f"Source ({task.config['source_language']})", lines=3,
                            elem_id="translation-input")
        target = gr.Textbox(label=f"Translation ({task.config['target_language']})", lines=3,
                            interactive=False, elem_id="translation-output")
    with gr.Row():
        beam = option_control("beam_size", task.predict_options["beam_size"], task.config,
                              label="Beam size (1 = greedy)", elem_id="translation-beam")
        button = gr.Button("Translate", variant="primary", elem_id="translation-run")
    notes = gr.Markdown(elem_id="translation-warnings")
    attention = gr.HTML(label="Attention", elem_id="translation-attention")
    examples = predictor.examples()
    if examples:
        gr.Examples(examples, inputs=source)
    outputs = [target, attention, notes]
    button.click(translate, [source, beam], outputs, api_name="translate")
    source.submit(translate, [source, beam], outputs)
