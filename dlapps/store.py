"""Model artifacts on disk: atomic save, safe load, metadata and a model card.

An artifact is a directory::

    model.keras     Keras v3 format, always loaded with safe_mode=True
    task.json       task name, task config, versions, data and training facts
    assets/         what Task.save_state writes (label lists, tokenizers); assets/examples/: UI examples
    metrics.json    evaluation on the held-out split
    README.md       a model card
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from dlapps import label_outputs, ood
from dlapps.errors import ArtifactError, ModelNotFoundError, UnsafeModelError
from dlapps.metric_names import metric_label

MODEL_FILE = "model.keras"
TASK_FILE = "task.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
ASSETS_DIR = "assets"
EXAMPLES_DIR = "examples"
LABELS_FILE = "labels.txt"
EXAMPLES_FILE = "examples.jsonl"


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
        swap_in(staging, folder)
    return folder


def exists(path) -> bool:
    path = Path(path)
    return (path / MODEL_FILE).is_file() and (path / TASK_FILE).is_file()


def save(path, model, task, info: dict, metrics: dict, dataset=None, predict=None) -> Path:
    """Write the artifact for ``model`` atomically: the old one stays until the new one is complete.

    The order: ``model.keras``, then ``task.save_state(assets/)``, the UI examples
    from the test split (``assets/examples/``; ``predict``, the model's predict function, lets a task ship only
    examples its model gets right, see ``Task.example_is_right``), ``task.json``, ``metrics.json`` and
    the model card; then the folder is renamed into place.
    """
    path = Path(path).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.saving-", dir=path.parent))
    try:
        model.save(staging / MODEL_FILE)
        (staging / ASSETS_DIR).mkdir()
        task.save_state(staging / ASSETS_DIR)
        ood.save(task, staging / ASSETS_DIR)
        label_outputs.save_text_baseline(task, staging / ASSETS_DIR)
        if isinstance(task.config.get("labels"), list) and task.config["labels"]:  # for people and other tools
            _write_text(staging / ASSETS_DIR / LABELS_FILE, "\n".join(map(str, task.config["labels"])) + "\n")
        if dataset is not None:
            save_examples(task, dataset.test, staging / ASSETS_DIR / EXAMPLES_DIR, predict=predict)
        meta = {"task": task.name, "plugin": task.plugin, "config": task.config, **info}
        _write_json(staging / TASK_FILE, meta)
        _write_json(staging / METRICS_FILE, metrics)
        _write_text(staging / CARD_FILE, model_card(meta, metrics, task))
        swap_in(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def swap_in(staging: Path, path: Path) -> None:
    """Replace ``path`` by ``staging`` with two renames, rolling back on failure."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent)) / "old"
        os.replace(path, old)
    try:
        os.replace(staging, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
            old.parent.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old.parent, ignore_errors=True)


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


def update_metrics(path, metrics: dict, task=None) -> None:
    """Merge new evaluation results into metrics.json and rewrite the model card (its metrics named as
    ``task`` names them), each file atomically."""
    path = Path(path)
    merged = {**read_metrics(path), **metrics}
    _write_json(path / METRICS_FILE, merged)
    _write_text(path / CARD_FILE, model_card(read_meta(path), merged, task))


def load(path, task_cls):
    """(task, model, meta, metrics) of the artifact at ``path``, in the documented order:
    task.json is read, the task is made from its config, ``task.load_state(assets/)`` runs
    once, and then model.keras is loaded (safely) with the task's custom objects."""
    task, meta = load_task(path, task_cls)
    model = load_model(path, task.custom_objects())
    return task, model, meta, read_metrics(path)


def load_task(path, task_cls):
    """(task, meta) of the artifact at ``path`` without its model: the task made from task.json's config,
    with ``task.load_state(assets/)`` done (what preprocessing needs)."""
    path = Path(path)
    meta = read_meta(path)
    if meta.get("task") != task_cls.name:
        raise ArtifactError(
            f"expected a model for task {task_cls.name!r}, received '{path}', a model for {meta.get('task')!r}")
    task = task_cls(meta.get("config"))
    task.load_state(path / ASSETS_DIR)
    ood.load(task, path / ASSETS_DIR)
    label_outputs.load_text_baseline(task, path / ASSETS_DIR)
    return task, meta


