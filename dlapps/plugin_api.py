"""``dlapps plugin-api``: the reference of the plugin contract, made from the code itself — every public member of
``Task`` (its ``#:`` comment or its docstring) and every argument of ``run_task_test`` (its docstring) — so that
the reference cannot drift from what the core does."""

from __future__ import annotations

import inspect
import re


def task_members() -> list[tuple[str, str, str]]:
    """``(name, kind, what)`` of every public member of ``Task``, in the order the class declares them: kind is
    ``attribute`` or ``method``; what is the ``#:`` comment above an attribute or a method's docstring (its
    paragraphs joined)."""
    from dlapps.task import Task

    source = inspect.getsource(Task)
    comments, pending = {}, []
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        declared = re.match(r"(\w+)\s*(?::[^=]+)?=", stripped)
        if declared and pending:
            comments[declared.group(1)] = " ".join(pending)
        pending = []
    order = [m.group(1) for m in re.finditer(r"^    (?:def )?(\w+)", source, re.M)]
    names = [name for name in dict.fromkeys(order) if not name.startswith("_") and hasattr(Task, name)]
    rows = []
    for name in names:
        member = inspect.getattr_static(Task, name)
        if callable(member) and not isinstance(member, type):
            rows.append((name, "method", " ".join((inspect.getdoc(member) or "").split())))
        else:
            rows.append((name, "attribute", comments.get(name, "")))
    return rows


def harness_arguments() -> list[tuple[str, str]]:
    """``(name, what)`` of every argument of ``run_task_test`` after ``task_cls``, from the ``name``: lines of its
    docstring."""
    from dlapps.testing import run_task_test

    doc = inspect.getdoc(run_task_test) or ""
    described = {m.group(1): " ".join(m.group(2).split())
                 for m in re.finditer(r"^``(\w+)``: (.*?)(?=^``|\Z)", doc, re.M | re.S)}
    names = list(inspect.signature(run_task_test).parameters)[1:]
    return [(name, described.get(name, "")) for name in names]


def reference() -> str:
    """The reference as Markdown: a table of ``Task``'s members, then one of ``run_task_test``'s arguments."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|") or "(not documented)"

    lines = ["# The dlapps plugin API", "", "Import everything from `dlapps.plugin`; test with "
             "`dlapps.testing.run_task_test`. A task writes only the members its work needs; what it leaves out "
             "comes from `Task` (and, for a `labels` output, from the defaults of its kind).", "",
             "## Task", "", "| member | kind | what it is |", "| --- | --- | --- |"]
    lines += [f"| `{name}` | {kind} | {cell(what)} |" for name, kind, what in task_members()]
    lines += ["", "## run_task_test(task_cls, tmp_path, ...)", "", "| argument | what it is |", "| --- | --- |"]
    lines += [f"| `{name}` | {cell(what)} |" for name, what in harness_arguments()]
    return "\n".join(lines) + "\n"
