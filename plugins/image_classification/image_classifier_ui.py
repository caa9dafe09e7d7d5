"""The image-classification tab: an image in, top-k labels and a Grad-CAM overlay out."""

from __future__ import annotations


def build_ui(task, predictor) -> None:
    import gradio as gr

    from dlapps.plugin import image_input, model_summary, ood_notice, option_control, raise_for_ui, read_image
    from dlapps_plugins.image_classification.grad_cam import GradCam, overlay

    grad_cam = GradCam(predictor.model)
    labels = task.labels()

    def classify(image, top_k):
        if image is None:
            raise gr.Error("Upload or paste an image first.")
        with raise_for_ui():
            options = predictor.options({"top_k": top_k})
            rgb = read_image(image)
            result = predictor.predict(rgb, **options)
            model_input, _ = task.preprocess(rgb, options)
        heat = grad_cam.heatmap(model_input, labels.index(result["label"]))
        shown = {t["label"]: t["score"] for t in result["top_k"]}
        return shown, overlay(rgb, heat), ood_notice(result)

    gr.Markdown(model_summary(predictor))
    with gr.Row():
        with gr.Column():
            image = image_input(label="Image", sources=["upload", "clipboard", "webcam"], height=300,
                                elem_id="image-classification-input")
            top_k = option_control("top_k", task.predict_options["top_k"], task.config, label="Top-k labels",
                                   value=predictor.options()["top_k"], elem_id="image-classification-top-k")
            button = gr.Button("Classify", variant="primary", elem_id="image-classification-run")
        with gr.Column():
            label = gr.Label(label="Prediction", elem_id="image-classification-label")
            notice = gr.Markdown(elem_id="image-classification-ood")
            heatmap = gr.Image(label="Grad-CAM: where the model looked", interactive=False,
                               elem_id="image-classification-gradcam")
    examples = predictor.examples()
    if examples:  # a click on one puts it in the image, which classifies it with the top-k as set (image.change)
        gr.Examples(examples, inputs=image, label="Examples (held-out test images): click one to classify it",
                    elem_id="image-classification-examples")

    def classify_if_any(image, top_k):  # a cleared image clears the answer too: none is left for no image
        return classify(image, top_k) if image is not None else (None, None, "")

    button.click(classify, [image, top_k], [label, heatmap, notice], api_name="classify")
    # An upload, a paste and an example all change the image: each is classified at once (a cleared one clears).
    image.change(classify_if_any, [image, top_k], [label, heatmap, notice], api_name=False)
