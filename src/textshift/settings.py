"""Type checks for textshift's settings dataclasses (TrainConfig, TransferConfig, CompareConfig, ...).

A notebook user can pass anything to a dataclass: ``TrainConfig(epochs=1.5)`` or ``CompareConfig(strategies=
"finetune")`` would be accepted and fail minutes later, deep inside training, or silently do something else.
:func:`check_types` reads each field's annotation and refuses a value of another type at construction, with one
line naming the setting. Bools are not accepted as numbers, and NumPy scalars are (``numbers.Integral`` /
``numbers.Real``).
"""

from __future__ import annotations

import numbers
from dataclasses import MISSING, fields

from textshift.errors import ConfigError

_SIMPLE = {"int": numbers.Integral, "float": numbers.Real, "bool": bool, "str": str, "dict": dict}
_ELEMENT_NAMES = {"int": "integers", "float": "numbers", "str": "strings"}


def _accepts(kind: str, value, default_factory) -> bool | None:
    """Whether ``value`` fits the annotation part ``kind``; None when ``kind`` is not one this module checks."""
    if kind == "None":
        return value is None
    if kind in _SIMPLE:
        if isinstance(value, bool) and kind != "bool":
            return False
        return isinstance(value, _SIMPLE[kind])
    if kind.startswith("list[") and kind.endswith("]"):
        element = kind[5:-1]
        if not isinstance(value, (list, tuple)):
            return False
        return all(_accepts(element, item, MISSING) is not False for item in value)
    if isinstance(default_factory, type) and kind == default_factory.__name__:
        return isinstance(value, default_factory)
    return None


def _describe(kind: str) -> str:
    if kind.startswith("list[") and kind.endswith("]"):
        return f"a list of {_ELEMENT_NAMES.get(kind[5:-1], kind[5:-1])}"
    return {"int": "an integer", "float": "a number", "bool": "True or False", "str": "a string",
            "dict": "a dict", "None": "None"}.get(kind, f"a {kind}")


def check_types(config) -> None:
    """Raise ConfigError if a field of the dataclass instance ``config`` holds a value of another type."""
    for spec in fields(config):
        value = getattr(config, spec.name)
        kinds = [part.strip() for part in str(spec.type).split("|")]
        verdicts = [_accepts(kind, value, spec.default_factory) for kind in kinds]
        if any(verdicts) or any(verdict is None for verdict in verdicts):  # fits, or not a type checked here
            continue
        expected = " or ".join(_describe(kind) for kind in kinds)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ConfigError(f"the '{spec.name}' setting of {type(config).__name__} must be {expected}; got {shown} "
                          f"({type(value).__name__}). Pass {_describe(kinds[0])}")
