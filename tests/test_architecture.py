"""The architecture holds: import-linter's contracts (pyproject.toml) pass, and they would catch a breach."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *sys.path])}
    command = [str(Path(sys.executable).with_name("lint-imports")), "--config", str(root / "pyproject.toml"),
               "--no-cache"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_are_kept():
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_the_contracts_catch_a_plugin_that_reaches_into_the_core(tmp_path):
    copy = tmp_path / "tree"
    for part in ("dlapps", "apps", "pyproject.toml"):
        (shutil.copytree if (ROOT / part).is_dir() else shutil.copy)(ROOT / part, copy / part)
    shutil.copytree(ROOT / "plugins", copy / "dlapps_plugins")
    sneaky = copy / "dlapps_plugins" / "translation" / "sneaky.py"
    sneaky.write_text("from dlapps.store import home\n", encoding="utf-8")
    core = copy / "dlapps" / "errors.py"
    core.write_text(core.read_text(encoding="utf-8") + "\nfrom dlapps import task  # noqa\n", encoding="utf-8")
    run = lint_imports(copy)
    assert run.returncode != 0
    assert "dlapps_plugins.translation.sneaky -> dlapps.store" in run.stdout
    assert "dlapps.errors is not allowed to import dlapps.task" in run.stdout
