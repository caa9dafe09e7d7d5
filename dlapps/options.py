"""Typed predict options: declared once by a task, checked once by the core.

A task declares its options as ``Option`` values::

    predict_options = {
        "beam_size": Option(int, 4, "1 is greedy decoding", min=1, max=64),
        "k": Option(int, 10, "how many items", min=1, max=lambda config: config["n_items"]),
        "attention": Option(bool, False, "also return the attention weights"),
    }

The core validates what a caller gives (``check_options``: a clear error names
the option, what was expected and what was received), builds ``dlapps predict``
flags with their types and help, and the studio builds sliders, checkboxes and
dropdowns from them. A bound may be a function of the task config, for limits
that the trained model sets (the number of labels, of items in a catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from dlapps.errors import InvalidInputError

Bound = Union[int, float, Callable[[dict], Union[int, float]], None]


@dataclass(frozen=True)
class Option:
    """One predict option: its type (int, float, bool or str), default, help, and bounds or choices."""

    type: type
    default: Any
    help: str = ""
    min: Bound = None
    max: Bound = None
    choices: tuple | None = None
    #: Whether ``None`` is a valid value (e.g. "no class: unconditional").
    optional: bool = False
    #: A check beyond type, bounds and choices: ``validate(value, config)`` returns None for a valid value, else
    #: what was expected (``"class names of the model, comma-separated (cat, dog)"``).
    validate: Callable[[Any, dict], Union[str, None]] | None = None

    def __post_init__(self):
        if self.type not in (int, float, bool, str):
            raise TypeError(f"Option type must be int, float, bool or str, received {self.type!r}")

    def bounds(self, config: dict) -> tuple:
        """(low, high) with bounds that depend on the model resolved from ``config``."""
        return tuple(bound(config) if callable(bound) else bound for bound in (self.min, self.max))

    def expected(self, config: dict) -> str:
        """What a valid value is, in words: ``an integer from 1 to 64``."""
        noun = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.type]
        if self.choices is not None:
            noun = f"one of {', '.join(map(repr, self.choices))}"
        low, high = self.bounds(config)
        if low is not None and high is not None:
            noun += f" from {_number(low)} to {_number(high)}"
        elif low is not None:
            noun += f" >= {_number(low)}"
        elif high is not None:
            noun += f" <= {_number(high)}"
        return noun + (" (or none)" if self.optional else "")

    def check(self, name: str, value, config: dict):
        """``value`` converted to the option's type; an InvalidInputError if it is not valid."""
        if value is None and self.optional:
            return None
        converted = _convert(self.type, value)
        problem = converted is _INVALID
        if not problem and self.choices is not None:
            problem = converted not in self.choices
        if not problem and self.type in (int, float):
            low, high = self.bounds(config)
            problem = (low is not None and converted < low) or (high is not None and converted > high) \
                or (self.type is float and not np.isfinite(converted))
        if problem:
            raise InvalidInputError(f"expected {name} to be {self.expected(config)}, received {value!r}")
        expected = self.validate(converted, config) if self.validate is not None else None
        if expected:
            raise InvalidInputError(f"expected {name} to be {expected}, received {value!r}")
        return converted


_INVALID = object()


def _number(value) -> str:
    """A bound as people write it: integers in full (2147483647, not 2.14748e+09), floats short (0.5, 20)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _convert(kind: type, value):
    """``value`` as ``kind`` when it is one already (numpy scalars included), else _INVALID. No guessing:
    "3" is not an int here; the CLI parses text before it gets here."""
    if kind is bool:
        return bool(value) if isinstance(value, (bool, np.bool_)) else _INVALID
    if isinstance(value, (bool, np.bool_)):
        return _INVALID
    if kind is int:
        if isinstance(value, (int, np.integer)):
            return int(value)
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return int(value)  # a UI slider gives 4.0
        return _INVALID
    if kind is float:
        return float(value) if isinstance(value, (int, float, np.integer, np.floating)) else _INVALID
    return value if isinstance(value, str) else _INVALID


def check_options(declared: dict, given: dict | None, config: dict, task_name: str) -> dict:
    """Every declared option, defaults filled in and each value checked; an unknown name is an error."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        expected = ", ".join(declared) or "none"
        raise InvalidInputError(f"unknown predict option {', '.join(map(repr, unknown))} for task {task_name!r}; "
                                f"expected one of: {expected}")
    return {name: option.check(name, given[name] if name in given else _default_within(option, config), config)
            for name, option in declared.items()}


def _default_within(option: Option, config: dict):
    """The default, brought within bounds that the model sets (``top_k`` 5 of a 3-label model is 3)."""
    value = option.default
    if option.type not in (int, float) or not isinstance(value, (int, float)) or isinstance(value, bool):
        return value
    low, high = option.bounds(config)
    if low is not None and high is not None and low > high:
        return value  # no valid value at all (a model without labels): the check says so
    if high is not None and value > high:
        value = option.type(high)
    if low is not None and value < low:
        value = option.type(low)
    return value


def parse_option_text(option: Option, text: str):
    """A command-line value as the option's type (the check itself comes later, in ``check_options``)."""
    if option.optional and text.lower() in ("none", "null", ""):
        return None
    if option.type is bool:
        value = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}.get(text.lower())
        if value is None:
            raise ValueError(f"expected true or false, received {text!r}")
        return value
    if option.type is int:
        return int(text)
    if option.type is float:
        return float(text)
    return text
