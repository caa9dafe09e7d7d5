"""``dlapps export``: a trained model as a SavedModel, LiteRT or ONNX model that leaves dlapps behind.

The task says what goes into the graph (``Task.export_graph``: for an image task the resizing and the
normalisation, for a detector also the box decoding and non-maximum suppression); this module writes it
in the format asked for, with what the graph needs beside it, into one folder, atomically::

    saved_model/ | model.tflite | model.onnx   the model (endpoint "serve")
    signature.json   inputs and outputs (names, shapes, dtypes, meaning), what is inside and outside
    README.md        the same for people, with the code that runs it
    task.json        the task config the model was trained with
    assets/          labels.txt, tokenizers, vocabularies (what the task saved with the model)

SavedModel comes from Keras' ``ExportArchive``; LiteRT is converted from that SavedModel by TensorFlow's
converter (TensorFlow ops where LiteRT has no builtin op); ONNX by ``tf2onnx``, an optional extra.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from dlapps.errors import ExportError

#: Format name -> the model's file (or folder) inside the export.
FORMATS = {"saved_model": "saved_model", "litert": "model.tflite", "onnx": "model.onnx"}
SIGNATURE_FILE = "signature.json"
ENDPOINT = "serve"
ONNX_OPSET = 17
#: tf2onnx's switch for wrapping each optimizer in a copy of the graph (see ``write_onnx``).
CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"
ONNX_EXTRA = 'pip install -e ".[onnx]"  (or: pip install tf2onnx onnx onnxruntime)'


def export(task, model_dir=None, format: str = "saved_model", out=None, **options) -> Path:
    """Export the trained ``task`` model at ``model_dir`` (default: its default location) as ``format`` (one of
    ``FORMATS``) into the folder ``out``; ``options`` are the task's predict options the graph uses (e.g. a
    detector's ``conf``). Returns the export folder. A previous export at ``out`` is replaced only once the
    new one is complete."""
    from dlapps.api import load
    from dlapps.store import swap_in

    if format not in FORMATS:
        raise ExportError(f"expected format to be one of {', '.join(FORMATS)}, received {format!r}")
    if out is None:
        raise ExportError("expected an output folder for the export (--out PATH), received none")
    out = Path(out).expanduser().resolve()
    if out.exists() and not (out / SIGNATURE_FILE).is_file() and (out.is_file() or any(out.iterdir())):
        raise ExportError(f"expected --out to be a new folder or a previous export (with {SIGNATURE_FILE}), received "
                          f"'{out}', which holds something else: it would be replaced")
    if format == "onnx":
        require_onnx()
    predictor = load(task, model_dir)
    options = predictor.options(options)
    graph = predictor.task.export_graph(predictor.model, options)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.exporting-", dir=out.parent))
    staging.chmod(0o755)  # a folder to hand on, not mkdtemp's private one
    try:
        archive, endpoint, specs = trace(predictor.model, graph)
        flex = False
        if format == "onnx":
            write_onnx(endpoint, specs, staging / FORMATS["onnx"])
        elif format == "litert":  # converted from a SavedModel, the way Keras' own LiteRT export goes
            with tempfile.TemporaryDirectory() as scratch:
                archive.write_out(str(Path(scratch) / "saved_model"), verbose=False)
                flex = write_litert(Path(scratch) / "saved_model", staging / FORMATS["litert"])
        else:
            archive.write_out(str(staging / FORMATS["saved_model"]), verbose=False)
        outputs = endpoint.get_concrete_function(*specs).structured_outputs
        describe(predictor, graph, format, options, outputs, flex, staging)
        if flex:
            print(f"dlapps: note: this LiteRT model needs TensorFlow ops (Flex) for some steps: it runs on a LiteRT "
                  f"runtime built with the Flex delegate, not on a bare one (see {out / 'README.md'})", file=sys.stderr)
        swap_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def require_onnx() -> None:
    """An ExportError naming the install command when ``tf2onnx`` or ``onnx`` is missing."""
    import importlib.util

    missing = [name for name in ("tf2onnx", "onnx") if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"ONNX export needs {' and '.join(missing)}, which are not installed; install the onnx "
                          f"extra: {ONNX_EXTRA}; onnxruntime runs the exported model")


def tensor_specs(graph) -> list:
    """The ``tf.TensorSpec`` of each input of ``graph`` (an ``ExportGraph``)."""
    import tensorflow as tf

    return [tf.TensorSpec(shape, dtype, name=name) for name, shape, dtype, _ in graph.inputs]


def trace(model, graph):
    """(Keras ``ExportArchive`` tracking ``model`` with ``graph`` as its endpoint ``serve``, which a SavedModel
    written from it also has as its serving default; the endpoint's ``tf.function``; its input specs)."""
    import keras

    specs = tensor_specs(graph)
    archive = keras.export.ExportArchive()
    archive.track(model)
    try:
        endpoint = archive.add_endpoint(ENDPOINT, graph.function, input_signature=specs)
    except (ValueError, TypeError) as exc:
        raise ExportError(f"could not trace the model's graph for export: {_first_line(exc)}") from None
    return archive, endpoint, specs


def write_litert(saved_model: Path, file: Path) -> bool:
    """The SavedModel converted to a LiteRT flatbuffer at ``file``; True when it needs TensorFlow ops (LiteRT
    has no builtin op for some step), which only a LiteRT runtime built with the Flex delegate runs."""
    import tensorflow as tf

    def convert(select_tf_ops: bool):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model), signature_keys=[ENDPOINT])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS] + (
            [tf.lite.OpsSet.SELECT_TF_OPS] if select_tf_ops else [])
        return converter.convert()

    try:
        flatbuffer, flex = convert(select_tf_ops=False), False
    except Exception:  # noqa: BLE001  (the converter raises its own error types) some op is not a builtin
        try:
            flatbuffer, flex = convert(select_tf_ops=True), True
        except Exception as exc:  # noqa: BLE001
            raise ExportError(f"LiteRT cannot convert this model, even with TensorFlow ops: {_first_line(exc)}") \
                from None
    file.write_bytes(flatbuffer)
    return flex


