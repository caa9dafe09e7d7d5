"""Training: resume after a crash, multi-replica on CPU, TensorBoard logs, bad settings."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dlapps
from conftest import TINY_CONFIG
from dlapps.errors import DataError


class CrashAfterEpoch:
    """A Keras callback that dies after a given epoch, like a machine losing power."""

    def __new__(cls, epoch):
        import keras

        class _Crash(keras.callbacks.Callback):
            def on_epoch_end(self, index, logs=None):
                if index + 1 == epoch:
                    raise KeyboardInterrupt(f"simulated crash after epoch {epoch}")

        return _Crash()


def test_interrupted_training_resumes_from_the_last_completed_epoch(tmp_path, capsys):
    options = dict(epochs=4, out=tmp_path / "model", config={**TINY_CONFIG, "patience": 10}, limit=60, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        dlapps.train("image-classification", callbacks=[CrashAfterEpoch(2)], **options)
    assert not (tmp_path / "model").exists(), "a crashed run must not leave a model behind"

    predictor = dlapps.train("image-classification", **options)
    training = predictor.meta["training"]
    assert training["resumed_from_epoch"] == 2
    assert training["epochs_run"] == 4
    assert "Resuming image-classification training from epoch 2" in capsys.readouterr().err
    assert any(os.scandir(training["logs"])), "TensorBoard logs were not written"

    again = dlapps.train("image-classification", **options)  # finished runs start afresh
    assert again.meta["training"]["resumed_from_epoch"] == 0


def test_a_backup_cut_short_by_a_kill_during_the_first_save_starts_training_over(tmp_path, capsys):
    options = dict(epochs=2, out=tmp_path / "model", config=TINY_CONFIG, limit=40, verbose=0)
    with pytest.raises(KeyboardInterrupt):
        dlapps.train("image-classification", callbacks=[CrashAfterEpoch(1)], **options)
    backup = max(Path(os.environ["DLAPPS_HOME"], "runs").rglob("backup/latest.weights.h5"),
                 key=lambda p: p.stat().st_mtime)  # this run's
    backup.write_bytes(backup.read_bytes()[:96])  # killed while writing: nothing older to fall back on
    predictor = dlapps.train("image-classification", **options)
    assert predictor.meta["training"]["epochs_run"] == 2
    assert "was cut short" in capsys.readouterr().err


@pytest.mark.slow
def test_killed_cli_training_resumes(tmp_path):
    env = {**os.environ, "DLAPPS_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "dlapps.cli", "train", "image-classification", "--epochs", "30",
               "--limit", "100", "--out", str(tmp_path / "model"), "--set", "filters=[8,16]",
               "--set", "patience=50"]
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "home" / "runs"
    deadline = time.time() + 120
    while time.time() < deadline:
        metadata = list(runs.glob("*/backup/training_metadata.json")) if runs.exists() else []
        if metadata and json.loads(metadata[0].read_text() or "{}").get("epoch", 0) >= 2:
            break
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert metadata, "training never completed an epoch"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resuming image-classification training from epoch" in second.stderr
    meta = json.loads((tmp_path / "model" / "task.json").read_text())
    assert meta["training"]["resumed_from_epoch"] >= 2


def test_mirrored_strategy_over_two_logical_cpus(tmp_path):
    code = (
        "import dlapps, json\n"
        "from dlapps import runtime\n"
        "p = dlapps.train('image-classification', epochs=1, limit=64, batch_size=8, verbose=0,"
        f" out={str(tmp_path / 'model')!r}, config={{'filters': [4, 8]}})\n"
        "print(json.dumps(p.meta['training']))\n"
    )
    env = {**os.environ, "DLAPPS_CPU_REPLICAS": "2", "DLAPPS_HOME": str(tmp_path / "home")}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    training = json.loads(run.stdout.strip().splitlines()[-1])
    assert training["strategy"] == "MirroredStrategy"
    assert training["replicas"] == 2
    assert training["global_batch_size"] == 16  # per-replica 8, scaled by the replicas


@pytest.mark.parametrize("option", [{"epochs": 0}, {"batch_size": -4}])
def test_bad_training_settings_are_refused(tmp_path, option):
    with pytest.raises(DataError, match="positive integer"):
        dlapps.train("image-classification", out=tmp_path / "m", **option)


def test_the_plan_follows_the_size_of_the_data_and_keeps_what_the_user_set():
    from dlapps.recipes import PLAN_DEFAULTS, Recipe, plan_training

    def planned(train_size, user=(), given=(), **config):
        recipe = Recipe({**PLAN_DEFAULTS, "batch_size": 64, "epochs": 60, "min_steps": 2000, "max_steps": 6000,
                         "patience": 10, **config}, user=user, given=given)
        plan_training(recipe, train_size)
        return recipe.config, {c.key: c.why for c in recipe.choices.values()}

    # 126 images: a smaller batch, the floor of steps, several passes an epoch, patience and warm-up in steps.
    config, why = planned(126)
    assert config["batch_size"] == 32 and "at least 3 steps" in why["batch_size"]
    assert config["steps"] == 2000 and "raised to the floor min_steps=2,000" in why["steps"]
    assert config["steps_per_epoch"] == 25 and config["epochs"] == 80
    assert config["patience"] == 40  # 50% of 2,000 steps = 1,000 steps = 40 epochs of 25
    assert config["warmup_steps"] == 100
    # Plenty of data: the default batch, 60 passes, capped by the ceiling.
    config, why = planned(20_000)
    assert config["batch_size"] == 64 and config["steps_per_epoch"] == 313
    assert config["steps"] == 6000 and "capped at max_steps=6,000" in why["steps"]
    assert config["epochs"] == 20
    # In between: 60 passes.
    config, _ = planned(3_000)
    assert config["steps"] == 60 * 47 and config["epochs"] == 60
    # Halving the rate on plateaus: patience in epochs, raised to the task's patience_steps (a noisy score).
    config, why = planned(126, schedule="plateau", patience=2)
    assert config["patience"] == 4 and "at least 100 steps" in why["patience"]  # 100 steps = 4 epochs of 25
    config, why = planned(126, schedule="plateau", patience=2, patience_steps=300)
    assert config["patience"] == 12 and "at least 300 steps" in why["patience"]
    # The user's --epochs and --batch-size win; the steps follow from them.
    config, why = planned(126, user={"epochs", "batch_size"}, epochs=3, batch_size=8)
    assert (config["batch_size"], config["epochs"], config["steps_per_epoch"], config["steps"]) == (8, 3, 16, 48)
    assert why["batch_size"] == why["epochs"] == "set by you"
    # --set steps=N: the epochs follow.
    config, why = planned(126, user={"steps"}, steps=300)
    assert config["steps"] == 300 and config["epochs"] == 12 and why["steps"] == "set by you"
    # A few dozen examples: epochs of repeated data that make the planned steps, not more.
    config, _ = planned(60, min_steps=30, epochs=2)
    assert config["steps"] == 30 and config["steps_per_epoch"] * config["epochs"] == 30
    config, _ = planned(60, min_steps=110, epochs=2)
    assert (config["steps_per_epoch"], config["epochs"]) == (28, 4)  # 112 steps: within an epoch of the plan
    # What the dataset declares is kept too, and said so.
    config, why = planned(126, given={"batch_size"}, batch_size=16)
    assert config["batch_size"] == 16 and why["batch_size"] == "set by the dataset"


def test_a_training_run_prints_its_plan_and_records_it_in_task_json_and_the_model_card(tmp_path, capsys):
    import json

    from toy_tasks import Denoiser

    predictor = dlapps.train(Denoiser(), out=tmp_path / "model", verbose=0, config={"steps": 30}, time_budget=600)
    err = capsys.readouterr().err
    assert "training plan, from the data" in err and "steps=30: set by you" in err
    recipe = json.loads((tmp_path / "model" / "task.json").read_text())["training"]["recipe"]
    choices = {c["key"]: c for c in recipe["choices"]}
    assert choices["steps"]["value"] == 30 and choices["time_budget"]["value"] == 600
    assert choices["epochs"]["value"] == predictor.meta["training"]["epochs"]
    card = (tmp_path / "model" / "README.md").read_text()
    assert "## Training plan" in card and "`steps=30`: set by you" in card


def test_a_backup_made_under_another_plan_is_not_resumed(tmp_path, capsys):
    from dlapps.training import PLAN_FILE, _completed_epochs, keep_backup_of_the_same_plan

    backup = tmp_path / "backup"
    keep_backup_of_the_same_plan(backup, {"steps": 2000, "image_size": 32})
    (backup / "training_metadata.json").write_text('{"epoch": 7}')
    keep_backup_of_the_same_plan(backup, {"image_size": 32, "steps": 2000})  # the same plan: resumed
    assert _completed_epochs(backup) == 7 and "another plan" not in capsys.readouterr().err
    keep_backup_of_the_same_plan(backup, {"steps": 2000, "image_size": 64})  # the plan changed: starts over
    assert _completed_epochs(backup) == 0 and "made under another plan" in capsys.readouterr().err
    assert json.loads((backup / PLAN_FILE).read_text())["image_size"] == 64
