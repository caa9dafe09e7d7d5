"""The task contract's core pieces: typed options, file results, the dataset hook (ragged targets,
per-epoch augmentation, unlabelled data, a model with its own train_step), context and pieces."""

import json

import numpy as np
import pytest

import dlapps
from dlapps.errors import InvalidInputError
from dlapps.options import Option, check_options
from dlapps.testing import gradio_client, run_task_test
from toy_tasks import Denoiser, ImageInverter, RaggedBoxes, installed_toys


# -- typed options -------------------------------------------------------------------------------
OPTIONS = {
    "beam_size": Option(int, 4, "1 is greedy", min=1, max=64),
    "k": Option(int, 10, "how many", min=1, max=lambda config: config["n_items"]),
    "guidance": Option(float, 3.0, "guidance scale", min=0.0),
    "attention": Option(bool, False, "also return attention"),
    "mode": Option(str, "fast", "speed", choices=("fast", "exact")),
    "label": Option(str, None, "a class, or none", optional=True),
}


def test_options_get_defaults_and_keep_valid_values():
    checked = check_options(OPTIONS, {"beam_size": np.int64(8), "guidance": 2, "k": 4.0}, {"n_items": 50}, "t")
    assert checked == {"beam_size": 8, "k": 4, "guidance": 2.0, "attention": False, "mode": "fast", "label": None}
    assert type(checked["beam_size"]) is int and type(checked["guidance"]) is float


@pytest.mark.parametrize("given, message", [
    ({"beam_size": 0}, "expected beam_size to be an integer from 1 to 64, received 0"),
    ({"beam_size": "3"}, "expected beam_size to be an integer from 1 to 64, received '3'"),
    ({"beam_size": True}, "expected beam_size to be an integer from 1 to 64, received True"),
    ({"beam_size": 2.5}, "received 2.5"),
    ({"k": 51}, "expected k to be an integer from 1 to 50, received 51"),
    ({"guidance": -1.0}, "expected guidance to be a number >= 0, received -1.0"),
    ({"guidance": float("nan")}, "expected guidance to be a number >= 0, received nan"),
    ({"attention": 1}, "expected attention to be true or false, received 1"),
    ({"mode": "slow"}, "expected mode to be one of 'fast', 'exact', received 'slow'"),
    ({"beam": 3}, "unknown predict option 'beam' for task 't'; expected one of: beam_size, k"),
])
def test_bad_options_name_the_option_what_was_expected_and_received(given, message):
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_options(OPTIONS, given, {"n_items": 50}, "t")


def test_an_option_of_an_unsupported_type_is_a_plugin_bug():
    with pytest.raises(TypeError, match="int, float, bool or str"):
        Option(list, [])


# -- file results: Python, batch runner, UI -------------------------------------------------------------
@pytest.fixture(scope="module")
def toys_installed():
    with installed_toys():
        yield


@pytest.fixture(scope="module")
def inverter(tmp_path_factory, toys_installed):
    return dlapps.train(ImageInverter, epochs=30, out=tmp_path_factory.mktemp("inverter") / "model", verbose=0)


def test_python_gets_image_results_as_arrays_it_can_save(inverter, tmp_path):
    image = np.zeros((16, 24, 3), np.uint8)
    result = inverter.predict(image)
    assert isinstance(result["image"], np.ndarray) and result["image"].shape == (8, 8, 3)
    assert result["image"].dtype == np.uint8 and result["image"].mean() > 150  # the negative of black is light
    assert result["original_size"] == [24, 16]  # the context carried the input's size to postprocess
    saved = result["image"].save(tmp_path / "negative.png")
    assert np.array_equal(dlapps.load(ImageInverter, inverter.model_dir).task.preprocess(saved, {})[0],
                          result["image"])
    assert result["image"].to_pil().size == (8, 8)


