"""`dlapps new-plugin` writes a package that installs, registers, and passes its own tests."""

import os
import subprocess
import sys

import pytest

from dlapps.cli import main
from dlapps.errors import DlappsError
from dlapps.scaffold import new_plugin


def test_generated_plugin_installs_appears_everywhere_and_passes_its_tests(tmp_path):
    assert main(["new-plugin", "review-mood", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "dlapps-review-mood"
    assert (package / "pyproject.toml").read_text().count('review-mood = "dlapps_review_mood"') == 1
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(package)], check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site), "DLAPPS_HOME": str(tmp_path / "home")}

    listing = subprocess.run([sys.executable, "-m", "dlapps.cli", "plugins"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert "review-mood 0.1.0  (dlapps_review_mood)" in listing.stdout
    assert "text -> labels" in listing.stdout

    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
                           env=env, capture_output=True, text=True, timeout=300, cwd=package)
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "2 passed" in tests.stdout

    # The CLI and the batch runner serve it with no change to dlapps.
    cli = [sys.executable, "-m", "dlapps.cli"]
    subprocess.run([*cli, "train", "review-mood", "--epochs", "3"], env=env, check=True,
                   capture_output=True, timeout=300)
    predicted = subprocess.run([*cli, "predict", "review-mood", "the food was lovely and great",
                                "--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert predicted.stdout.startswith("the food was lovely and great: ")

    # ... and the studio gives it a tab of its own.
    studio = subprocess.run([sys.executable, "-c", (
        "from dlapps.ui import studio\n"
        "demo = studio(train_missing=False)\n"
        "print(sorted(b.id for b in demo.blocks.values() if type(b).__name__ == 'Tab'))\n")],
        env=env, capture_output=True, text=True, timeout=120)
    assert "'review-mood'" in studio.stdout, studio.stderr[-2000:]


def test_bad_names_and_existing_folders(tmp_path):
    with pytest.raises(DlappsError, match="received 'Bad Name'"):
        new_plugin("Bad Name", tmp_path)
    new_plugin("ok", tmp_path)
    with pytest.raises(DlappsError, match="already exists"):
        new_plugin("ok", tmp_path)