def load_model(path, custom_objects: dict | None = None):
    """Load model.keras with safe_mode=True; a model with Python code in it is refused, never run."""
    import keras

    file = Path(path) / MODEL_FILE
    if not file.is_file():
        raise ModelNotFoundError(f"expected a model file at '{file}', found none")
    if _has_python_code(file):
        raise UnsafeModelError(
            f"refused to load '{file}': it contains Python code (a Lambda layer or a lambda function) that "
            "would run on load; dlapps only loads models with safe_mode=True. Rebuild the model without "
            "Lambda layers, or register the custom layers with keras.saving.register_keras_serializable")
    from dlapps.recipes import warmup_cosine_class

    schedule = warmup_cosine_class()  # the core's schedule (plain "WarmupCosine": models saved before it moved)
    custom_objects = {"dlapps>WarmupCosine": schedule, "WarmupCosine": schedule, **(custom_objects or {})}
    try:
        with warnings.catch_warnings():  # the optimizer's state is for training; a loaded model predicts
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            return keras.saving.load_model(file, custom_objects=custom_objects, safe_mode=True)
    except (ValueError, TypeError, KeyError) as exc:
        raise ArtifactError(f"could not load '{file}': {exc}") from None


def recipe_card(recipe: dict | None) -> list[str]:
    """The model card's lines of the training plan (``training.recipe`` in task.json): each value and why."""
    if not recipe:
        return []
    lines = ["", "## Training plan (chosen from the data; override with --set KEY=VALUE)", ""]
    lines += [f"- `{c['key']}={json.dumps(c['value'])}`: {c['why']}" for c in recipe.get("choices", [])]
    return lines + [f"- {note}" for note in recipe.get("notes", [])]


