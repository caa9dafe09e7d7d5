"""``dlapps new-plugin``: write a ready plugin package from the templates in templates/plugin."""

from __future__ import annotations

import re
from pathlib import Path

from dlapps.errors import DlappsError

TEMPLATES = Path(__file__).parent / "templates" / "plugin"


def new_plugin(name: str, directory=".") -> Path:
    """Create ``DIRECTORY/dlapps-NAME``: pyproject.toml with the entry point, the task, its tests."""
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
    }
    folder = Path(directory).expanduser() / values["dist"]
    if folder.exists():
        raise DlappsError(f"expected a new folder for the plugin, received '{folder}', which already exists")
    targets = {
        "pyproject.toml.tmpl": "pyproject.toml",
        "README.md.tmpl": "README.md",
        "__init__.py.tmpl": f"{module}/__init__.py",
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
