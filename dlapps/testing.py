"""The shared test harness: one call gives a plugin a full test of the task contract.

In a plugin's tests::

    from dlapps.testing import run_task_test

    def test_contract(tmp_path):
        run_task_test(MyTask, tmp_path, config={"units": 4}, bad_inputs=[("", InvalidInputError)])

``run_task_test`` checks, with a tiny config:

- the model builds and trains a step (one epoch on a few examples) through the core loop;
- the artifact is complete, its metrics are JSON, and a reloaded model predicts the same;
- one input and the same input in a batch give the same result (under ``options``: a
  randomised task passes its seed there);
- a ``long_input`` is split into ``Pieces`` and combined, alone and in a batch;
- every bad input raises its documented error;
- the batch runner writes a record per input, an error record for a bad one, writes file
  results under ``--output-dir``, and a rerun (after a run killed mid-line) neither
  duplicates nor loses records;
- training with two CPU replicas (MirroredStrategy) works (a subprocess: devices are
  fixed once TensorFlow starts);
- the UI serves and answers through ``gradio_client``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_task_test(task_cls, tmp_path, config: dict | None = None, bad_inputs=(), data=None, limit: int = 64,
                  preset: str | None = None, inputs: list | None = None, long_input=None, options: dict | None = None,
                  ui_call: tuple | None = None, replicas: bool = True):
    """Exercise ``task_cls`` end to end with a tiny config; returns the reloaded Predictor.

    ``tmp_path``: a fresh folder (pytest's ``tmp_path``) for the model, the batch runs and the replicas' model.
    ``config``: task config values that make the model tiny (``{"units": 4}``); the task's defaults otherwise.
    ``bad_inputs``: ``[(raw input, the exception it must raise)]``, e.g. ``[("", InvalidInputError)]``; the first
    also goes through the batch runner, which must write an error record for it and go on.
    ``data``: a path for ``load_data`` to train on instead of ``default_data`` (a task without default data).
    ``limit``: at most this many examples per split for the one training epoch (default 64).
    ``preset``: train from this preset (a KerasHub name or a local preset folder) instead of a fresh model.
    ``inputs``: raw inputs to predict (default: a few from the test split).
    ``long_input``: an input that ``preprocess`` must split into ``Pieces``; checked alone and in a batch.
    ``options``: predict options for every prediction of the test (a randomised task passes its seed here).
    ``ui_call``: ``(api_name, args)`` of the task's UI endpoint to call (default: the default UI's).
    ``replicas``: also train on two CPU replicas (MirroredStrategy) in a subprocess (default True); False for a task
    defined where a subprocess cannot import it (a module made at run time).
    """
    import pytest

    from dlapps import api, store
    from dlapps.outputs import describe_file_outputs
    from dlapps.task import Pieces

    options = dict(options or {})
    task = task_cls(config)
    assert task.name, f"{task_cls.__name__} must set `name`"
    from dlapps.tune import search_space

    search_space(task_cls)  # a bad search_space declaration fails here, as `dlapps tune` would refuse it
    tmp_path = Path(tmp_path)
    out = tmp_path / "model"
    trained = api.train(task, data, epochs=1, out=out, preset=preset, limit=limit, verbose=0)

    assert store.exists(out), "the artifact was not saved"
    for file in (store.TASK_FILE, store.METRICS_FILE, store.CARD_FILE):
        assert (out / file).is_file(), f"the artifact lacks {file}"
    assert trained.metrics, "evaluate() returned no metrics"
    json.dumps(trained.metrics)  # plain data, no numpy values

    inputs = list(inputs or _test_inputs(task, data, limit))
    one = trained.predict(inputs[0], **options)
    many = trained.predict(list(inputs), **options)
    assert not isinstance(one, list), "predict(one input) must return one result"
    assert len(many) == len(inputs), "predict(list) must return one result per input"
    json.dumps(describe_file_outputs(many))  # plain data besides file outputs
    assert_same(one, many[0], "single vs batched")

    reloaded = api.load(task_cls, out)
    assert_same(many, reloaded.predict(list(inputs), **options), "reloaded model")

    if long_input is not None:
        prepared = reloaded.task.preprocess(long_input, reloaded.options(options))
        assert isinstance(prepared, Pieces) and len(prepared) > 1, "long_input was not split into Pieces"
        alone = reloaded.predict(long_input, **options)
        assert_same(alone, reloaded.predict([long_input, inputs[0]], **options)[0], "pieces alone vs batched")

    for raw, error in bad_inputs:
        with pytest.raises(error):
            reloaded.predict(raw, **options)

    _check_batch_runner(reloaded, inputs[:3], bad_inputs[0][0] if bad_inputs else None, tmp_path, options)
    if replicas:
        _check_two_replicas(task_cls, config, data, preset, tmp_path)
    _check_ui(reloaded, inputs[0], ui_call, options, tmp_path)
    return reloaded


def _test_inputs(task, data, limit: int) -> list:
    dataset = task.load_data(str(data)) if data else task.default_data()
    return list(dataset.test.head(min(limit, 8)).inputs)


def _check_batch_runner(predictor, inputs: list, bad, tmp_path: Path, options: dict) -> None:
    from dlapps.batch import run_batch
    from dlapps.outputs import has_file_outputs

    items = [(f"input-{i}", raw) for i, raw in enumerate(inputs)]
    if bad is not None:
        items.append(("bad-input", bad))
    output, files = tmp_path / "batch" / "out.jsonl", tmp_path / "batch" / "files"
    output.parent.mkdir(parents=True, exist_ok=True)
    summary = run_batch(predictor, items, output, batch_size=2, progress=False, options=options, output_dir=files)
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert [r["input"] for r in records] == [i for i, _ in items], "one record per input, in order"
    assert summary.failed == (bad is not None) and summary.succeeded == len(inputs)
    if bad is not None:
        assert records[-1].get("error") and records[-1].get("error_type"), "a bad input gets an error record"
    if has_file_outputs(predictor.predict(inputs[0], **options)):
        written = [p for p in files.rglob("*") if p.is_file()]
        assert written, "file results were not written under the output folder"
        assert all(not Path(p).is_absolute() for p in _strings(records[0])), "file paths are relative"

    text = output.read_text(encoding="utf-8")
    output.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 1] + text.splitlines()[-1][:5],
                      encoding="utf-8")  # a run killed in the middle of its last line
    again = run_batch(predictor, items, output, batch_size=2, progress=False, options=options, output_dir=files)
    assert again.skipped == len(items) - 1, "a rerun skips what is done and redoes the torn record"
    rerun = [json.loads(line)["input"] for line in output.read_text(encoding="utf-8").splitlines()]
    assert rerun == [i for i, _ in items], "a rerun neither duplicates nor loses records"


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value] if os.sep in value else []
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _check_two_replicas(task_cls, config, data, preset, tmp_path: Path) -> None:
    """Train a step under MirroredStrategy over two logical CPUs, in a fresh process."""
    code = (
        "import importlib, json, sys\n"
        "import dlapps\n"
        "spec = json.loads(sys.argv[1])\n"
        "module = importlib.import_module(spec['module'])\n"
        "task_cls = getattr(module, spec['cls'])\n"
        "p = dlapps.train(task_cls, spec['data'], epochs=1, limit=16, batch_size=4, verbose=0, out=spec['out'],"
        " preset=spec['preset'], config=spec['config'])\n"
        "print(json.dumps(p.meta['training']))\n"
    )
    spec = {"module": task_cls.__module__, "cls": task_cls.__qualname__, "config": config or {},
            "data": str(data) if data else None, "preset": preset, "out": str(tmp_path / "replicas-model")}
    env = {**os.environ, "DLAPPS_CPU_REPLICAS": "2", "DLAPPS_HOME": str(tmp_path / "replicas-home"),
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    run = subprocess.run([sys.executable, "-c", code, json.dumps(spec)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    training = json.loads(run.stdout.strip().splitlines()[-1])
    assert training["strategy"] == "MirroredStrategy" and training["replicas"] == 2
    assert training["global_batch_size"] == 8, "the global batch is the per-replica batch times the replicas"


def _check_ui(predictor, raw, ui_call, options: dict, tmp_path: Path) -> None:
    from dlapps.ui import task_blocks

    if ui_call is None:
        if predictor.task.ui is not None:
            return  # a task with its own UI names the endpoint to call
        values = [predictor.options(options)[name] for name in predictor.task.predict_options]
        raw = _as_file(predictor.task.input_kind, raw, tmp_path)
        ui_call = (f"/{predictor.task.name.replace('-', '_')}", [_client_value(raw), *values])
    api_name, args = ui_call
    with gradio_client(task_blocks(predictor.task.name, predictor)) as client:
        result = client.predict(*args, api_name=api_name)
    assert result is not None, f"the UI endpoint {api_name} returned nothing"


def _as_file(kind: str, raw, folder: Path):
    """An image or audio input that is not a file (an array, a waveform), written to one: what a UI uploads."""
    if kind not in ("image", "audio") or (isinstance(raw, (str, os.PathLike)) and Path(raw).is_file()):
        return raw
    if kind == "image":
        from dlapps.inputs import read_image
        from dlapps.outputs import ImageOutput

        return str(ImageOutput(read_image(raw)).save(folder / "ui-input.png"))
    from dlapps.inputs import AUDIO_SAMPLE_RATE, read_audio
    from dlapps.outputs import AudioOutput

    return str(AudioOutput(read_audio(raw), AUDIO_SAMPLE_RATE).save(folder / "ui-input.wav"))


def _client_value(raw):
    from gradio_client import handle_file

    if isinstance(raw, (str, os.PathLike)) and Path(raw).is_file():
        return handle_file(str(raw))
    return raw


@contextlib.contextmanager
def serve(blocks):
    """Serve Gradio ``blocks`` on a free localhost port; yields its URL, closes the server after."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    blocks.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        blocks.close()


@contextlib.contextmanager
def gradio_client(blocks):
    """Serve ``blocks`` on a free localhost port and yield a ``gradio_client.Client`` for it."""
    from gradio_client import Client

    with serve(blocks) as url:
        yield Client(url, verbose=False)


def assert_same(a, b, path: str = "result") -> None:
    """Results equal, with float tolerance for scores computed on another run of the model."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.shape == b.shape, f"{path}: arrays differ in shape"
        assert np.allclose(a, b, rtol=1e-4, atol=1e-4), f"{path}: arrays differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{path}: keys differ: {a} vs {b}"
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert np.isclose(a, b, rtol=1e-4, atol=1e-5), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
