"""Every hook a dlapps plugin can implement.

A plugin is a module registered under the ``dlapps`` entry-point group that
implements one or more of these hooks with ``@hookimpl`` (``from dlapps.plugin
import hookimpl``). Hooks a plugin does not implement are simply not called for
it; new hooks never break old plugins.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("dlapps")
hookimpl = pluggy.HookimplMarker("dlapps")


@hookspec
def dlapps_register_tasks(register: Callable[[type], None]) -> None:
    """Called once when the host loads plugins: call ``register(TaskClass)`` for
    each ``Task`` subclass this plugin provides. Return nothing.

    Keep the module importable without TensorFlow (import Keras inside methods),
    so that ``dlapps plugins`` and the CLI start fast.
    """


@hookspec
def dlapps_predict_input_flags(task_name: str, add_flag: Callable) -> None:
    """Called when ``dlapps predict TASK`` builds its command line, for every plugin: for the
    tasks this plugin knows, call ``add_flag(name, metavar, help, read)`` for each flag that
    gives inputs (``--similar-to ITEM``, ``--users FILE``).

    ``read(value)`` turns one given value into a list of ``(record id, raw input)``
    pairs, which join the inputs named on the command line. The flag may be repeated.
    """
