"""`dlapps plugin-api`: the reference of every Task member and run_task_test argument comes from the code, and
nothing public goes undocumented."""

import inspect
from pathlib import Path

from dlapps.cli import main
from dlapps.plugin_api import harness_arguments, task_members
from dlapps.task import Task
from dlapps.testing import run_task_test


def test_every_public_task_member_is_in_the_reference_with_what_it_is():
    rows = task_members()
    assert [name for name, _, _ in rows].count("preprocess") == 1
    assert {name for name, _, _ in rows} == {name for name in dir(Task) if not name.startswith("_")}
    undocumented = [name for name, _, what in rows if len(what) < 15]
    assert not undocumented, f"document these Task members (a #: comment or a docstring): {undocumented}"
    kinds = {name: kind for name, kind, _ in rows}
    assert kinds["preprocess"] == "method" and kinds["predict_options"] == "attribute" and kinds["augment"] == "attribute"


def test_every_harness_argument_is_described():
    arguments = harness_arguments()
    assert [name for name, _ in arguments] == list(inspect.signature(run_task_test).parameters)[1:]
    assert all(len(what) > 15 for _, what in arguments), arguments


def test_the_command_prints_both_tables_and_readme_points_to_it(capsys):
    assert main(["plugin-api"]) == 0
    printed = capsys.readouterr().out
    assert "| `load_eval_data` | method | A whole folder or file of labelled data" in printed
    assert "| `bad_inputs` | ``[(raw input, the exception it must raise)]``" in printed
    assert printed.count("\n| `") == len(task_members()) + len(harness_arguments())
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert "dlapps plugin-api" in readme.split("## Writing a plugin", 1)[1]