def _has_python_code(file: Path) -> bool:
    """Whether the model's config holds serialized Python code: a ``Lambda`` layer or a ``__lambda__``
    function (what safe_mode refuses), found in the config's structure rather than in an error message."""
    import zipfile

    try:
        with zipfile.ZipFile(file) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"expected a Keras v3 model archive at '{file}', received one that cannot be read "
                            f"({exc})") from None
    stack = [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") in ("Lambda", "__lambda__"):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


# -- examples for the UI ---------------------------------------------------------
def save_examples(task, split, folder: Path, limit: int = 10, predict=None) -> None:
    """A few test inputs for the UI (``task.example_inputs``): images as PNG, audio as FLAC, other
    inputs as one JSON line each. An input that cannot be read is left out; with ``predict``, so is one
    that ``task.example_is_right`` says the model gets wrong (at most ``limit`` are kept)."""
    from dlapps.errors import DlappsError

    folder.mkdir(parents=True, exist_ok=True)
    values, index = [], 0
    for raw, name in task.example_inputs(split, limit):
        if index >= limit:
            break
        if predict is not None:
            try:
                if task.example_is_right(predict(raw), name) is False:
                    continue
            except DlappsError:
                continue
        stem = f"{index:02d}_{_safe_name(name)}".rstrip("_")
        try:
            if task.input_kind == "image":
                _write_image(folder / f"{stem}.png", raw)
            elif task.input_kind == "audio":
                _write_audio(folder / f"{stem}.flac", raw)
            else:
                values.append(raw)
        except DlappsError:
            continue
        index += 1
    if values:
        lines = [json.dumps(v, ensure_ascii=False, default=_plain) for v in values]
        _write_text(folder / EXAMPLES_FILE, "\n".join(lines) + "\n")


def read_examples(path) -> list:
    """The examples saved with the model at ``path``: file paths (sorted), or the saved values."""
    folder = Path(path) / ASSETS_DIR / EXAMPLES_DIR
    if not folder.is_dir():
        return []
    listed = folder / EXAMPLES_FILE
    if listed.is_file():
        return [json.loads(line) for line in listed.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _write_image(file: Path, raw) -> None:
    from dlapps.inputs import read_image
    from dlapps.outputs import ImageOutput

    ImageOutput(read_image(raw)).save(file)


def _write_audio(file: Path, raw) -> None:
    import soundfile

    from dlapps.inputs import AUDIO_SAMPLE_RATE, read_audio

    soundfile.write(str(file), read_audio(raw), AUDIO_SAMPLE_RATE, format="FLAC")


def _safe_name(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(name))[:48]


def _plain(value):
    """JSON for numpy values in examples."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def model_card(meta: dict, metrics: dict, task=None) -> str:
    """A markdown model card from task.json and metrics.json; ``task`` (its class or an instance) names the
    metrics for a person (``metric_label``), each followed by its key in metrics.json."""
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
        "| metric | key in metrics.json | value |",
        "| --- | --- | --- |",
    ]
    for key, value in metrics.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = f"{value:.4f}" if isinstance(value, float) else f"{value}"
            lines.append(f"| {metric_label(key, task)} | `{key}` | {shown} |")
    checks = metrics.get("baseline_checks") or ([metrics["baseline_check"]] if metrics.get("baseline_check") else [])
    if checks:
        lines += ["", "## Against baselines", ""]
        for check in checks:
            kind = check.get("kind", "trivial")
            lines.append("- " + ("" if check["better"] else f"**WARNING: this model is not clearly better than a {kind} "
                                 "baseline; do not rely on it.** ") + f"{kind}: " + check["message"] + ".")
    lines += ood.card_lines(meta.get("config") or {})
    if meta.get("tuning"):
        lines += tuning_card(meta["tuning"], metrics)
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
        *recipe_card(training.get("recipe")),
        "",
        "## Versions",
        "",
    ]
    lines += [f"- {k}: {v}" for k, v in meta.get("versions", {}).items()]
    return "\n".join(lines) + "\n"


def tuning_card(tuning: dict, metrics: dict) -> list[str]:
    """The model card's lines about the hyperparameter search that chose the config (``dlapps tune``)."""
    objective = tuning.get("objective", {})
    name = objective.get("name", "score")
    test = {k: v for k, v in metrics.items() if k == name or k.startswith(f"{name}_")} or \
        {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    trials = tuning.get("trials", [])
    lines = ["", "## Hyperparameter search", "",
             f"Chosen by `dlapps tune` ({tuning.get('engine')}, {tuning.get('algorithm')} search): {len(trials)} "
             f"trial(s), each trained on the training split and scored on the validation split by {name} "
             f"({'higher' if objective.get('direction') == 'max' else 'lower'} is better). The best, trial "
             f"{tuning.get('best_trial')}, scored {tuning.get('best_score', float('nan')):.4f}; its config was then "
             "trained on the training and validation splits, and this model was measured once on the test split: "
             + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in list(test.items())[:4])
             + ".", "", "Search space:", ""]
    lines += [f"- `{key}`: {spec}" for key, spec in tuning.get("space", {}).items()]
    header, rows = trial_table(trials, name)
    lines += ["", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        best = " (best)" if row[0] == tuning.get("best_trial") else ""
        cells = [f"{row[0]}{best}", *[_card_value(v) if v is not None else "" for v in row[1:-3]],
                 f"{row[-3]:.4f}" if isinstance(row[-3], (int, float)) else str(row[-3]),
                 str(row[-2] or ""), str(row[-1] or "")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def trial_table(trials: list[dict], score_name: str, status_for_no_score: bool = True
                ) -> tuple[list[str], list[list]]:
    """The trials of a search (``dlapps tune``'s records) as a header and a row of raw values per trial:
    trial, each hyperparameter tried (None where a trial did not set it), the score (a failed trial's status
    instead, or None without ``status_for_no_score``), epochs and seconds. The progress table, the model card
    and the studio format these rows."""
    keys = list(dict.fromkeys(k for trial in trials for k in trial.get("values", {})))
    rows = []
    for trial in trials:
        values, score = trial.get("values", {}), trial.get("score")
        rows.append([trial.get("trial"), *[values.get(k) for k in keys],
                     score if isinstance(score, (int, float)) or not status_for_no_score else trial.get("status"),
                     trial.get("epochs_run"), trial.get("seconds")])
    return ["trial", *keys, score_name, "epochs", "seconds"], rows


def _card_value(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else json.dumps(value)


def write_json(file, data) -> None:
    """Write ``data`` as JSON to ``file`` atomically, making its folder if needed."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    _write_json(file, data)


def _write_json(file: Path, data) -> None:
    _write_text(file, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def _write_text(file: Path, text: str) -> None:
    """Write ``text`` to ``file`` atomically, through a temporary file of a unique name beside it."""
    handle, tmp = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".tmp", dir=file.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
