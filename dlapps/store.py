"""Model artifacts on disk: atomic save, safe load, metadata and a model card.

An artifact is a directory::

    model.keras     Keras v3 format, always loaded with safe_mode=True
    task.json       task name, task config, versions, data and training facts
    assets/         label lists, tokenizers, example inputs
    metrics.json    evaluation on the held-out split
    README.md       a model card
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from dlapps.errors import ArtifactError, ModelNotFoundError, UnsafeModelError

MODEL_FILE = "model.keras"
TASK_FILE = "task.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
ASSETS_DIR = "assets"


def home() -> Path:
    """Where dlapps keeps models and runs: $DLAPPS_HOME or ~/.cache/dlapps."""
    return Path(os.environ.get("DLAPPS_HOME") or Path.home() / ".cache" / "dlapps")


def default_model_dir(task_name: str) -> Path:
    return home() / "models" / task_name


def generated_data(name: str, marker: str, write) -> Path:
    """``home()/data/name``: data a task generates, written once by ``write(folder)`` and then reused.

    The folder is written under a temporary name and renamed when complete, so
    an interrupted generation is never mistaken for data; a folder without the
    file ``marker`` (the last one written) is a leftover and is rebuilt.
    """
    folder = home() / "data" / name
    if not (folder / marker).is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=folder.parent))
        try:
            write(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(folder, ignore_errors=True)
        staging.replace(folder)
    return folder


def exists(path) -> bool:
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / TASK_FILE).is_file()


def save(path, model, task, info: dict, metrics: dict, dataset=None) -> Path:
    """Write the artifact for ``model`` atomically: the old one stays until the new one is complete."""
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.saving-", dir=path.parent))
    try:
        model.save(staging / MODEL_FILE)
        (staging / ASSETS_DIR).mkdir()
        task.write_assets(staging / ASSETS_DIR, dataset)
        meta = {"task": task.name, "plugin": task.plugin, "config": task.config, **info}
        _write_json(staging / TASK_FILE, meta)
        _write_json(staging / METRICS_FILE, metrics)
        (staging / CARD_FILE).write_text(model_card(meta, metrics), encoding="utf-8")
        _swap_in(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _swap_in(staging: Path, path: Path) -> None:
    """Replace ``path`` by ``staging`` with two renames, rolling back on failure."""
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}-{int(time.time())}")
        os.replace(path, old)
    try:
        os.replace(staging, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_meta(path) -> dict:
    path = Path(path)
    try:
        return json.loads((path / TASK_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"expected a dlapps model directory with {TASK_FILE}, received '{path}'") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"'{path / TASK_FILE}' is not valid JSON: {exc}") from None


def read_metrics(path) -> dict:
    try:
        return json.loads((Path(path) / METRICS_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def update_metrics(path, metrics: dict) -> None:
    """Merge new evaluation results into metrics.json and rewrite the model card."""
    path = Path(path)
    merged = {**read_metrics(path), **metrics}
    _write_json(path / METRICS_FILE, merged)
    (path / CARD_FILE).write_text(model_card(read_meta(path), merged), encoding="utf-8")


def load_model(path, custom_objects: dict | None = None):
    """Load model.keras with safe_mode=True; code hidden in Lambda layers is refused, never run."""
    import keras

    file = Path(path) / MODEL_FILE
    if not file.is_file():
        raise ModelNotFoundError(f"expected a model file at '{file}', found none")
    try:
        return keras.saving.load_model(file, custom_objects=custom_objects, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "unsafe" in str(exc).lower() or "lambda" in str(exc).lower():
            raise UnsafeModelError(
                f"refused to load '{file}': it contains Python code (a Lambda layer) that would run "
                "on load; dlapps only loads models with safe_mode=True. Rebuild the model without "
                "Lambda layers, or register the custom layers with keras.saving.register_keras_serializable"
            ) from None
        raise ArtifactError(f"could not load '{file}': {exc}") from None


def model_card(meta: dict, metrics: dict) -> str:
    """A markdown model card from task.json and metrics.json."""
    training = meta.get("training", {})
    lines = [
        f"# {meta.get('task', 'model')}",
        "",
        f"Trained with dlapps {meta.get('versions', {}).get('dlapps', '')} "
        f"(plugin `{meta.get('plugin', '')}`).",
        "",
        "## Data",
        "",
        meta.get("data", {}).get("description", "(not recorded)"),
        "",
        "## Metrics (held-out test split)",
        "",
        "| metric | value |",
        "| --- | --- |",
    ]
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            lines.append(f"| {key} | {value:.4f} |" if isinstance(value, float) else f"| {key} | {value} |")
    lines += [
        "",
        "## Training",
        "",
        f"- seed: {training.get('seed')}",
        f"- preset: {training.get('preset') or 'none (trained from scratch)'}",
        f"- epochs run: {training.get('epochs_run')} (of at most {training.get('epochs')})",
        f"- training time: {training.get('seconds', 0):.1f} s",
        f"- hardware: {training.get('hardware')}",
        f"- strategy: {training.get('strategy')}, precision: {training.get('precision')}",
        "",
        "## Versions",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in meta.get("versions", {}).items()]
    return "\n".join(lines) + "\n"


def _write_json(file: Path, data) -> None:
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, file)
