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

import json
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from dlapps.errors import InvalidInputError, SearchError

Bound = Union[int, float, Callable[[dict], Union[int, float]], None]


#: Names a task's predict option cannot take: the core's own arguments of ``Predictor.predict`` and flags of
#: ``dlapps predict`` (a task option of one of these names would be shadowed there; the host refuses it when the
#: plugin registers the task).
RESERVED_OPTION_NAMES = frozenset({
    "batch_size", "inputs", "input", "sources", "task", "output", "output_dir", "format", "model", "preset",
    "no_progress", "retry_errors", "engine", "ray_address", "ray_actors", "set", "help", "version", "prefetch",
})


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


# -- search spaces -----------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One hyperparameter of a task's search space (``Task.search_space``, ``dlapps tune``): a range of ints or
    floats, on a log scale or not, or a choice of values (any JSON values: ``[32, 64]`` is one choice)::

        "learning_rate": Param(float, 1e-4, 1e-2, log=True),
        "dropout": Param(float, 0.0, 0.5),
        "rnn_units": Param(int, 32, 256, step=32),
        "filters": Param(choices=([16, 32, 64], [32, 64, 128])),

    ``check_space`` checks a whole space once, with errors that name the key.
    """

    type: type | None = None
    min: int | float | None = None
    max: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: tuple | None = None
    help: str = ""

    def problem(self) -> str | None:
        """What is wrong with this declaration, or None."""
        if self.choices is not None:
            if self.type is not None or self.min is not None or self.max is not None or self.log:
                return "either choices or a range (type, min, max), not both"
            return None if len(self.choices) else "at least one choice, received none"
        if self.type not in (int, float):
            return f"type int or float (or choices), received type={getattr(self.type, '__name__', self.type)!r}"
        numbers = (self.min, self.max) + ((self.step,) if self.step is not None else ())
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
            return f"numbers for min and max, received min={self.min!r}, max={self.max!r}"
        if self.type is int and not all(float(v).is_integer() for v in numbers):
            return f"whole numbers for an int range, received min={self.min!r}, max={self.max!r}"
        if self.min > self.max:
            return f"min <= max, received min={self.min!r} > max={self.max!r}"
        if self.log and self.min <= 0:
            return f"a positive min on a log scale, received min={self.min!r}"
        if self.step is not None and self.step <= 0:
            return f"a positive step, received step={self.step!r}"
        if self.step is not None and self.log:  # KerasTuner reads it as a factor there, Ray Tune as a rounding
            return f"either a step or a log scale, received both (step={self.step!r}, log=True)"
        return None

    def describe(self) -> str:
        """The spec in the text form ``parse_param`` reads: ``float:0.0001..0.01:log``, ``choice:[16, 32]``."""
        if self.choices is not None:
            return "choice:" + json.dumps(list(self.choices))
        text = f"{self.type.__name__}:{_number(self.min)}..{_number(self.max)}"
        return text + (":log" if self.log else "") + (f":step={_number(self.step)}" if self.step is not None else "")


def check_space(space: dict, config_keys, task_name: str) -> dict:
    """``space`` (``{key: Param}``) checked: every key a key of the task config, every Param valid; a SearchError
    naming the key and what was expected otherwise."""
    if not space:
        raise SearchError(f"expected a search space with at least one key for task {task_name!r}, received none")
    known = set(config_keys)
    for key, param in space.items():
        if key not in known:
            raise SearchError(f"unknown search space key {key!r} for task {task_name!r}; expected a key of its "
                              f"config: {', '.join(sorted(known))}")
        if not isinstance(param, Param):
            raise SearchError(f"expected a Param for search space key {key!r}, received {param!r}")
        problem = param.problem()
        if problem:
            raise SearchError(f"search space key {key!r} of task {task_name!r}: expected {problem}")
    return dict(space)


_TYPES = {"int": int, "float": float}


def parse_param(key: str, spec) -> Param | None:
    """A Param from a text spec (``--space KEY=SPEC``) or a mapping (a space file); None for ``off`` (leave the
    key at its configured value).

    Text: ``int:16..256``, ``int:32..256:step=32``, ``float:0..0.5``, ``float:1e-4..1e-2:log`` (``log:1e-4..1e-2``
    is short for it), ``choice:16,32,64`` or ``choice:[[16, 32], [32, 64]]`` (JSON). Mapping: ``{type: float,
    min: 0.0001, max: 0.01, log: true}`` or ``{choices: [16, 32]}``.
    """
    if spec is None or spec is False:  # YAML reads ``off`` as false
        return None
    if isinstance(spec, dict):
        given = dict(spec)
        kind = given.pop("type", None)
        if "choices" in given or "values" in given:
            choices = given.pop("choices", given.pop("values", None))
            if not isinstance(choices, list):
                raise SearchError(f"expected a list of choices for search space key {key!r}, received {choices!r}")
            param = Param(choices=tuple(choices))
        else:
            if kind not in _TYPES:
                raise SearchError(f"expected type int or float (or choices) for search space key {key!r}, "
                                  f"received type={kind!r}")
            param = Param(_TYPES[kind], given.pop("min", None), given.pop("max", None),
                          log=bool(given.pop("log", False)), step=given.pop("step", None))
        if given:
            raise SearchError(f"unknown field(s) {', '.join(map(repr, sorted(given)))} for search space key {key!r}; "
                              "expected type, min, max, log, step or choices")
        return param
    text = str(spec).strip()
    if text.lower() == "off":
        return None
    kind, _, rest = text.partition(":")
    try:
        if kind == "choice":
            return Param(choices=tuple(_choices(rest)))
        if kind in ("int", "float", "log"):
            bounds, *flags = rest.split(":")
            low, sep, high = bounds.partition("..")
            if not sep:
                raise ValueError("no LOW..HIGH")
            def number(text: str):  # a non-whole int bound is read, and then refused by the check
                value = float(text)
                return int(value) if kind == "int" and value.is_integer() else value

            log, step = kind == "log", None
            for flag in flags:
                if flag == "log":
                    log = True
                elif flag.startswith("step="):
                    step = number(flag[len("step="):])
                else:
                    raise ValueError(f"unknown flag {flag!r}")
            return Param(int if kind == "int" else float, number(low), number(high), log=log, step=step)
    except (ValueError, json.JSONDecodeError) as exc:
        raise SearchError(f"could not read the search space spec {key}={text!r} ({exc}); expected e.g. "
                          "int:16..256, float:0..0.5, float:1e-4..1e-2:log, choice:16,32,64") from None
    raise SearchError(f"expected a search space spec of kind int, float, log or choice for {key!r} (or off), "
                      f"received {text!r}")


def _choices(text: str) -> list:
    text = text.strip()
    if text.startswith("["):
        values = json.loads(text)
        if not isinstance(values, list):
            raise ValueError("not a list")
        return values
    values = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            values.append(json.loads(item))
        except json.JSONDecodeError:
            values.append(item.strip())
    return values