def write_onnx(endpoint, specs: list, file: Path) -> None:
    """The endpoint converted to ONNX (opset ``ONNX_OPSET``) by ``tf2onnx``, at ``file``."""
    require_onnx()
    import onnx
    import tf2onnx

    def convert(catch_errors: bool):
        # tf2onnx copies the whole graph before each of its optimizers, to skip one that fails, unless
        # TF2ONNX_CATCH_ERRORS is set (1.17 reads any value as FALSE): half the conversion time. So: without the
        # copies first, with them (the variable unset, tf2onnx's default) if that fails.
        before = os.environ.pop(CATCH_ERRORS, None)
        if not catch_errors:
            os.environ[CATCH_ERRORS] = "FALSE"
        try:
            return tf2onnx.convert.from_function(endpoint, input_signature=specs, opset=ONNX_OPSET,
                                                 output_path=str(file))[0]
        finally:
            os.environ.pop(CATCH_ERRORS, None)
            if before is not None:
                os.environ[CATCH_ERRORS] = before

    try:
        try:
            proto = convert(catch_errors=False)
        except Exception:  # noqa: BLE001  an optimizer failed: convert again, skipping it
            proto = convert(catch_errors=True)
    except Exception as exc:  # noqa: BLE001  (tf2onnx raises many kinds of error for unsupported graphs)
        raise ExportError(f"tf2onnx cannot convert this model to ONNX: {_first_line(exc)}") from None
    unknown = sorted({f"{node.op_type} ({node.name})" for node in proto.graph.node
                      if not onnx.defs.has(node.op_type, node.domain)})
    if unknown:  # tf2onnx logs an op it cannot convert and leaves it in the graph, which no runtime loads
        raise ExportError(f"tf2onnx cannot convert this model to ONNX: it has TensorFlow ops that ONNX (opset "
                          f"{ONNX_OPSET}) has no op for: {', '.join(unknown[:5])}; export as saved_model or litert")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


