"""Hyperparameter search (`dlapps tune`): search spaces and their errors, a killed search that resumes, the
final model and its card, Ray Tune in parallel, and the studio's trial table."""

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import TINY_CONFIG, TINY_RECOMMENDATION_CONFIG
from dlapps.cli import main
from dlapps.data import Dataset, Split
from dlapps.errors import SearchError
from dlapps.options import Param
from dlapps.tune import objective_for, search_space, with_validation_in_training


# -- search spaces ---------------------------------------------------------------------------------
def test_every_built_in_task_declares_a_valid_search_space():
    import dlapps

    for name in dlapps.tasks():
        space = search_space(name)
        assert space and all(isinstance(p, Param) for p in space.values()), name


def test_the_space_changes_from_arguments_and_a_yaml_file(tmp_path):
    space_file = tmp_path / "space.yaml"
    space_file.write_text("dropout: {type: float, min: 0.1, max: 0.2}\nimage_size: off\n"
                          "filters: {choices: [[8, 16], [16, 32]]}\n", encoding="utf-8")
    space = search_space("image-classification", {"learning_rate": "float:1e-4..1e-2:log",
                                                  "batch_size": "choice:16,32"}, space_file)
    assert space["dropout"] == Param(float, 0.1, 0.2)
    assert "image_size" not in space
    assert space["filters"].choices == ([8, 16], [16, 32])
    assert space["learning_rate"] == Param(float, 1e-4, 1e-2, log=True)
    assert space["batch_size"].choices == (16, 32)


@pytest.mark.parametrize("spec, message", [
    ({"no_such_key": "float:0..1"}, "unknown search space key 'no_such_key'"),
    ({"dropout": "float:0.5..0.1"}, "expected min <= max, received min=0.5 > max=0.1"),
    ({"learning_rate": "float:0..0.1:log"}, "expected a positive min on a log scale, received min=0.0"),
    ({"learning_rate": "log:-1e-3..1e-2"}, "expected a positive min on a log scale"),
    ({"dropout": "banana"}, "expected a search space spec of kind int, float, log or choice"),
    ({"dropout": "float:0.1"}, "could not read the search space spec dropout='float:0.1'"),
    ({"filters": "choice:"}, "at least one choice"),
    ({"epochs": "int:2.5..4"}, "whole numbers for an int range"),
])
def test_a_bad_search_space_is_refused_with_a_clear_error(spec, message):
    with pytest.raises(SearchError, match=message.replace("(", r"\(").replace("[", r"\[")):
        search_space("image-classification", spec)


def test_the_cli_refuses_a_bad_space_before_any_training(tmp_path, capsys):
    code = main(["tune", "image-classification", "--space", "dropout=float:1..0", "--out", str(tmp_path / "s")])
    assert code == 2
    assert "search space key 'dropout' of task 'image-classification': expected min <= max" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_objectives_default_to_the_baseline_metric_and_know_their_direction():
    from dlapps.api import task_class

    classifier = task_class("image-classification")
    assert objective_for(classifier) == objective_for(classifier, "accuracy:max")
    assert objective_for(classifier).higher_is_better
    assert not objective_for(classifier, "val_loss").higher_is_better
    assert not objective_for(task_class("speech-recognition")).higher_is_better  # word error rate
    # No baseline: the metric early stopping watches, in the direction the task declares for it.
    watching = type("Watching", (classifier,), {"baseline": None, "monitor": "val_loss_saved",
                                                "monitor_mode": "max"})
    assert objective_for(watching).name == "val_loss_saved" and objective_for(watching).higher_is_better
    with pytest.raises(SearchError, match="METRIC:max or METRIC:min, received 'accuracy:sideways'"):
        objective_for(classifier, "accuracy:sideways")


def test_the_final_training_split_also_holds_the_validation_split():
    images = np.arange(12).reshape(6, 2)
    dataset = Dataset(Split(images[:4], np.arange(4), [f"t{i}" for i in range(4)]),
                      Split(images[4:], np.arange(4, 6), ["v0", "v1"]), Split(images[:1], np.arange(1)), "six")
    joined = with_validation_in_training(dataset)
    assert joined.train.inputs.tolist() == images.tolist() and joined.train.targets.tolist() == list(range(6))
    assert list(joined.train.names) == ["t0", "t1", "t2", "t3", "v0", "v1"]
    assert joined.validation is dataset.validation and joined.test is dataset.test

    class Lazy:  # a split's own lazy sequence (the recommender's queries)
        def __init__(self, n):
            self.n = n

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            return {"query": i}

    lazy = with_validation_in_training(Dataset(Split(Lazy(3), ["a", "b", "c"]), Split(Lazy(2), ["d", "e"]),
                                               Split(Lazy(1), ["f"])))
    assert len(lazy.train.inputs) == 5 and lazy.train.inputs[4] == {"query": 1} and lazy.train.targets[3] == "d"
    assert list(lazy.train.inputs)[2] == {"query": 2}


