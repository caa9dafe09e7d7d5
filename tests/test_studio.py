"""The studio opens at once: trained models load, missing ones train in the background (fastest first)
with their progress in their tab, a failed training shows its error while the others go on."""

import time

import numpy as np
import pytest

import dlapps
from dlapps.ui import studio
from dlapps.testing import serve
from toy_tasks import installed_toys

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DLAPPS_HOME", str(tmp_path / "home"))
    with installed_toys():
        yield tmp_path / "home"


def test_missing_models_train_in_the_background_one_at_a_time_and_a_failure_stays_in_its_tab(empty_home):
    started = time.perf_counter()
    demo = studio(["toy-image-inverter", "toy-no-data"])
    assert time.perf_counter() - started < 20, "building the studio must not wait for training"
    training = demo.training
    assert list(training.statuses) == ["toy-no-data", "toy-image-inverter"], "fastest first"
    assert all(s.state == "waiting" for s in training.statuses.values()), "nothing trains before it is served"
    assert not (empty_home / "models").exists()

    lines = []
    training._echo = lambda text, final: lines.append(text)
    demo.start_training()
    demo.start_training()  # a second call (another page opened) starts nothing more
    assert training.wait(300)
    failed, ready = training.statuses["toy-no-data"], training.statuses["toy-image-inverter"]
    assert failed.state == "failed" and "expected the toy corpus" in failed.error
    assert failed.line().startswith("training failed: expected the toy corpus")
    assert ready.state == "ready" and ready.epoch == ready.epochs == 1
    # The tab serves the model it trained: its answer is that model's one dense layer applied to each pixel
    # (a black image gives the layer's bias everywhere), scaled by the brightness option, and the same answer
    # as the model saved under DLAPPS_HOME gives.
    predictor = ready.predictor
    kernel, bias = (np.asarray(w, np.float64) for w in predictor.model.layers[-1].get_weights())
    black = predictor.predict(dlapps.ImageOutput(np.zeros((8, 8, 3), "uint8")))
    assert black["original_size"] == [8, 8] and black["image"].shape == (8, 8, 3)
    np.testing.assert_allclose(np.asarray(black["image"], float), np.broadcast_to(np.clip(bias * 255, 0, 255),
                                                                                  (8, 8, 3)), atol=1)
    picture = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    for brightness in (1.0, 0.5):
        result = predictor.predict(picture, brightness=brightness)
        expected = np.clip(((picture / 255.0) @ kernel + bias) * 255 * brightness, 0, 255)
        np.testing.assert_allclose(np.asarray(result["image"], float), expected, atol=1)
    assert len(np.unique(np.asarray(predictor.predict(picture)["image"]))) > 1, "a picture, not a flat colour"
    saved = dlapps.load("toy-image-inverter")
    assert saved.model_dir.parent == empty_home / "models"
    assert np.array_equal(saved.predict(picture)["image"], predictor.predict(picture)["image"])
    assert any("training toy-image-inverter: training" in line for line in lines)
    assert lines[-1] == "dlapps studio: 1/2 missing models trained, 1 failed (toy-no-data)"


def test_without_training_each_missing_tab_says_how_to_train(empty_home):
    demo = studio(["toy-image-inverter"], train_missing=False)
    assert demo.training.statuses == {}
    texts = [str(getattr(block, "value", "")) for block in demo.blocks.values()]
    assert any("dlapps train toy-image-inverter" in text for text in texts)


def test_status_line_reads_like_a_person_wrote_it():
    from dlapps.background_training import TrainingStatus

    status = TrainingStatus("translation", estimate=400, state="training", stage="training", epoch=2, epochs=5,
                            metric="val_loss", value=0.123456, started=time.time() - 60,
                            training_started=time.time() - 40)
    assert status.line() == "training, epoch 2/5, validation loss 0.1235, about 60 s left"


def test_a_waiting_tab_says_its_place_in_line_and_when_it_will_be_ready_and_the_header_how_many_are():
    from dlapps.background_training import BackgroundTraining

    tasks = {name: type(name, (), {"training_seconds": seconds})
             for name, seconds in (("speech", 600), ("digits", 60), ("translation", 1200))}
    training = BackgroundTraining(tasks)
    assert list(training.statuses) == ["digits", "speech", "translation"]
    assert training.tab_line("digits") == "waiting for its turn: next in line, ready in about 60 s"
    digits = training.statuses["digits"]
    digits.state, digits.stage, digits.started = "training", "training", time.time() - 50
    assert training.tab_line("translation") == ("waiting for its turn: 2 model(s) train before it (digits, speech), "
                                                "ready in about 30 min")  # 10 s + 10 min + 20 min
    assert training.ready_line(loaded=2) == "**2 of 5 models ready**; training digits: training, about 10 s left"
    digits.state = "ready"
    training.statuses["speech"].state, training.statuses["speech"].error = "failed", "no espeak-ng"
    assert training.tab_line("translation") == "waiting for its turn: next in line, ready in about 20 min"
    assert training.ready_line(loaded=2) == "**3 of 5 models ready**; could not be trained: speech"


@pytest.mark.browser
def test_a_tab_shows_training_progress_then_becomes_usable_without_a_reload(empty_home, tmp_path):
    from playwright.sync_api import sync_playwright

    demo = studio(["toy-image-inverter"])
    with serve(demo) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.goto(url)  # opening the page starts the training
            progress = page.locator("#toy-image-inverter-training")
            progress.wait_for(timeout=30_000)
            assert "Training:" in progress.inner_text()
            header = page.locator("#studio-progress")
            assert "0 of 1 models ready" in header.inner_text()
            page.locator("#toy-image-inverter-input").wait_for(timeout=180_000)  # the task's UI, rendered
            page.screenshot(path=str(tmp_path / "trained-tab.png"))
            progress.wait_for(state="hidden", timeout=10_000)  # a ready tab shows only its UI
            page.wait_for_function("() => /1 of 1 models ready/.test("
                                   "document.querySelector('#studio-progress').innerText)", timeout=10_000)
            assert page.get_by_text("No trained model yet").count() == 0 or \
                not page.get_by_text("No trained model yet").first.is_visible()
        finally:
            browser.close()
