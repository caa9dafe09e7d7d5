"""The studio in a real browser (Debian's chromium driven by Playwright) and through Gradio's client."""

import contextlib

import pytest

from dlapps.testing import serve
from dlapps.ui import studio

CHROMIUM = "/usr/bin/chromium"


@contextlib.contextmanager
def studio_page(url: str, tab: str):
    """A chromium page (Debian's, never a downloaded one) on the studio, with ``tab`` open."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(url)
            page.get_by_role("tab", name=tab).click()
            yield page
        finally:
            browser.close()


@pytest.fixture(scope="module")
def running_studio(digits_model, translation_model, recommendation_model, speech_model):
    with serve(studio()) as url:
        yield url


def test_gradio_client_classifies_an_example(running_studio, example_images, digits_model):
    from gradio_client import Client, handle_file

    from dlapps.inputs import read_image

    client = Client(running_studio, verbose=False)
    label, heatmap, notice = client.predict(handle_file(str(example_images[0])), 3, api_name="/classify")
    expected = digits_model.predict(str(example_images[0]), top_k=3)
    assert ("outside what this model knows" in notice) == expected["out_of_domain"], (notice, expected)
    assert label["label"] == expected["label"]
    assert [c["label"] for c in label["confidences"]] == [t["label"] for t in expected["top_k"]]
    overlay = read_image(heatmap)  # the Grad-CAM overlay, served as an image file
    assert min(overlay.shape[:2]) >= 256 and overlay.std() > 0


def test_studio_without_a_model_says_how_to_train(tmp_path, monkeypatch):
    import dlapps

    monkeypatch.setenv("DLAPPS_HOME", str(tmp_path))
    demo = studio(train_missing=False)
    texts = [str(getattr(block, "value", "")) for block in demo.blocks.values()]
    for name in dlapps.tasks():
        assert any(f"dlapps train {name}" in text for text in texts), f"the {name} tab does not say how to train"


@pytest.mark.browser
def test_upload_an_image_in_the_browser_and_read_the_label(running_studio, example_images, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync"])
        try:
            page = browser.new_page()
            page.goto(running_studio)
            page.locator("#image-classification-input input[type=file]").set_input_files(str(example_images[7]))
            page.locator("#image-classification-run").click()
            # Read the label in the same instant it is found settled: uploading also classifies,
            # so a second run may start between a check and a later read.
            settled = page.wait_for_function(
                "() => { const t = document.querySelector('#image-classification-label').innerText;"
                " return /%/.test(t) && !/processing|pending/i.test(t) ? t : null; }",
                timeout=30_000)
            text = settled.json_value()
            page.screenshot(path=str(tmp_path / "studio.png"))
        finally:
            browser.close()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "Prediction" and lines[1] in [str(d) for d in range(10)]
    assert any(line.endswith("%") for line in lines)


@pytest.mark.parametrize("tab, field, name", [("Image classification", "image-classification-input", "broken.png"),
                                              ("Speech recognition", "speech-recognition-input", "broken.wav")])
def test_a_broken_upload_is_one_short_message_in_the_tab(running_studio, tmp_path, capfd, tab, field, name):
    broken = tmp_path / name
    broken.write_text("this is a text file, not a picture or a recording\n")
    capfd.readouterr()
    with studio_page(running_studio, tab) as page:
        if tab == "Image classification":  # an example first: Gradio then rebuilds the input for this session
            page.locator("#image-classification-examples img").first.click()
            page.wait_for_function("() => /%/.test(document.querySelector('#image-classification-label')"
                                   ".innerText)", timeout=30_000)
        page.locator(f"#{field} input[type=file]").set_input_files(str(broken))  # an upload runs the tab
        page.locator(".toast-body").first.wait_for(timeout=30_000)
        page.wait_for_timeout(1000)  # a second toast (Gradio's own, as before) would be up by now
        toasts = page.locator(".toast-body").all_inner_texts()
    server = capfd.readouterr()
    assert len(toasts) == 1, toasts
    assert "expected" in toasts[0] and name in toasts[0], toasts
    assert "Could not preprocess" not in toasts[0] and "/gradio/" not in toasts[0] and str(tmp_path) not in toasts[0]
    assert "Traceback" not in server.err + server.out and "UnidentifiedImageError" not in server.err + server.out


def test_a_click_on_an_example_classifies_it_and_the_heatmap_is_an_output(running_studio):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(running_studio)
            top_k = page.locator("#image-classification-top-k input[type=number]")
            top_k.fill("2")
            top_k.press("Enter")
            page.locator("#image-classification-examples img").first.click()  # no Classify
            settled = page.wait_for_function(
                "() => { const t = document.querySelector('#image-classification-label').innerText;"
                " return /%/.test(t) && !/processing|pending/i.test(t) ? t : null; }", timeout=30_000)
            text = settled.json_value()
            assert top_k.input_value() == "2"  # the example kept the top-k as set...
            assert sum(line.strip().endswith("%") for line in text.splitlines()) == 2, text  # ...and used it
            heatmap = page.locator("#image-classification-gradcam")
            heatmap.locator("img").wait_for(timeout=30_000)
            assert heatmap.locator("input[type=file]").count() == 0, "an output offers no upload"
            first = page.locator("#image-classification-examples img").first
            assert first.bounding_box()["width"] >= 72, first.bounding_box()  # enlarged, not a speck
            assert first.evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"  # the studio's CSS
        finally:
            browser.close()
    assert "%" in text


@pytest.mark.parametrize("app, inputs", [
    ("studio.py", {"image-classification-input", "translation-input", "recommendation-user",
                   "speech-recognition-input", "object-detection-input", "image-generation-class"}),
    ("image_classification.py", {"image-classification-input"}),
    ("translation.py", {"translation-input"}),
    ("recommendation.py", {"recommendation-user", "recommendation-item"}),
    ("speech_recognition.py", {"speech-recognition-input", "speech-recognition-spectrogram"}),
    ("object_detection.py", {"object-detection-input", "object-detection-conf"}),
    ("image_generation.py", {"image-generation-class", "image-generation-steps"}),
])
def test_apps_expose_a_gradio_demo(app, inputs, digits_model, translation_model, recommendation_model,
                                   speech_model, detection_model, generation_model):
    """`python apps/X.py` launches `demo`; `gradio apps/X.py` looks for the same variable."""
    import runpy
    from pathlib import Path

    import gradio as gr

    namespace = runpy.run_path(str(Path(__file__).parents[1] / "apps" / app), run_name="dlapps_app_test")
    assert isinstance(namespace["demo"], gr.Blocks)
    assert inputs <= {getattr(b, "elem_id", None) for b in namespace["demo"].blocks.values()}


def test_default_ui_serves_a_task_that_writes_none(tmp_path, monkeypatch):
    """A plugin without ui() gets components from its kinds (text in, labels out) and a control per
    predict option, usable by the client."""
    import importlib

    import dlapps
    from dlapps.scaffold import new_plugin
    from dlapps.testing import gradio_client
    from dlapps.ui import task_blocks

    package = new_plugin("tiny-text", tmp_path)
    monkeypatch.syspath_prepend(str(package))
    task_cls = importlib.import_module("dlapps_tiny_text").TinyTextTask
    predictor = dlapps.train(task_cls, epochs=2, out=tmp_path / "model", verbose=0)
    with gradio_client(task_blocks("tiny-text", predictor)) as client:
        result = client.predict("the film was great and fun", 1, api_name="/tiny_text")
        both = client.predict("the film was great and fun", 2, api_name="/tiny_text")
    expected = predictor.predict("the film was great and fun", top_k=2)
    assert result["label"] == expected["label"] and len(result["confidences"]) == 1
    assert [c["label"] for c in both["confidences"]] == [t["label"] for t in expected["top_k"]]


@pytest.mark.browser
def test_translate_in_the_browser_and_see_the_attention_heatmap(running_studio, translation_model):
    expected = translation_model.predict("I have three cats.", beam_size=2)["translation"]
    with studio_page(running_studio, "Translation") as page:
        page.locator("#translation-input textarea").fill("I have three cats.")
        page.locator("#translation-beam input[type=number]").fill("2")
        page.locator("#translation-beam input[type=number]").press("Enter")
        page.locator("#translation-run").click()
        page.wait_for_selector("#translation-attention table", timeout=30_000)
        header = page.locator("#translation-attention table tr").first.inner_text()
        output = page.locator("#translation-output textarea").input_value()
    assert "three" in header and "[EOS]" in header
    assert output == expected


@pytest.mark.browser
def test_pick_a_user_in_the_browser_and_see_why_each_movie_is_recommended(running_studio, recommendation_model):
    knowledge = recommendation_model.task.knowledge
    user = int(knowledge.known.users[1])
    expected = recommendation_model.predict(user, k=10)["items"]
    latest = knowledge.catalogue.describe(knowledge.catalogue.index(knowledge.known.items_of(user)[-1]))["title"]
    with studio_page(running_studio, "Recommendation") as page:
        page.locator("#recommendation-user input").fill(str(user))  # the dropdown searches as one types
        page.locator("#recommendation-user input").press("Enter")
        page.locator("#recommendation-run").click()
        page.wait_for_function(
            f"() => document.querySelector('#recommendation-status').innerText.includes('User {user}')",
            timeout=30_000)
        results = page.locator("#recommendation-results").inner_text()
        history = page.locator("#recommendation-history").inner_text()
    assert expected[0]["title"] in results and expected[-1]["title"] in results
    assert expected[0]["because_you_watched"]["title"] in results
    assert latest in history


@pytest.mark.browser
def test_upload_speech_in_the_browser_and_see_transcript_and_spectrogram(running_studio, speech_model,
                                                                         speech_corpus):
    recording = str(sorted(speech_corpus.rglob("*.flac"))[0])
    expected = speech_model.predict(recording)["text"]
    with studio_page(running_studio, "Speech recognition") as page:
        page.locator("#speech-recognition-input input[type=file]").set_input_files(recording)
        # No click: an uploaded file is transcribed at once.
        page.locator("#speech-recognition-spectrogram img").wait_for(timeout=30_000)
        output = page.locator("#speech-recognition-output textarea").input_value()
        headers = page.locator("#speech-recognition-characters").inner_text()
    assert output == expected
    assert "character" in headers


def test_errors_in_a_tab_say_what_went_wrong_without_upload_paths_or_tracebacks(tmp_path, caplog):
    import os
    import tempfile

    import gradio as gr

    from dlapps.errors import InvalidInputError
    from dlapps.ui import raise_for_ui

    upload = os.path.join(tempfile.gettempdir(), "gradio", "0123abcd", "scan.png")
    with pytest.raises(gr.Error) as handled, raise_for_ui():
        raise InvalidInputError(f"expected an image, received '{upload}', which is empty (0 bytes)")
    assert handled.value.message == "expected an image, received 'scan.png', which is empty (0 bytes)"
    with pytest.raises(gr.Error) as unexpected, raise_for_ui():
        raise KeyError("an internal detail")
    assert unexpected.value.message == "Something went wrong (KeyError); the details are in the server log."
    assert "an internal detail" in caplog.text


def test_metric_names_read_like_words():
    from dlapps.ui import readable_metric

    assert readable_metric("accuracy", 0.98888) == "accuracy 98.9%"
    assert readable_metric("wer", 0.0539) == "word error rate 5.4%"
    assert readable_metric("examples", 359) == "test examples 359"
    assert readable_metric("mean_absolute_error", 0.383) == "mean absolute error 0.383"


@pytest.mark.parametrize("task, key, value, shown", [
    ("object-detection", "baseline_map_50", 0.021,
     "mAP@.5 of the trivial detector (each class's mean training box on every image) 2.1%"),
    ("translation", "copy_source_chrf", 24.03, "chrF of copying the source sentence unchanged 24.03"),
    ("translation", "flagged_out_of_domain", 0.3061, "sentences flagged as outside what the model knows 30.6%"),
    ("image-generation", "frechet_distance_baseline", 51.29,
     "Fréchet distance of per-pixel Gaussians of each class's real images 51.29"),
    ("recommendation", "popularity_mrr", 0.0517, "MRR of recommending the most popular movies 0.0517"),
    ("recommendation", "recall_at_10_vs_popularity", 3.07,
     "Recall@10 in multiples of the most-popular baseline's (x) 3.07"),
    ("recommendation", "recall_at_10_vs_popularity", 0.88,
     "Recall@10 in multiples of the most-popular baseline's (x) 0.88"),
    ("image-classification", "classical_macro_f1", 0.44,
     "macro-F1 of a logistic regression on gradient and colour histograms 44.0%"),
])
def test_every_tasks_metrics_and_baselines_have_a_persons_name(task, key, value, shown):
    from dlapps.api import task_class
    from dlapps.ui import readable_metric

    assert readable_metric(key, value, task_class(task)) == shown


def test_a_tab_names_its_model_by_task_and_training_date_with_the_path_in_details(digits_model):
    from dlapps.ui import model_summary

    summary = model_summary(digits_model)
    finished = digits_model.meta["training"]["finished"]
    assert f"Model: image-classification, trained {finished}." in summary
    before, details = summary.split("<details>")
    assert str(digits_model.model_dir) not in before and str(digits_model.model_dir) in details
    assert "majority accuracy" not in summary and "test examples 359" in summary
