"""``dlapps new-plugin NAME --kind KIND``: write a ready plugin package of a kind (``KINDS``) from the templates in
templates/plugin."""

from __future__ import annotations

import re
from pathlib import Path

from dlapps.errors import DlappsError

TEMPLATES = Path(__file__).parent / "templates" / "plugin"

#: The kinds of plugin ``dlapps new-plugin --kind`` writes: what each is, and what its README and tests fill in.
KINDS = {
    "text-labels": dict(
        what="a text in, one of its labels with a score out",
        default_data="phrases", user_data="reviews.csv",
        user_data_what="a CSV, TSV or JSONL file with `text` and `label` fields",
        example_input='"the food was good and lovely"',
        bad_inputs='(123, InvalidInputError), ("", InvalidInputError)'),
    "image-labels": dict(
        what="an image in, one of its labels with a score out",
        default_data="pictures", user_data="photos/", user_data_what="a folder with one subfolder of images per class",
        example_input="photo.jpg",
        bad_inputs='("no-such-picture.png", InvalidInputError), ("", InvalidInputError)'),
}


def new_plugin(name: str, directory=".", kind: str = "text-labels") -> Path:
    """Create ``DIRECTORY/dlapps-NAME``: pyproject.toml with the entry point, a task of ``kind`` (``KINDS``) named
    after NAME, its tests."""
    if kind not in KINDS:
        raise DlappsError(f"expected a plugin kind, one of {', '.join(KINDS)}, received {kind!r}")
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", name):
        raise DlappsError(
            f"expected a task name of lower-case letters, digits and dashes, like 'sentiment' or "
            f"'my-task', received {name!r}"
        )
    module = "dlapps_" + name.replace("-", "_")
    words = name.split("-")
    values = {
        "name": name,
        "dist": f"dlapps-{name}",
        "module": module,
        "cls": "".join(w.capitalize() for w in words) + "Task",
        "title": " ".join(words).capitalize(),
        "kind": kind,
        **{key: value for key, value in KINDS[kind].items() if key != "what"},
    }
    folder = Path(directory).expanduser() / values["dist"]
    if folder.exists():
        raise DlappsError(f"expected a new folder for the plugin, received '{folder}', which already exists")
    targets = {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        f"kinds/{kind}.py.tmpl": f"{module}/__init__.py",
        "tests/test_plugin.py.tmpl": f"tests/test_{module}.py",
    }
    for template, target in targets.items():
        text = (TEMPLATES / template).read_text(encoding="utf-8")
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder
