"""Artifacts: safe loading refuses code, saves are atomic, loading errors are clear."""

import json
import shutil

import pytest

import dlapps
from dlapps import store
from dlapps.errors import ArtifactError, ModelNotFoundError, UnsafeModelError


def test_artifact_layout_and_model_card(digits_model):
    folder = digits_model.model_dir
    for name in ("model.keras", "task.json", "metrics.json", "README.md", "assets/labels.txt"):
        assert (folder / name).is_file(), name
    meta = json.loads((folder / "task.json").read_text())
    assert meta["task"] == "image-classification"
    assert meta["versions"]["tensorflow"] and meta["versions"]["keras"]
    card = (folder / "README.md").read_text()
    for fact in ("## Data", "digits", "accuracy", "seed: 0", "hardware:", "training time:", "tensorflow:"):
        assert fact in card, fact
    # Metrics by a person's name, each with its key in metrics.json; a baseline's by what the baseline does.
    accuracy = json.loads((folder / "metrics.json").read_text())["majority_accuracy"]
    assert f"| accuracy of always predicting the most frequent class | `majority_accuracy` | {accuracy:.4f} |" in card
    assert "| macro-F1 | `macro_f1` |" in card and "| test examples | `examples` |" in card


def test_lambda_layer_with_code_is_refused_and_never_runs(tmp_path, digits_model):
    import keras

    marker = tmp_path / "code-ran"
    inputs = keras.Input((4,))
    # The path is a literal inside the lambda's code, as an attacker would write it.
    payload = eval(f"lambda x: (open({str(marker)!r}, 'w').write('pwned'), x)[1]")
    outputs = keras.layers.Lambda(payload)(inputs)
    evil = keras.Model(inputs, outputs)
    marker.unlink(missing_ok=True)  # building the model ran the lambda once; start clean

    artifact = tmp_path / "evil"
    shutil.copytree(digits_model.model_dir, artifact)
    (artifact / "model.keras").unlink()
    evil.save(artifact / "model.keras")
    with pytest.raises(UnsafeModelError, match="Lambda"):
        dlapps.load("image-classification", artifact)
    assert not marker.exists(), "loading ran the code hidden in the model"


def test_failed_save_leaves_the_old_model_intact(tmp_path, digits_model, monkeypatch):
    target = tmp_path / "model"
    shutil.copytree(digits_model.model_dir, target)
    before = (target / "model.keras").read_bytes()

    class Boom(RuntimeError):
        pass

    def failing_save_state(folder):
        (folder / "half-written").write_text("...")
        raise Boom("disk full")

    monkeypatch.setattr(digits_model.task, "save_state", failing_save_state)
    with pytest.raises(Boom):
        store.save(target, digits_model.model, digits_model.task, {}, {"accuracy": 0.0})
    assert (target / "model.keras").read_bytes() == before
    assert not (target / "assets" / "half-written").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "staging folders were left behind"
    assert dlapps.load("image-classification", target).predict(
        str(next(target.glob("assets/examples/*.png"))))["label"]


def test_successful_save_replaces_the_old_model(tmp_path, digits_model):
    target = tmp_path / "model"
    shutil.copytree(digits_model.model_dir, target)
    store.save(target, digits_model.model, digits_model.task, {"note": "second"}, {"accuracy": 0.5})
    assert json.loads((target / "metrics.json").read_text()) == {"accuracy": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_missing_or_foreign_models(tmp_path, digits_model):
    with pytest.raises(ModelNotFoundError, match="train one with: dlapps train image-classification"):
        dlapps.load("image-classification", tmp_path / "nothing")
    foreign = tmp_path / "foreign"
    shutil.copytree(digits_model.model_dir, foreign)
    meta = json.loads((foreign / "task.json").read_text())
    meta["task"] = "translation"
    (foreign / "task.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="a model for 'translation'"):
        dlapps.load("image-classification", foreign)


def test_a_model_file_that_is_not_a_keras_archive_is_an_artifact_error(tmp_path, digits_model):
    broken = tmp_path / "broken"
    shutil.copytree(digits_model.model_dir, broken)
    (broken / "model.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArtifactError, match="expected a Keras v3 model archive"):
        dlapps.load("image-classification", broken)


def test_concurrent_saves_to_one_place_both_complete_and_leave_one_whole_model(tmp_path, digits_model):
    from concurrent.futures import ThreadPoolExecutor

    target = tmp_path / "model"
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: store.save(target, digits_model.model, digits_model.task, {"note": n},
                                           {"accuracy": n}), [0.25, 0.75]))
    assert json.loads((target / "metrics.json").read_text())["accuracy"] in (0.25, 0.75)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"], "staging or old folders were left behind"
    assert dlapps.load("image-classification", target).predict(digits_model.examples()[0])["label"]


def test_update_metrics_rewrites_metrics_and_card_atomically(tmp_path, digits_model, monkeypatch):
    target = tmp_path / "model"
    shutil.copytree(digits_model.model_dir, target)
    store.update_metrics(target, {"accuracy": 0.123, "majority_accuracy": 0.1}, digits_model.task)
    assert json.loads((target / "metrics.json").read_text())["accuracy"] == 0.123
    assert "| accuracy | `accuracy` | 0.1230 |" in (target / "README.md").read_text()
    assert "| accuracy of always predicting the most frequent class | `majority_accuracy` | 0.1000 |" in \
        (target / "README.md").read_text()
    card = (target / "README.md").read_text()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "model_card", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.update_metrics(target, {"accuracy": 0.5})
    assert (target / "README.md").read_text() == card, "an interrupted update must not leave a torn card"
    assert not [p for p in target.iterdir() if p.name.endswith(".tmp")], "temporary files were left behind"


def test_generated_data_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    monkeypatch.setenv("DLAPPS_HOME", str(tmp_path))
    leftover = tmp_path / "data" / "corpus"
    leftover.mkdir(parents=True)
    (leftover / "part.txt").write_text("from a run that died")

    def failing(folder):
        (folder / "half.txt").write_text("...")
        raise OSError("disk full")

    with pytest.raises(OSError):
        store.generated_data("corpus", "done.txt", failing)
    assert sorted(p.name for p in leftover.iterdir()) == ["part.txt"]
    assert sorted(p.name for p in leftover.parent.iterdir()) == ["corpus"]

    def complete(folder):
        (folder / "data.txt").write_text("rows")
        (folder / "done.txt").write_text("")

    folder = store.generated_data("corpus", "done.txt", complete)
    assert sorted(p.name for p in folder.iterdir()) == ["data.txt", "done.txt"]
    assert sorted(p.name for p in leftover.parent.iterdir()) == ["corpus"]
    assert store.generated_data("corpus", "done.txt", failing) == folder  # complete: never rebuilt