def test_batch_runner_writes_image_results_as_files_beside_the_jsonl(inverter, tmp_path):
    from dlapps.cli import main

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        dlapps.ImageOutput(np.full((8, 8, 3), 60 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "results" / "out.jsonl"
    out.parent.mkdir()
    assert main(["predict", ImageInverter.name, str(folder), "--model", str(inverter.model_dir), "--output",
                 str(out), "--output-dir", str(tmp_path / "results" / "images"), "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and sum("error" in r for r in records) == 1
    for record in (r for r in records if "error" not in r):
        path = out.parent / record["image"]
        assert record["image"].startswith("images/") and path.suffix == ".png" and path.is_file()
        assert np.array_equal(dlapps.load(ImageInverter, inverter.model_dir).task.preprocess(path, {})[0],
                              inverter.predict(record["input"])["image"])


def test_default_output_folder_is_named_after_the_jsonl(inverter, tmp_path):
    from dlapps.batch import run_batch

    image = np.zeros((8, 8, 3), np.uint8)
    run_batch(inverter, [("black", image)], tmp_path / "run.jsonl", progress=False)
    record = json.loads((tmp_path / "run.jsonl").read_text())
    assert record["image"].startswith("run_files/") and (tmp_path / record["image"]).is_file()


def test_the_default_ui_shows_image_results_in_a_gallery(inverter, tmp_path):
    from gradio_client import handle_file

    from dlapps.ui import task_blocks

    example = dlapps.ImageOutput(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "black.png")
    with gradio_client(task_blocks(ImageInverter.name, inverter)) as client:
        shown, gallery = client.predict(handle_file(str(example)), 1.0, api_name="/toy_image_inverter")
    assert shown["image"] == "<image 8x8>"
    assert len(gallery) == 1


def test_the_harness_passes_a_task_with_file_results(tmp_path):
    run_task_test(ImageInverter, tmp_path, bad_inputs=[(b"not an image", InvalidInputError)], replicas=False)


# -- the dataset hook ------------------------------------------------------------------------------
def ragged_split():
    targets = [{"boxes": np.ones((n, 4)) * n, "labels": np.arange(n)} for n in (1, 3, 0, 2)]
    return dlapps.plugin.Split([1, 2, 3, 4], targets)


def test_ragged_targets_are_padded_per_batch_with_their_pad_values():
    batches = list(RaggedBoxes().make_dataset(ragged_split(), training=False, batch_size=2).as_numpy_iterator())
    (x, first), (_, second) = batches
    assert first["boxes"].shape == (2, 3, 4) and second["boxes"].shape == (2, 2, 4)
    assert first["labels"].tolist() == [[0, -1, -1], [0, 1, 2]]  # -1, never 0: class 0 is a real class
    assert (first["boxes"][0, 1:] == -1).all() and second["labels"].tolist() == [[-1, -1], [0, 1]]


def test_augmentation_is_drawn_anew_each_epoch_and_only_in_training():
    task = RaggedBoxes()
    training = task.make_dataset(ragged_split(), training=True, batch_size=4, seed=1)
    epoch1, epoch2 = (sorted(next(iter(training))[0].numpy().tolist()) for _ in range(2))
    assert epoch1 != epoch2
    plain = next(iter(task.make_dataset(ragged_split(), training=False, batch_size=4)))[0].numpy()
    assert plain[:, 0].tolist() == [1, 2, 3, 4]


def test_training_order_mixes_the_whole_split_each_epoch():
    """Data stored in order (one program's sentences after another's, generated pairs last) is shuffled across
    the whole split, so a first batch, or an epoch of part of a pass, draws from all of it."""
    class Ordered(dlapps.plugin.Task):
        name = "toy-ordered"
        input_kind = "id"

        def preprocess(self, raw, options):
            return np.array([float(raw)], np.float32), None

    split = dlapps.plugin.Split(list(range(30_000)), [np.float32(0)] * 30_000)
    training = Ordered().make_dataset(split, training=True, batch_size=3_000)
    first, again = (next(iter(training))[0].numpy()[:, 0] for _ in range(2))
    assert first.min() < 10_000 and first.max() >= 20_000, "the first batch draws from the whole split"
    assert sorted(first) != sorted(again), "a new order each epoch"


def test_a_model_with_its_own_train_step_trains_on_unlabelled_data_and_resumes(tmp_path, capsys):
    from test_training import CrashAfterEpoch

    options = dict(epochs=3, out=tmp_path / "model", verbose=0)
    with pytest.raises(KeyboardInterrupt):
        dlapps.train(Denoiser, callbacks=[CrashAfterEpoch(2)], **options)
    predictor = dlapps.train(Denoiser, **options)
    assert predictor.meta["training"]["resumed_from_epoch"] == 2
    assert predictor.meta["training"]["epochs_run"] == 3
    again = dlapps.load(Denoiser, tmp_path / "model")
    vectors = [np.zeros(4), np.ones(4)]
    assert again.predict(vectors) == predictor.predict(vectors)


def test_a_task_adds_callbacks_through_its_hook(tmp_path):
    import keras

    seen = []

    class Recorder(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)

    class Recorded(Denoiser):
        def callbacks(self, defaults, run_dir):
            assert {type(c).__name__ for c in defaults} >= {"BackupAndRestore", "EarlyStopping"}
            return [*defaults, Recorder()]

    dlapps.train(Recorded(), epochs=2, out=tmp_path / "model", verbose=0)
    assert seen == [0, 1]


# -- the input-flag hook ---------------------------------------------------------------------------------
def test_plugins_add_input_flags_through_the_hook():
    from dlapps.host import PluginHost
    from dlapps.plugin import hookimpl

    class FlagPlugin:
        @hookimpl
        def dlapps_predict_input_flags(self, task_name, add_flag):
            if task_name == "toy-denoiser":
                add_flag("zeros", "N", "N vectors of zeros", lambda value: [(f"zeros-{i}", [0, 0, 0, 0])
                                                                             for i in range(int(value))])

    host = PluginHost(load_entry_points=False)
    host.add_plugin(FlagPlugin(), "flags")
    flags = host.input_flags("toy-denoiser")
    assert [f.name for f in flags] == ["zeros"] and flags[0].read("2")[1] == ("zeros-1", [0, 0, 0, 0])
    assert host.input_flags("another-task") == []


def test_large_splits_stream_and_keep_the_tasks_target_transform(monkeypatch):
    from dlapps import pipeline
    from dlapps.plugin import Split, Task

    class Shifted(Task):
        def training_example(self, raw, target):
            return np.full(3, raw, np.float32), np.int32(target + 100)

    prepared = []
    monkeypatch.setattr(pipeline, "prepare_examples", lambda *args: prepared.append(args))
    monkeypatch.setattr(pipeline, "IN_MEMORY_BYTES", 0)  # every split is "too large": it streams
    x, y = next(iter(Shifted().make_dataset(Split([1, 2, 3], np.array([0, 1, 2])), training=False, batch_size=3)))
    assert prepared == [], "a large split must not be prepared in memory"
    assert y.numpy().tolist() == [100, 101, 102] and x.numpy()[:, 0].tolist() == [1, 2, 3]


def test_a_model_no_better_than_its_trivial_baseline_is_reported_loudly(tmp_path, capsys):
    from dlapps.plugin import Baseline

    class Useless(Denoiser):
        baseline = Baseline("accuracy", "majority_accuracy", "always predicting the most frequent class")

        def evaluate(self, predictor, split):
            return {"accuracy": 0.51, "majority_accuracy": 0.5}

    predictor = dlapps.train(Useless(), epochs=1, out=tmp_path / "model", verbose=0)
    assert "WARNING: this toy-denoiser model looks useless: held-out accuracy 0.51 is NOT clearly better than " \
           "always predicting the most frequent class (0.5)" in capsys.readouterr().err
    assert predictor.metrics["baseline_check"]["better"] is False
    assert "**WARNING: this model is not clearly better than a trivial baseline" in \
        (tmp_path / "model" / "README.md").read_text()

    class Useful(Useless):
        def evaluate(self, predictor, split):
            return {"accuracy": 0.9, "majority_accuracy": 0.5}

    good = dlapps.train(Useful(), epochs=1, out=tmp_path / "good", verbose=0)
    assert "WARNING" not in capsys.readouterr().err and good.metrics["baseline_check"]["better"] is True


def test_a_baseline_floor_makes_twice_nothing_not_clearly_better():
    """A mean box scores mAP about 0 on objects placed anywhere: twice 0 must not count as clearly better."""
    from dlapps.plugin import Baseline

    relative = Baseline("map_50", "baseline_map_50", "the mean box", margin=1.0)
    floored = Baseline("map_50", "baseline_map_50", "the mean box", margin=1.0, floor=0.05)
    assert relative.check({"map_50": 0.01, "baseline_map_50": 0.0})["better"] is True
    assert floored.check({"map_50": 0.01, "baseline_map_50": 0.0})["better"] is False
    assert floored.check({"map_50": 0.06, "baseline_map_50": 0.0})["better"] is True
    assert floored.check({"map_50": 0.5, "baseline_map_50": 0.3})["better"] is False  # not twice: the margin holds
    lower = Baseline("wer", "copy_wer", "copying", higher_is_better=False, floor=0.1)
    assert lower.check({"wer": 0.95, "copy_wer": 1.0})["better"] is False
    assert lower.check({"wer": 0.85, "copy_wer": 1.0})["better"] is True
    # A classical baseline (margin 0): a tie is only fine when both are perfect, and then it is not called better
    classical = Baseline("accuracy", "classical_accuracy", "a logistic regression", margin=0.0, kind="classical")
    perfect = classical.check({"accuracy": 1.0, "classical_accuracy": 1.0})
    assert perfect["better"] is True and "1 is as good as (both perfect) a logistic regression" in perfect["message"]
    tie = classical.check({"accuracy": 0.6, "classical_accuracy": 0.6})
    assert tie["better"] is False and "NOT clearly better than" in tie["message"]
    assert classical.check({"accuracy": 0.61, "classical_accuracy": 0.6})["better"] is True


def test_defaults_by_kind_and_one_line_errors_for_what_a_plugin_leaves_out(tmp_path):
    """A text task reads the ``text`` field of an input list unless it names another; a label with a score
    reads ``7 (98.2%)``; a method the plugin did not write is a one-line error that names it."""
    from dlapps.batch import read_input_file
    from dlapps.errors import DataError, DlappsError, MissingMethodError
    from dlapps.plugin import Task

    class Mood(Task):
        name = "mood"
        input_kind = "text"

    class Photos(Task):
        name = "photos"
        input_kind = "image"

    class Reviews(Mood):
        input_field = "review"

    class MoreReviews(Reviews):
        pass

    assert (Mood.input_field, Photos.input_field, Reviews.input_field, MoreReviews.input_field) == \
        ("text", "input", "review", "review")
    listing = tmp_path / "list.csv"
    listing.write_text("id,text\n1,a lovely day\n2,a sad film\n")
    assert [value for _, value in read_input_file(listing, Mood.input_field)] == ["a lovely day", "a sad film"]
    assert Mood().summarize({"label": "7", "score": 0.98213, "top_k": []}) == "7 (98.2%)"
    assert Mood().summarize({"text": "hi", "words": 1}) == "text=hi, words=1"

    class Echo(Task):  # text out: no kind gives it data or an evaluation
        name = "echo"
        output_kind = "text"

    with pytest.raises(MissingMethodError, match=r"task 'echo' \(.*Echo\) does not implement load_data\(self, path, "
                                                 r"seed=0\) -> Dataset, so it cannot read user data \('my.csv'\)"):
        Echo().load_data("my.csv")
    with pytest.raises(DlappsError, match="does not implement default_data"):  # the CLI prints it as one line
        dlapps.train(Mood(), out=tmp_path / "m", verbose=0)
    with pytest.raises(NotImplementedError):  # code that asks "is it implemented?" still can
        Echo().evaluate(None, None)
    with pytest.raises(DataError, match="expected a CSV, TSV or JSONL file of labelled texts"):  # labels: by kind
        Mood().load_data(str(tmp_path / "my.csv"))


def test_baseline_messages_and_training_lines_use_the_task_s_metric_names():
    from dlapps.background_training import TrainingStatus
    from dlapps.task import Baseline, Task

    class Named(Task):
        name = "named"
        metric_names = {"hit_rate": "share of right answers", "val_hit_rate": "validation share of right answers"}

    check = Baseline("hit_rate", "guess_hit_rate", "guessing").check({"hit_rate": 0.9, "guess_hit_rate": 0.2}, Named)
    assert check["message"].startswith("held-out share of right answers 0.9 is clearly better than guessing")
    status = TrainingStatus("named", 60.0, state="training", stage="training", metric="val_hit_rate", value=0.5,
                            task_class=Named)
    assert "validation share of right answers 0.5" in status.line()
