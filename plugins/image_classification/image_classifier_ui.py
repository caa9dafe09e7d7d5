"""The image-classification tab: an image in, top-k labels and a Grad-CAM overlay out."""

from __future__ import annotations


def build_ui(task, predictor) -> None:
    import gradio as gr

    from dlapps.inputs import read_image
    from dlapps.ui import model_summary, raise_for_ui
    from dlapps_plugins.image_classification.grad_cam import GradCam, overlay

    grad_cam = GradCam(predictor.model)
    labels = task.config["labels"]

    def classify(image, top_k):
        if image is None:
            raise gr.Error("Upload or paste an image first.")
        with raise_for_ui():
            rgb = read_image(image)
            result = predictor.predict(rgb)
        best = labels.index(result["label"])
        heat = grad_cam.heatmap(task.preprocess(rgb), best)
        shown = {t["label"]: t["score"] for t in result["top_k"][: int(top_k)]}
        return shown, overlay(rgb, heat)

    gr.Markdown(model_summary(predictor))
    with gr.Row():
        with gr.Column():
            image = gr.Image(type="numpy", label="Image", sources=["upload", "clipboard", "webcam"], height=300,
                             elem_id="image-classification-input")
            top_k = gr.Slider(1, len(labels), value=min(task.config["top_k"], len(labels)), step=1,
                              label="Top-k labels")
            button = gr.Button("Classify", variant="primary", elem_id="image-classification-run")
        with gr.Column():
            label = gr.Label(label="Prediction", elem_id="image-classification-label")
            heatmap = gr.Image(label="Grad-CAM: where the model looked", elem_id="image-classification-gradcam")
    examples = task.examples(predictor)
    if examples:
        gr.Examples(examples, inputs=image, label="Examples (held-out test images)")
    button.click(classify, [image, top_k], [label, heatmap], api_name="classify")
    image.upload(classify, [image, top_k], [label, heatmap], api_name=False)
