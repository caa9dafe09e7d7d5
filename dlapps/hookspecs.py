"""Every hook a dlapps plugin can implement.

A plugin is a module registered under the ``dlapps`` entry-point group that
implements one or more of these hooks with ``@dlapps.hookimpl``. Hooks a plugin
does not implement are simply not called for it.
"""

from __future__ import annotations

from typing import Callable

import pluggy

hookspec = pluggy.HookspecMarker("dlapps")
hookimpl = pluggy.HookimplMarker("dlapps")


@hookspec
def dlapps_register_tasks(register: Callable[[type], None]) -> None:
    """Called once when the host loads plugins: call ``register(TaskClass)`` for
    each ``dlapps.Task`` subclass this plugin provides. Return nothing.

    Keep the module importable without TensorFlow (import Keras inside methods),
    so that ``dlapps plugins`` and the CLI start fast.
    """
