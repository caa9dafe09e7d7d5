"""Multi-worker training: two worker processes on this machine train one model together (MultiWorkerMirroredStrategy,
the core's own loop); both end with the same weights, the loss goes down, and only the chief saves."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import dlapps
from dlapps.errors import DataError
from dlapps.multiworker import is_chief, tf_config

#: Worker 1 runs through Python with TF_CONFIG set, and writes its final weights for the test to compare.
WORKER_SCRIPT = """
import sys
import numpy as np
import dlapps
p = dlapps.train("image-classification", epochs=4, limit=64, batch_size=8, out=sys.argv[1], verbose=0,
                 config={"filters": [4, 8], "dropout": 0.0, "learning_rate": 0.01})
assert p.model_dir is None, "only the chief saves"
np.savez(sys.argv[2], **{w.path: w.numpy() for w in p.model.weights})
"""


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_one_model_and_only_the_chief_saves_it(tmp_path):
    workers = ",".join(f"localhost:{port}" for port in free_ports(2))
    env = {**os.environ, "DLAPPS_HOME": str(tmp_path / "home")}
    env.pop("TF_CONFIG", None)
    chief = subprocess.Popen(
        [sys.executable, "-m", "dlapps.cli", "train", "image-classification", "--workers", workers,
         "--worker-index", "0", "--epochs", "4", "--limit", "64", "--batch-size", "8", "--out",
         str(tmp_path / "chief"), "--set", "filters=[4,8]", "--set", "dropout=0.0", "--set", "learning_rate=0.01"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    other = subprocess.Popen(
        [sys.executable, "-c", WORKER_SCRIPT, str(tmp_path / "other"), str(tmp_path / "other_weights.npz")],
        env={**env, "TF_CONFIG": tf_config(workers, 1)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        chief_out, chief_err = chief.communicate(timeout=300)
        _, other_err = other.communicate(timeout=60)
    finally:
        chief.kill()
        other.kill()
    assert chief.returncode == 0, chief_err[-3000:]
    assert other.returncode == 0, other_err[-3000:]

    assert "Saved image-classification model to" in chief_out
    assert not (tmp_path / "other").exists(), "a worker that is not the chief saved the model"
    meta = json.loads((tmp_path / "chief" / "task.json").read_text())
    assert meta["training"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert meta["training"]["replicas"] == 2 and meta["training"]["global_batch_size"] == 16

    losses = [float(x) for x in re.findall(r"Epoch \d+/4: loss ([0-9.]+)", chief_err)]
    assert len(losses) == 4 and losses[-1] < losses[0], chief_err[-2000:]

    saved = {w.path: w.numpy() for w in dlapps.load("image-classification", tmp_path / "chief").model.weights}
    other_weights = dict(np.load(tmp_path / "other_weights.npz"))
    assert sorted(saved) == sorted(other_weights)
    differ = [path for path in saved if not np.array_equal(saved[path], other_weights[path])]
    assert not differ, f"the workers ended with different values of {differ}"


def test_tf_config_names_the_cluster_and_this_worker(monkeypatch):
    config = json.loads(tf_config("host1:2222, host2:2222", 1))
    assert config == {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    assert not is_chief()
    monkeypatch.setenv("TF_CONFIG", tf_config(["host1:2222", "host2:2222"], 0))
    assert is_chief()
    monkeypatch.delenv("TF_CONFIG")
    assert is_chief()  # one machine: it saves


@pytest.mark.parametrize("workers, index, message", [
    ("host1,host2:2222", 0, "HOST:PORT"),
    ("host1:2222,host1:2222", 0, "each worker once"),
    ("host1:2222,host2:2222", 2, "from 0 to 1"),
])
def test_bad_worker_settings_are_refused(workers, index, message):
    with pytest.raises(DataError, match=message):
        tf_config(workers, index)
