"""The plugin host: entry points, broken plugins, unknown tasks, a listing that stays fast."""

import subprocess
import sys
import textwrap
import types

import pytest

import dlapps
from dlapps.errors import UnknownTaskError
from dlapps.host import PluginHost
from dlapps.plugin import Task, hookimpl


def test_builtin_plugin_loads_through_the_entry_point_group():
    host = PluginHost()
    info = host.plugins["image-classification"]
    assert info.error is None
    assert info.module == "dlapps_plugins.image_classification"
    assert info.tasks == ["image-classification"]
    assert "image-classification" in dlapps.tasks()


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError, match="unknown task 'translate-klingon'.*image-classification"):
        PluginHost().task_class("translate-klingon")


def _plugin(name, register_body):
    module = types.ModuleType(name)

    @hookimpl
    def dlapps_register_tasks(register):
        register_body(register)

    module.dlapps_register_tasks = dlapps_register_tasks
    return module


class Good(Task):
    name = "good-task"


def test_a_plugin_that_raises_while_registering_is_reported_and_others_still_load():
    host = PluginHost(load_entry_points=False)

    def explode(register):
        raise RuntimeError("boom")

    host.add_plugin(_plugin("broken", explode), "broken")
    host.add_plugin(_plugin("fine", lambda register: register(Good)), "fine")
    assert host.task_names() == ["good-task"]
    assert "RuntimeError while registering tasks: boom" in host.plugins["broken"].error
    assert [p.name for p in host.errors()] == ["broken"]


def test_registering_something_that_is_not_a_task_is_an_error():
    host = PluginHost(load_entry_points=False)
    host.add_plugin(_plugin("odd", lambda register: register(object)), "odd")
    assert "expects a subclass of dlapps.plugin.Task" in host.plugins["odd"].error


def test_two_plugins_cannot_claim_one_task_name():
    class Other(Task):
        name = "good-task"

    host = PluginHost(load_entry_points=False)
    host.add_plugin(_plugin("first", lambda register: register(Good)), "first")
    host.add_plugin(_plugin("second", lambda register: register(Other)), "second")
    assert "already registered by plugin 'first'" in host.plugins["second"].error
    assert host.task_class("good-task") is Good


def test_a_predict_option_named_as_a_core_argument_is_refused_at_registration():
    from dlapps.options import Option

    class Clashing(Task):
        name = "clashing"
        predict_options = {"batch_size": Option(int, 8, "rows at once"), "threshold": Option(float, 0.5, "cut")}

    host = PluginHost(load_entry_points=False)
    host.add_plugin(_plugin("clash", lambda register: register(Clashing)), "clash")
    host.add_plugin(_plugin("fine", lambda register: register(Good)), "fine")
    assert "declares predict options named as dlapps' own arguments: batch_size (--batch-size)" in \
        host.plugins["clash"].error
    assert host.task_names() == ["good-task"]


def test_every_flag_of_dlapps_predict_is_a_reserved_option_name():
    from dlapps.cli import build_parser
    from dlapps.options import RESERVED_OPTION_NAMES

    predict = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "predict")[1]
    core = {action.dest for action in predict._actions}
    assert core <= RESERVED_OPTION_NAMES, core - RESERVED_OPTION_NAMES


def _fake_distribution(site, module_source):
    """An installed distribution whose `dlapps` entry point imports a module that raises."""
    (site / "broken_dlapps_plugin.py").write_text(module_source)
    dist = site / "broken_dlapps_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dlapps-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dlapps]\nbroken = broken_dlapps_plugin\n")


def test_cli_lists_plugins_and_import_failures_without_importing_tensorflow(tmp_path):
    _fake_distribution(tmp_path, "raise ImportError('needs a library that is not installed')\n")
    code = textwrap.dedent("""
        import sys
        from dlapps.cli import main
        status = main(["plugins"])
        print("TF-IMPORTED" if "tensorflow" in sys.modules else "TF-NOT-IMPORTED")
        print("GRADIO-IMPORTED" if "gradio" in sys.modules else "GRADIO-NOT-IMPORTED")
        sys.exit(status)
    """)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert "image-classification 0.1.0" in run.stdout
    assert "broken 1.0  FAILED  ImportError while importing broken_dlapps_plugin" in run.stdout
    assert "needs a library that is not installed" in run.stdout
    assert "TF-NOT-IMPORTED" in run.stdout and "GRADIO-NOT-IMPORTED" in run.stdout
    assert run.returncode == 1  # a broken plugin is worth a non-zero status
