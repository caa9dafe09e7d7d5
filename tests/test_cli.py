"""The dlapps command: info, train, eval, errors."""

import json

import numpy as np
import pytest

import dlapps
from dlapps.cli import main


def test_info_reports_versions_devices_and_reasons(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tensorflow"] and info["keras"].startswith("3.")
    assert any("CPU" in d for d in info["devices"])
    gpus = [d for d in info["devices"] if "GPU" in d]
    if gpus:  # what is chosen on a GPU machine depends on its cards: it must be said why
        assert info["precision"] in ("float32", "mixed_float16", "mixed_bfloat16")
        assert any("GPU" in why for why in info["why"]) and info["jit_compile"] is True
    else:
        assert info["strategy"] == "default" and info["precision"] == "float32" and info["jit_compile"] is False
        assert any("no GPU" in why for why in info["why"])


def test_unknown_task_and_missing_model_errors(tmp_path, capsys):
    assert main(["predict", "no-such-task", "x.png"]) == 2
    assert "installed tasks: image-classification" in capsys.readouterr().err
    assert main(["predict", "image-classification", "x.png", "--model", str(tmp_path / "none")]) == 2
    assert "train one with: dlapps train image-classification" in capsys.readouterr().err


def test_train_then_eval_updates_metrics(tmp_path, capsys):
    out = tmp_path / "model"
    # Without dropout this one short epoch gives a model whose answers differ from image to image (with it, the
    # tiny model answers one class to all, and the held-out metrics below could not tell one split from another).
    assert main(["train", "image-classification", "--epochs", "1", "--limit", "80", "--out", str(out),
                 "--set", "filters=[4,8]", "--set", "dropout=0", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy:" in printed and "confusion matrix" in printed
    (out / "metrics.json").write_text("{}")
    (out / "README.md").write_text("# image-classification\n")  # the card, too, must be written again
    assert main(["eval", "image-classification", "--model", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "confusion matrix (rows: true, columns: predicted)" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    loaded = dlapps.load("image-classification", out)
    # The written metrics are those of the saved model on the whole held-out digits split, recomputed here from
    # its predictions: accuracy, per-class support, the confusion matrix.
    assert loaded.meta["data"]["source"] == "default"
    test = loaded.task.default_data().test
    targets = [int(t) for t in test.targets]
    predicted = [int(r["label"]) for r in loaded.predict(list(test.inputs))]
    assert len(set(predicted)) > 1, "a model that answers one class to all checks little below"
    assert metrics["examples"] == len(targets) > 100 and metrics["unreadable"] == []
    assert metrics["accuracy"] == pytest.approx(np.mean(np.equal(predicted, targets)), abs=1e-9)
    assert {label: row["support"] for label, row in metrics["per_class"].items()} == {
        str(d): targets.count(d) for d in range(10)}
    confusion = np.zeros((10, 10), int)
    np.add.at(confusion, (targets, predicted), 1)
    assert metrics["confusion_matrix"]["matrix"] == confusion.tolist()
    assert metrics["majority_accuracy"] == pytest.approx(max(targets.count(d) for d in range(10)) / len(targets))
    assert f"accuracy: {metrics['accuracy']:.4f} on {len(targets)} examples" in printed
    assert f"| accuracy | `accuracy` | {metrics['accuracy']:.4f} |" in (out / "README.md").read_text()  # the card, rewritten
    assert loaded.meta["training"]["seed"] == 3
    assert loaded.task.config["image_size"] == 16  # what the digits data asks for


def test_bad_set_option(capsys):
    assert main(["train", "image-classification", "--set", "nonsense"]) == 2
    assert "expected --set KEY=VALUE" in capsys.readouterr().err


def test_predict_options_are_flags_of_their_task(translation_model, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["predict", "translation", "--help"])
    assert "--beam-size INT" in capsys.readouterr().out
    assert main(["predict", "translation", "I have two cats.", "--beam-size", "1", "--attention", "false"]) == 0
    assert capsys.readouterr().out.startswith("I have two cats.: ")
    assert main(["predict", "translation", "--beam-size", "0", "one"]) == 2
    assert "expected beam_size to be an integer from 1 to 64, received 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "translation", "one", "--beam-size", "two"])
    assert "argument --beam-size: expected an integer from 1 to 64, received 'two'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "translation", "one", "--no-such-flag"])
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


def test_version(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"dlapps {dlapps.__version__}"


def test_an_empty_text_input_is_a_clear_error_record(translation_model, capsys):
    assert main(["predict", "translation", "", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "expected a non-empty text input, received an empty one ('')" in err
    assert err.startswith("'': error: ")  # named, not a line starting with a bare colon


def test_start_up_is_quiet_on_a_cpu_machine(capfd):
    """TensorFlow's native start-up noise (absl's notice, CUDA probing without a driver, CPU-feature hints)
    is filtered; anything else written meanwhile still reaches the terminal; DLAPPS_LOG_LEVEL=debug shows all."""
    import os
    import subprocess
    import sys

    from dlapps.quiet import native_stderr_filtered

    with native_stderr_filtered():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                    b"I0000 00:00:1796640763.291703   10638 cudart_stub.cc:31] Could not find cuda drivers\n"
                    b"E0000 00:00:1796640777.113387   10638 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
                    b"a real problem\n")
    assert capfd.readouterr().err == "a real problem\n"

    noise = ("E0000", "cuInit", "CUDA error", "absl::InitializeLog", "cudart_stub", "rebuild TensorFlow")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "DLAPPS_LOG_LEVEL")}
    info = subprocess.run([sys.executable, "-m", "dlapps.cli", "info"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert info.returncode == 0 and "tensorflow:" in info.stdout
    assert not [line for line in info.stderr.splitlines() if any(word in line for word in noise)], info.stderr
    loud = subprocess.run([sys.executable, "-m", "dlapps.cli", "info"], capture_output=True, text=True, timeout=300,
                          env={**env, "DLAPPS_LOG_LEVEL": "debug"})
    assert "absl::InitializeLog" in loud.stderr  # shown when asked for


def test_tensorflow_s_retracing_notes_are_dropped_and_other_warnings_kept():
    import logging

    import tensorflow  # noqa: F401  (imported through dlapps' quiet first import)

    logger = logging.getLogger("tensorflow")

    def record(message):
        return logging.LogRecord("tensorflow", logging.WARNING, __file__, 1, message, None, None)

    assert not logger.filter(record("5 out of the last 7 calls to <function f> triggered tf.function retracing. "
                                    "Tracing is expensive"))
    assert logger.filter(record("Skipping variable loading for optimizer 'adam'"))
