"""The plugin host: finds plugins under the ``dlapps`` entry-point group,
collects the tasks they register, and records every plugin that failed.

Listing plugins never imports TensorFlow: plugins keep their heavy imports
inside methods, and the host only imports plugin modules.
"""

from __future__ import annotations

import importlib
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable

import pluggy

from dlapps import hookspecs
from dlapps.errors import PluginError, UnknownTaskError

ENTRY_POINT_GROUP = "dlapps"


@dataclass
class InputFlag:
    """A ``dlapps predict TASK`` flag that gives inputs: ``--NAME METAVAR``; ``read(value)`` gives
    (record id, raw input) pairs."""

    name: str
    metavar: str
    help: str
    read: Callable[[str], list]


@dataclass
class PluginInfo:
    """One plugin as the host saw it: where it came from and what it gave."""

    name: str
    module: str
    version: str = ""
    tasks: list[str] = field(default_factory=list)
    error: str | None = None


class PluginHost:
    """Loads plugins and answers which tasks exist."""

    def __init__(self, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._tasks: dict[str, type] = {}
        if load_entry_points:
            self.load_entry_points()

    # -- loading -----------------------------------------------------------
    def load_entry_points(self) -> None:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            version = ep.dist.version if ep.dist else ""
            info = PluginInfo(name=ep.name, module=ep.value, version=version)
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not stop the others
                info.error = _describe(exc, f"importing {ep.value}")
                self.plugins[info.name] = info
                continue
            self._add(module, info)

    def add_plugin(self, module_or_object, name: str, version: str = "") -> PluginInfo:
        """Register a plugin object directly (tests, notebooks, embedding apps)."""
        if isinstance(module_or_object, str):
            module_or_object = importlib.import_module(module_or_object)
        info = PluginInfo(name=name, module=getattr(module_or_object, "__name__", name), version=version)
        self._add(module_or_object, info)
        return info

    def _add(self, plugin, info: PluginInfo) -> None:
        self.plugins[info.name] = info
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:
            info.error = _describe(exc, "registering hooks")
            return
        impl = self.pm.hook.dlapps_register_tasks.get_hookimpls()
        impl = next((i for i in impl if i.plugin_name == info.name), None)
        if impl is None:
            return
        registered: list[type] = []
        try:
            impl.function(register=registered.append)
            for task_cls in registered:
                self._check_task(task_cls, info)
        except Exception as exc:
            self.pm.unregister(name=info.name)
            info.error = _describe(exc, "registering tasks")
            return
        for task_cls in registered:
            self._tasks[task_cls.name] = task_cls
            task_cls.plugin = info.name
            info.tasks.append(task_cls.name)

    def _check_task(self, task_cls, info: PluginInfo) -> None:
        from dlapps.task import Task

        if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
            raise PluginError(f"register() expects a subclass of dlapps.plugin.Task, received {task_cls!r}")
        if not getattr(task_cls, "name", None):
            raise PluginError(f"task class {task_cls.__name__} has no `name`")
        from dlapps.options import RESERVED_OPTION_NAMES

        clashes = sorted(set(task_cls.predict_options) & RESERVED_OPTION_NAMES)
        if clashes:
            flags = ", ".join(f"{name} (--{name.replace('_', '-')})" for name in clashes)
            raise PluginError(f"task {task_cls.name!r} declares predict options named as dlapps' own arguments: "
                              f"{flags}; expected other names, so that dlapps predict and Predictor.predict can tell "
                              "them apart")
        owner = self._tasks.get(task_cls.name)
        if owner is not None and owner is not task_cls:
            raise PluginError(
                f"task name {task_cls.name!r} is already registered by plugin {owner.plugin!r}"
            )

    # -- queries -----------------------------------------------------------
    def task_names(self) -> list[str]:
        return sorted(self._tasks)

    def task_class(self, name: str) -> type:
        try:
            return self._tasks[name]
        except KeyError:
            known = ", ".join(self.task_names()) or "none (no plugin registered a task)"
            raise UnknownTaskError(f"unknown task {name!r}; installed tasks: {known}") from None

    def task(self, name: str):
        return self.task_class(name)()

    def input_flags(self, task_name: str) -> list[InputFlag]:
        """The flags that plugins add to ``dlapps predict TASK`` (hook ``dlapps_predict_input_flags``)."""
        flags: list[InputFlag] = []

        def add_flag(name: str, metavar: str, help: str, read: Callable[[str], list]) -> None:
            flags.append(InputFlag(name, metavar, help, read))

        self.pm.hook.dlapps_predict_input_flags(task_name=task_name, add_flag=add_flag)
        return flags

    def errors(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.error]


def _describe(exc: BaseException, doing: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__} while {doing}: {exc}{where}"


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide host, loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    return _host

