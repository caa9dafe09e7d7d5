"""A tour of the studio in a real browser (Debian's chromium, driven by Playwright): every tab is visited, its
first example run, its result checked, no error toast shown, and a screenshot saved per tab in
``test-artifacts/screenshots/`` (or ``$DLAPPS_TEST_ARTIFACTS/screenshots/``)."""

import os
from pathlib import Path

import pytest

from dlapps.testing import serve

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("DLAPPS_TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))

#: tab title -> (task, the button that runs it or None when choosing the example runs it)
TABS = {
    "Image classification": ("image-classification", "#image-classification-run"),
    "Translation": ("translation", "#translation-run"),
    "Recommendation": ("recommendation", "#recommendation-run"),
    "Speech recognition": ("speech-recognition", None),
    "Object detection": ("object-detection", "#object-detection-run"),
    "Image generation": ("image-generation", "#image-generation-run"),
}
#: Gradio marks outputs with these while an event runs.
RUNNING = "document.querySelectorAll('.pending, .progress-text, .eta-bar').length === 0"


def _shown(page, task: str, translation_model) -> None:
    """The tab's result is on the page (what a tiny test model gives: a label, a transcript's spectrogram...)."""
    if task == "image-classification":
        assert "%" in page.locator("#image-classification-label").inner_text()
    elif task == "translation":  # a tiny model may translate to nothing: the page must show what predict gives
        source = page.locator("#translation-input textarea").input_value()
        shown = page.locator("#translation-output textarea").input_value()
        assert source and shown == translation_model.predict(source)["translation"]
    elif task == "recommendation":
        assert "User" in page.locator("#recommendation-status").inner_text()
    elif task == "speech-recognition":
        assert page.locator("#speech-recognition-spectrogram img").count() == 1
    elif task == "object-detection":
        assert page.locator("#object-detection-status").inner_text().strip()
    elif task == "image-generation":
        assert page.locator("#image-generation-gallery img").count() > 0


def _video_tab(page, shots: Path) -> None:
    """Object detection's video sub-tab: its example clip runs and comes back playable, with boxes drawn."""
    page.get_by_role("tab", name="Object detection").click()
    page.get_by_role("tab", name="Video", exact=True).click()
    page.locator("#object-detection-video-tab .gallery-item:visible, "
                 "#object-detection-video-tab tr.tr-body:visible").first.click()
    page.locator("#object-detection-video-run").click()
    page.wait_for_function("() => (document.querySelector('#object-detection-video-status') || {}).innerText"
                           "?.includes('frame(s) read')", timeout=120_000)
    try:
        video = page.locator("#object-detection-video-output video")
        video.wait_for(timeout=30_000)
        assert video.get_attribute("src"), "the annotated video is on the page"
        playable = page.evaluate("() => { const v = document.querySelector('#object-detection-video-output video');"
                                 " return v.canPlayType('video/webm; codecs=\"vp8\"'); }")
        assert playable in ("probably", "maybe"), "the browser plays the WebM the tab returns"
    finally:
        page.screenshot(path=str(shots / "object-detection-video.png"), full_page=True)
    errors = page.locator(".toast-body.error, .toast-wrap .error")
    assert errors.count() == 0, f"Object detection video: {errors.first.inner_text()}"


@pytest.fixture(scope="module")
def every_tab(digits_model, translation_model, recommendation_model, speech_model, detection_model,
              generation_model):
    from dlapps.ui import studio

    with serve(studio()) as url:
        yield url


@pytest.mark.browser
@pytest.mark.slow
def test_every_tab_runs_its_first_example_without_an_error(every_tab, speech_corpus, translation_model):
    from playwright.sync_api import sync_playwright

    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(every_tab)
            page.get_by_role("tab").first.wait_for(timeout=30_000)
            tab_names = [t.strip() for t in page.get_by_role("tab").all_inner_texts()]
            assert set(TABS) <= set(tab_names), tab_names
            for title, (task, run) in TABS.items():
                page.get_by_role("tab", name=title).click()
                examples = page.locator(".gallery-item:visible, tr.tr-body:visible")
                if examples.count():
                    examples.first.click()
                    # The example loads into the input asynchronously: run only once it is there (a loaded
                    # machine took longer than the click on the button).
                    page.wait_for_timeout(300)
                    page.wait_for_function(f"() => {RUNNING}", timeout=60_000)
                    if task in ("image-classification", "object-detection"):
                        page.locator(f"#{task}-input img").first.wait_for(timeout=30_000)
                elif task == "speech-recognition":  # a tiny model gets no recording right: none is shipped
                    recording = str(sorted(speech_corpus.rglob("*.flac"))[0])
                    page.locator("#speech-recognition-input input[type=file]").set_input_files(recording)
                if run:
                    page.locator(run).click()
                page.wait_for_timeout(1000)
                try:
                    page.wait_for_function(f"() => {RUNNING}", timeout=60_000)
                    _shown(page, task, translation_model)
                finally:
                    page.screenshot(path=str(shots / f"{task}.png"), full_page=True)
                errors = page.locator(".toast-body.error, .toast-wrap .error")
                assert errors.count() == 0, f"{title}: {errors.first.inner_text()}"
                assert (shots / f"{task}.png").stat().st_size > 10_000
            _video_tab(page, shots)
        finally:
            browser.close()
