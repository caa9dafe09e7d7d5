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
