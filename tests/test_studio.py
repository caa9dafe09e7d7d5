"""The studio opens at once: trained models load, missing ones train in the background (fastest first)
with their progress in their tab, a failed training shows its error while the others go on."""

import time

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
    assert ready.predictor.predict(dlapps.ImageOutput(__import__("numpy").zeros((8, 8, 3), "uint8")))["image"].shape
    assert dlapps.load("toy-image-inverter").model_dir.parent == empty_home / "models"
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
    assert status.line() == "training, epoch 2/5, val_loss 0.1235, about 60 s left"


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
            page.locator("#toy-image-inverter-input").wait_for(timeout=180_000)  # the task's UI, rendered
            page.screenshot(path=str(tmp_path / "trained-tab.png"))
            assert "ready" in progress.inner_text()
        finally:
            browser.close()
