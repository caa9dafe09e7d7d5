"""Batch prediction: streaming JSONL, error records, resume without duplicates, CLI = Python."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import dlapps
from dlapps.batch import collect_inputs, done_inputs, run_batch
from dlapps.cli import main
from dlapps.errors import InvalidInputError


@pytest.fixture
def mixed_inputs(tmp_path, example_images):
    folder = tmp_path / "inputs"
    nested = folder / "more"
    nested.mkdir(parents=True)
    for image in example_images[:4]:
        shutil.copy(image, folder / image.name)
    for image in example_images[4:7]:
        Image.open(image).convert("L").save(nested / (image.stem + ".jpg"))
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("not an image")
    (folder / "cut.png").write_bytes(example_images[0].read_bytes()[:60])
    return folder


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_writes_a_record_per_input_and_goes_on_after_bad_files(tmp_path, digits_model, mixed_inputs):
    out = tmp_path / "out.jsonl"
    assert main(["predict", "image-classification", str(mixed_inputs), "--output", str(out),
                 "--batch-size", "2", "--no-progress"]) == 0
    records = read_jsonl(out)
    assert len(records) == 10
    errors = {r["input"].rsplit("/", 1)[1]: r for r in records if "error" in r}
    assert sorted(errors) == ["cut.png", "text.png", "zero.png"]
    assert "0 bytes" in errors["zero.png"]["error"]
    assert all(r["error_type"] == "InvalidInputError" for r in errors.values())
    good = [r for r in records if "error" not in r]
    assert all(r["label"] in [str(d) for d in range(10)] and len(r["top_k"]) == 5 for r in good)


def test_rerun_skips_done_inputs_and_appends_no_duplicates(tmp_path, digits_model, mixed_inputs):
    out = tmp_path / "out.jsonl"
    files = sorted(str(p) for p in mixed_inputs.rglob("*.*"))
    main(["predict", "image-classification", *files[:4], "--output", str(out), "--no-progress"])
    with open(out, "a") as handle:  # a run killed in the middle of writing a line
        handle.write('{"input": "torn')
    main(["predict", "image-classification", *files, "--output", str(out), "--no-progress"])
    inputs = [r["input"] for r in read_jsonl(out)]
    assert sorted(inputs) == sorted(files)
    assert len(inputs) == len(set(inputs))


def test_a_rerun_with_every_input_done_answers_without_loading_the_model(tmp_path, digits_model, mixed_inputs):
    import os
    import subprocess
    import sys

    out = tmp_path / "out.jsonl"
    assert main(["predict", "image-classification", str(mixed_inputs), "--output", str(out), "--no-progress"]) == 0
    before = out.read_text()
    probe = ("import sys; from dlapps.cli import main; code = main(sys.argv[1:]); "
             "print('imported tensorflow:', 'tensorflow' in sys.modules); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", probe, "predict", "image-classification", str(mixed_inputs),
                           "--output", str(out), "--no-progress"], capture_output=True, text=True,
                          env={**os.environ}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported tensorflow: False" in done.stdout
    assert done.stderr.strip().endswith(f"0 succeeded, 0 failed, 10 already done -> {out}")
    assert out.read_text() == before
    # One new input: the model loads and runs it only.
    extra = mixed_inputs / "again.png"
    shutil.copy(next(p for p in sorted(mixed_inputs.glob("*.png")) if p.name not in ("zero.png", "text.png", "cut.png")),
                extra)
    done = subprocess.run([sys.executable, "-c", probe, "predict", "image-classification", str(mixed_inputs),
                           "--output", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert "imported tensorflow: True" in done.stdout and "1 succeeded, 0 failed, 10 already done" in done.stderr


def test_cli_and_python_give_the_same_results(tmp_path, digits_model, example_images):
    out = tmp_path / "out.jsonl"
    paths = [str(p) for p in example_images]
    main(["predict", "image-classification", *paths, "--output", str(out), "--no-progress"])
    from_cli = {r["input"]: r for r in read_jsonl(out)}
    predictor = dlapps.load("image-classification")
    from_python = predictor.predict(paths)
    for path, result in zip(paths, from_python):
        assert from_cli[path]["label"] == result["label"]
        assert np.isclose(from_cli[path]["score"], result["score"], rtol=1e-4)
    one = predictor.predict(paths[0])
    assert one["label"] == from_python[0]["label"]
    mixed = predictor.predict([paths[0], np.asarray(Image.open(paths[0])), Image.open(paths[0])])
    assert len({r["label"] for r in mixed}) == 1


def test_python_predict_names_the_bad_input(digits_model, example_images, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    with pytest.raises(InvalidInputError, match=r"input 1: .*bad.png"):
        dlapps.load("image-classification").predict([str(example_images[0]), str(bad)])


def test_without_output_prints_readable_results(digits_model, example_images, capsys):
    main(["predict", "image-classification", str(example_images[3]), "--no-progress"])
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(example_images[3]) + ": ")
    assert "%" in line


def test_input_list_file(tmp_path, digits_model, example_images):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in example_images[:3]) + "\n")
    task = digits_model.task
    items = collect_inputs(task, [], listing)
    assert [raw for _, raw in items] == [str(p) for p in example_images[:3]]
    summary = run_batch(digits_model, items, tmp_path / "o.jsonl", progress=False)
    assert (summary.succeeded, summary.failed) == (3, 0)


def test_empty_directory_and_no_inputs(tmp_path, digits_model):
    (tmp_path / "empty").mkdir()
    items = collect_inputs(digits_model.task, [str(tmp_path / "empty")])
    summary = run_batch(digits_model, items, tmp_path / "o.jsonl", progress=False)
    assert summary.failed == 1
    assert "found none" in read_jsonl(tmp_path / "o.jsonl")[0]["error"]
    twice = collect_inputs(digits_model.task, [str(tmp_path / "x.png"), str(tmp_path / "x.png")])
    assert twice == [(str(tmp_path / "x.png"), str(tmp_path / "x.png"))]
    with pytest.raises(InvalidInputError, match="at least one input"):
        collect_inputs(digits_model.task, [])


def test_many_inputs_stream_through_bounded_batches(digits_model, example_images):
    seen = []

    def endless():
        for i in range(500):
            seen.append(i)
            yield str(example_images[i % len(example_images)])

    stream = digits_model.iter_predict(endless(), batch_size=16, prefetch=2)
    first = [next(stream) for _ in range(3)]
    assert [i for i, _ in first] == [0, 1, 2]
    assert len(seen) <= 16 * 4, "the predictor read far ahead of what it returned"
    assert sum(1 for _ in stream) == 497


def test_done_inputs_ignores_a_torn_line(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text('{"input": "a"}\n{"input": "b"}\n{"inp')
    assert done_inputs(out) == {"a", "b"}
    assert out.read_text() == '{"input": "a"}\n{"input": "b"}\n'


def test_retry_errors_runs_failed_inputs_again_and_keeps_one_record_each(tmp_path, digits_model, example_images):
    late = tmp_path / "late.png"
    out = tmp_path / "o.jsonl"
    items = [(str(example_images[0]), str(example_images[0])), (str(late), str(late))]
    first = run_batch(digits_model, items, out, progress=False)
    assert (first.succeeded, first.failed) == (1, 1)
    shutil.copy(example_images[1], late)  # the missing file has arrived
    again = run_batch(digits_model, items, out, progress=False)
    assert again.skipped == 2 and "error" in read_jsonl(out)[1], "without --retry-errors a failed input stays done"
    retried = run_batch(digits_model, items, out, progress=False, retry_errors=True)
    assert (retried.skipped, retried.succeeded, retried.failed) == (1, 1, 0)
    records = read_jsonl(out)
    assert [r["input"] for r in records] == [str(example_images[0]), str(late)]
    assert all("error" not in r for r in records)
