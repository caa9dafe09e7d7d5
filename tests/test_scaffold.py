"""`dlapps new-plugin` writes a package that installs, registers, and passes its own tests."""

import importlib
import json
import os
import re
import subprocess
import sys

import pytest

from dlapps.cli import main
from dlapps.errors import DlappsError
from dlapps.scaffold import KINDS, new_plugin
from dlapps.task import Task


def _own_members(cls) -> set:
    """The public members a task class defines itself (not those it takes from Task or its kind)."""
    return {name for name in vars(cls) if not name.startswith("_")} - cls._by_kind


def _generated_task(tmp_path, name, kind, monkeypatch):
    """The task class of a freshly written plugin of ``kind``, imported from its folder (on sys.path for the
    test)."""
    folder = new_plugin(name, tmp_path, kind=kind)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("dlapps_" + name.replace("-", "_"))
    return folder, next(v for v in vars(module).values() if isinstance(v, type) and issubclass(v, Task) and v is not Task)


def test_generated_plugin_installs_appears_everywhere_and_passes_its_tests(tmp_path):
    assert main(["new-plugin", "review-mood", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "dlapps-review-mood"
    assert (package / "pyproject.toml").read_text().count('review-mood = "dlapps_review_mood"') == 1
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(package)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site), "DLAPPS_HOME": str(tmp_path / "home")}

    listing = subprocess.run([sys.executable, "-m", "dlapps.cli", "plugins"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert "review-mood 0.1.0  (dlapps_review_mood)" in listing.stdout
    assert "text -> labels" in listing.stdout

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                           env=env, capture_output=True, text=True, timeout=300, cwd=package)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "2 passed" in tests.stdout

    # The CLI and the batch runner serve it with no change to dlapps.
    cli = [sys.executable, "-m", "dlapps.cli"]
    subprocess.run([*cli, "train", "review-mood", "--epochs", "3"], env=env, check=True,
                   capture_output=True, timeout=300)
    predicted = subprocess.run([*cli, "predict", "review-mood", "the food was lovely and great",
                                "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert re.fullmatch(r"the food was lovely and great: positive \(\d+\.\d%\)\n", predicted.stdout), predicted.stdout

    # The kind gives it load_data, evaluate and the baselines: a user's CSV trains, with a classical baseline.
    reviews = tmp_path / "reviews.csv"
    words = {"good": ["tasty", "friendly", "superb", "quick"], "bad": ["cold", "rude", "bland", "late"],
             "so-so": ["okay", "plain", "average", "usual"]}
    lines = ["text,label"] + [f"the {thing} was {words[label][(i + j) % 4]},{label}" for i, thing in
                              enumerate(["soup", "waiter", "room", "bill", "bread", "tea"] * 6)
                              for j, label in enumerate(words)]
    reviews.write_text("\n".join(lines + [",good", "a line without a label,"]) + "\n")
    trained = subprocess.run([*cli, "train", "review-mood", "--data", str(reviews), "--out", str(tmp_path / "mine")],
                             env=env, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "skipped 2 malformed line(s) of 110" in trained.stderr
    metrics = json.loads((tmp_path / "mine" / "metrics.json").read_text())
    assert metrics["confusion_matrix"]["labels"] == ["bad", "good", "so-so"]
    assert metrics["majority_accuracy"] < 0.5 and 0.0 <= metrics["classical_accuracy"] <= 1.0
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == metrics["examples"] == 12
    assert (tmp_path / "mine" / "assets" / "text_baseline.npz").is_file()
    evaluated = subprocess.run([*cli, "eval", "review-mood", "--model", str(tmp_path / "mine"), "--data",
                                str(reviews)], env=env, capture_output=True, text=True, timeout=120)
    assert "on 108 examples" in evaluated.stdout and "classical baseline (a logistic regression on TF-IDF" in \
        evaluated.stdout, evaluated.stdout + evaluated.stderr[-2000:]

    # ... and the studio gives it a tab of its own.
    studio = subprocess.run([sys.executable, "-c", (
        "from dlapps.ui import studio\n"
        "demo = studio(train_missing=False)\n"
        "print(sorted(b.id for b in demo.blocks.values() if type(b).__name__ == 'Tab'))\n")],
        env=env, capture_output=True, text=True, timeout=120)
    assert "'review-mood'" in studio.stdout, studio.stderr[-2000:]


def test_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(DlappsError, match="received 'Bad Name'"):
        new_plugin("Bad Name", tmp_path)
    new_plugin("ok", tmp_path)
    with pytest.raises(DlappsError, match="already exists"):
        new_plugin("ok", tmp_path)


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_kind_is_a_small_task_named_after_the_plugin(tmp_path, kind, monkeypatch):
    folder, task_cls = _generated_task(tmp_path, f"leaf-{kind}", kind, monkeypatch)
    assert task_cls.__name__ == "Leaf" + kind.title().replace("-", "") + "Task" and task_cls.name == f"leaf-{kind}"
    assert len(_own_members(task_cls)) <= 8, sorted(_own_members(task_cls))  # the kind gives the rest
    # postprocess, evaluate, load_data and the baselines come from the labels kind, not the plugin
    assert {"postprocess", "evaluate", "load_data", "baseline"}.isdisjoint(_own_members(task_cls))
    assert [b.baseline for b in task_cls.baseline][0] == "majority_accuracy"
    test_file = (folder / "tests" / f"test_dlapps_leaf_{kind.replace('-', '_')}.py").read_text()
    assert "from dlapps.plugin import InvalidInputError" in test_file
    assert f"--kind {kind}" in (folder / "README.md").read_text()


def test_an_image_labels_plugin_passes_the_harness_and_reads_a_class_folder(tmp_path, monkeypatch):
    import cv2
    import numpy as np

    from dlapps.plugin import InvalidInputError
    from dlapps.testing import run_task_test

    _, task_cls = _generated_task(tmp_path, "leaf-shapes", "image-labels", monkeypatch)
    run_task_test(task_cls, tmp_path / "harness", bad_inputs=[("no-such-picture.png", InvalidInputError)])
    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (tmp_path / "photos" / label).mkdir(parents=True)
        for i in range(10):
            cv2.imwrite(str(tmp_path / "photos" / label / f"{i}.png"), rng.integers(0, 255, (20, 30, 3), np.uint8))
    data = task_cls().load_data(str(tmp_path / "photos"))
    assert data.config["labels"] == ["cats", "dogs"]
    assert sorted(len(s) for s in (data.train, data.validation, data.test)) == [4, 4, 12]
    assert set(data.test.targets.tolist()) == {0, 1}  # stratified: each class in each split


def test_a_missing_method_is_one_line_naming_what_to_write(tmp_path, capsys):
    class Bare(Task):
        name = "bare"
        output_kind = "boxes"  # no kind default for boxes' load_data

    with pytest.raises(DlappsError, match=r"does not implement load_data\(self, path, seed=0\)"):
        Bare().load_data("somewhere")
    with pytest.raises(DlappsError, match="expected a plugin kind, one of text-labels, image-labels, received 'x'"):
        new_plugin("ok", tmp_path, kind="x")