def test_a_folder_of_another_search_is_not_resumed_by_mistake(tmp_path):
    from dlapps.tune import _start_folder

    _start_folder(tmp_path, {"task": "image-classification", "space": {"dropout": "float:0..0.5"}}, False)
    with pytest.raises(SearchError, match=r"holds another search \(it differs in: space\)"):
        _start_folder(tmp_path, {"task": "image-classification", "space": {"dropout": "float:0..0.2"}}, False)
    _start_folder(tmp_path, {"task": "image-classification", "space": {"dropout": "float:0..0.2"}}, True)


# -- searches --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_search_resumes_and_saves_the_best_config_as_a_model(tmp_path, capsys):
    """3 trials on the digits; killed during the second, the rerun finishes the search without repeating the
    first trial, writes the table, and trains and saves the best config with the search in its model card."""
    folder, model = tmp_path / "search", tmp_path / "model"
    arguments = ["tune", "image-classification", "--trials", "3", "--epochs", "3", "--limit", "200",
                 "--batch-size", "16", "--set", f"filters={json.dumps(TINY_CONFIG['filters'])}",
                 "--space", "filters=off", "--space", "image_size=off", "--space", "learning_rate=log:1e-3..2e-2",
                 "--algorithm", "random", "--out", str(folder), "--model", str(model)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([sys.executable, "-m", "dlapps.cli", *arguments], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        for line in first.stderr:
            if line.startswith("trial 1/3"):
                break
        deadline = time.time() + 120
        while time.time() < deadline and not any(  # into the second trial: killed after its first epoch
                (d / "backup").is_dir() for d in (folder / "trials").iterdir() if not (d / "result.json").exists()):
            time.sleep(0.1)
    finally:
        first.kill()
        first.wait()
    finished = [p.parent.name for p in (folder / "trials").glob("*/result.json")]
    assert len(finished) == 1 and (folder / "keras_tuner" / "oracle.json").is_file()
    first_result = json.loads((folder / "trials" / finished[0] / "result.json").read_text())

    assert main(arguments) == 0  # the same command again (here, in this process)
    printed = capsys.readouterr()
    assert "trial 1/3" not in printed.err and "trial 3/3" in printed.err  # the first trial was not run again
    assert "resuming the search" in printed.err and "*" in printed.out  # the table, the best marked
    rows = json.loads((folder / "trials.json").read_text())
    assert [r["status"] for r in rows] == ["COMPLETED"] * 3, [r["message"] for r in rows]
    assert rows[0]["values"] == first_result["values"] and rows[0]["score"] == first_result["score"]
    assert len((folder / "trials.csv").read_text().strip().splitlines()) == 4
    for row in rows:  # each score is the trial's accuracy on the 200 validation digits, as its result.json says
        result = json.loads((folder / "trials" / row["id"] / "result.json").read_text())
        assert row["score"] == result["score"] == row["metrics"]["accuracy"], row
        assert 0.0 <= row["score"] <= 1.0 and row["score"] * 200 == pytest.approx(round(row["score"] * 200)), row
        assert set(row["values"]) == {"learning_rate", "dropout"}, row  # filters and image_size were turned off
        assert 1e-3 <= row["values"]["learning_rate"] <= 2e-2 and 0.0 <= row["values"]["dropout"] <= 0.5, row
    assert len({r["values"]["learning_rate"] for r in rows}) == 3, "three different configs were tried"
    best = json.loads((folder / "best.json").read_text())
    winner = next(r for r in rows if r["score"] == max(r["score"] for r in rows))  # the first of the highest
    assert best == {"objective": {"name": "accuracy", "direction": "max"}, "trial": winner["trial"],
                    "score": winner["score"], "config": winner["values"]}

    meta = json.loads((model / "task.json").read_text())
    assert meta["tuning"]["best_config"] == best["config"] == {k: meta["config"][k] for k in best["config"]}
    assert len(meta["tuning"]["trials"]) == 3 and meta["training"]["epochs_run"] >= 1
    assert "accuracy" in json.loads((model / "metrics.json").read_text())  # measured once, on the test split
    card = (model / "README.md").read_text()
    assert "## Hyperparameter search" in card and "`learning_rate`: float:0.001..0.02:log" in card
    assert meta["config"]["ood"]["validation_trained_on"] is True  # the final training learnt the validation split
    assert "also trained on those validation inputs" in card


@pytest.mark.slow
def test_ray_tune_runs_two_recommendation_trials_in_parallel(movielens_folder, tmp_path, monkeypatch):
    """The Ray engine: 2 trials at a time on half a CPU each, the same outputs as KerasTuner's."""
    ray = pytest.importorskip("ray")
    from dlapps import tune as tune_module
    from dlapps.tune import tune

    def not_on_this_disk(folder, trial_id):  # on a cluster, a trial's folder is on the node that ran it
        raise AssertionError(f"the driver read trial {trial_id}'s result from its own disk")

    monkeypatch.setattr(tune_module, "read_result", not_on_this_disk)
    lines = []
    try:
        result = tune("recommendation", movielens_folder, trials=2, engine="ray", algorithm="random",
                      concurrent=2, cpus_per_trial=0.5, epochs=1, config=TINY_RECOMMENDATION_CONFIG,
                      space={"embedding_dim": "choice:8,16", "history_length": "off"}, out=tmp_path / "search",
                      model_dir=tmp_path / "model", report=lines.append)
    finally:
        ray.shutdown()
    assert [row["status"] for row in result.trials] == ["COMPLETED", "COMPLETED"]
    first, second = sorted((json.loads(p.read_text()) for p in (tmp_path / "search" / "trials").glob("*/result.json")),
                           key=lambda r: r["started"])
    assert second["started"] < first["finished"]  # the two trials ran at the same time
    assert sum(line.startswith("trial ") for line in lines) == 2
    assert result.best["score"] == max(row["score"] for row in result.trials)
    assert {row["values"]["embedding_dim"] for row in result.trials} <= {8, 16}
    assert all(row["metrics"] for row in result.trials), "each trial's metrics came back through Ray"
    assert (tmp_path / "search" / "trials.csv").is_file()
    meta = result.predictor.meta
    assert meta["tuning"]["engine"] == "ray"
    assert meta["config"]["embedding_dim"] == result.best["values"]["embedding_dim"]
    assert "recall_at_10" in result.predictor.metrics


# -- the studio ------------------------------------------------------------------------------------
def test_the_studio_shows_the_trials_of_a_tuned_model():
    import gradio as gr

    from dlapps.ui import tuning_panel

    tuning = {"engine": "keras-tuner", "algorithm": "random", "objective": {"name": "accuracy", "direction": "max"},
              "space": {"dropout": "float:0..0.5"}, "best_trial": 2, "best_score": 0.9,
              "trials": [{"trial": 1, "status": "COMPLETED", "values": {"dropout": 0.1, "filters": [8, 16]},
                          "score": 0.8, "epochs_run": 3, "seconds": 2.0},
                         {"trial": 2, "status": "COMPLETED", "values": {"dropout": 0.3, "filters": [8, 16]},
                          "score": 0.9, "epochs_run": 4, "seconds": 2.5},
                         {"trial": 3, "status": "FAILED", "values": {"dropout": 0.4, "filters": [8, 16]},
                          "score": None, "epochs_run": None, "seconds": None}]}
    task = SimpleNamespace(name="toy")
    with gr.Blocks() as tuned:
        tuning_panel(SimpleNamespace(task=task, meta={"tuning": tuning}))
    with gr.Blocks() as untuned:
        tuning_panel(SimpleNamespace(task=task, meta={}))
    components = {getattr(b, "elem_id", None): b for b in tuned.blocks.values()}
    table = components["toy-trials"].value
    assert table["headers"] == ["trial", "dropout", "filters", "accuracy", "epochs", "seconds"]
    assert [row[0] for row in table["data"]] == [1, 2, 3] and table["data"][1][3] == 0.9
    plot = components["toy-trials-plot"]
    assert plot.x == "trial" and plot.y == "accuracy" and len(plot.value["data"]) == 2  # the failed trial has none
    assert "Hyperparameter search: 3 trials, best validation accuracy 90.0% (trial 2)" == components["toy-tuning"].label
    assert not any(getattr(b, "elem_id", None) == "toy-trials" for b in untuned.blocks.values())