# -- what goes beside the model -----------------------------------------------------------------------
def describe(predictor, graph, format: str, options: dict, outputs: dict, flex: bool, folder: Path) -> None:
    """signature.json, README.md, task.json and the model's assets (without the UI's example inputs)."""
    from dlapps import store

    signature = {
        "task": predictor.task.name,
        "format": format,
        "model": FORMATS[format],
        "endpoint": ENDPOINT,
        "inputs": [{"name": name, "shape": _shape(shape), "dtype": str(dtype), "description": what}
                   for name, shape, dtype, what in graph.inputs],
        "outputs": [{"name": name, "shape": _shape(outputs[name].shape), "dtype": outputs[name].dtype.name,
                     "description": graph.outputs.get(name, "")} for name in sorted(outputs)],
        "inside": graph.inside,
        "outside": graph.outside,
        "options": options,
        "labels": predictor.task.config.get("labels") or None,
        "select_tf_ops": flex,
    }
    (folder / SIGNATURE_FILE).write_text(json.dumps(signature, indent=2, default=str) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(export_readme(signature), encoding="utf-8")
    if predictor.model_dir is not None:
        shutil.copy2(predictor.model_dir / store.TASK_FILE, folder / store.TASK_FILE)
        assets = predictor.model_dir / store.ASSETS_DIR
        if assets.is_dir():
            shutil.copytree(assets, folder / store.ASSETS_DIR, ignore=shutil.ignore_patterns(store.EXAMPLES_DIR))


def _shape(shape) -> list:
    return [None if d is None else int(d) for d in (shape.as_list() if hasattr(shape, "as_list") else shape)]


_RUN = {
    "saved_model": '''import tensorflow as tf

serve = tf.saved_model.load("EXPORT/saved_model").signatures["serve"]
outputs = serve(INPUTS)''',
    "litert": '''import tensorflow as tf   # or: from ai_edge_litert.interpreter import Interpreter

serve = tf.lite.Interpreter("EXPORT/model.tflite").get_signature_runner("serve")
outputs = serve(INPUTS)''',
    "onnx": '''import onnxruntime

session = onnxruntime.InferenceSession("EXPORT/model.onnx")
outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, {FEEDS})))''',
}


def export_readme(signature: dict) -> str:
    """The export's README: what goes in and out, what is inside the graph and what is not, how to run it."""
    names = [i["name"] for i in signature["inputs"]]
    if signature["format"] == "onnx":
        code = _RUN["onnx"].replace("FEEDS", ", ".join(f'"{n}": {n}' for n in names))
    else:
        code = _RUN[signature["format"]].replace("INPUTS", ", ".join(f"{n}={n}" for n in names))
    rows = [f"| in | `{i['name']}` | {i['dtype']} {i['shape']} | {i['description']} |" for i in signature["inputs"]]
    rows += [f"| out | `{o['name']}` | {o['dtype']} {o['shape']} | {o['description']} |" for o in signature["outputs"]]
    lines = [
        f"# {signature['task']} ({signature['format']})", "",
        f"Exported by `dlapps export`: `{signature['model']}`, endpoint `{signature['endpoint']}`.", "",
        "| | name | dtype and shape (None: any) | what it is |", "| --- | --- | --- | --- |", *rows, "",
        f"**Inside the graph:** {signature['inside']}.", "",
        f"**Outside (yours to do):** {signature['outside']}.", "",
    ]
    if signature["labels"]:
        lines += ["Class names, in the order of the class indices: `assets/labels.txt`.", ""]
    if signature["select_tf_ops"]:
        lines += ["This LiteRT model uses TensorFlow ops (Flex) for some steps: it runs on a LiteRT runtime built with "
                  "the Flex delegate (Android: tensorflow-lite-select-tf-ops), not on a bare one such as pip's "
                  "`tf.lite.Interpreter`.", ""]
    lines += ["```python", code.replace("EXPORT", "."), "```", ""]
    return "\n".join(lines)
