"""Input checks shared by the library's public functions, in one place.

- :func:`check_types`: textshift's settings dataclasses (TrainConfig, TransferConfig, CompareConfig, ...) refuse a
  value of another type at construction (``TrainConfig(epochs=1.5)``, ``CompareConfig(strategies="finetune")``)
  with one line naming the setting, instead of failing minutes later deep inside training. Bools are not
  accepted as numbers; NumPy scalars are (``numbers.Integral`` / ``numbers.Real``).
- :func:`as_list` / :func:`as_str_list`: texts and labels as a list, whatever sequence they came in (list, tuple,
  pandas Series, numpy array, generator); a bare string, None, a DataFrame or a non-string item is refused.
- :func:`check_settings`: the range checks of a settings dataclass, one message shape for all.
- :func:`check_data_path` / :func:`check_column_name`: what the data readers are given.
"""


from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from dataclasses import MISSING, fields

import pandas as pd

from textshift.errors import ConfigError, DataError

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


def check_settings(config, checks) -> None:
    """Raise ConfigError for the first failed check of the settings dataclass instance ``config``.

    ``checks`` are ``(setting name, passed, what is allowed)`` triples. The error records the setting's name
    (``ConfigError.setting``), so the command line can name the flag that sets it.
    """
    for name, passed, allowed in checks:
        if not passed:
            raise ConfigError(f"the '{name}' setting must be {allowed}; got {getattr(config, name)!r}. Set it "
                              f"{allowed}", setting=name)


def check_data_path(path) -> str:
    """``path`` as a string, ``~`` expanded (``embedded:NAME`` is kept as is).

    Raises :class:`~textshift.errors.DataError` when ``path`` is not a path: a DataFrame, bytes, None, ….
    """
    if isinstance(path, pd.DataFrame):
        raise DataError("expected a file path or embedded:NAME; got a DataFrame. For data already in memory use "
                        "TextData.from_lists(df.text.tolist(), df.label.tolist())")
    if isinstance(path, bytes):
        raise DataError(f"expected a file path or embedded:NAME as a str; got bytes ({path[:60]!r}). Pass "
                        "path.decode() or a pathlib.Path")
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str) or not text.strip():
        found = "an empty string" if isinstance(text, str) else f"{type(path).__name__} ({_preview(path)})"
        raise DataError(f"expected a file path or embedded:NAME; got {found}. Pass a .csv, .tsv, .jsonl or "
                        ".parquet file, or e.g. embedded:news")
    return text if text.startswith("embedded:") else os.path.expanduser(text)


def check_column_name(value, option: str) -> None:
    """A column asked for by name must be a non-empty string (``text_column=0`` would silently mean the default)."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{option} must be a column name (a non-empty string); got {value!r} "
                          f"({type(value).__name__}). Pass e.g. {option}='text', the header of that column")


def _preview(value, width: int = 40) -> str:
    shown = repr(value)
    return shown if len(shown) <= width else shown[:width - 1] + "…"


def as_list(values, *, what: str = "texts") -> list:
    """``values`` (a list, tuple, pandas Series, numpy array, generator, …) as a new list.

    Raises :class:`~textshift.errors.DataError` for what ``list()`` would silently get wrong or fail on: None, a
    bare string or bytes (split into characters), a DataFrame or a dict (their column names or keys), a number.
    ``what`` names the values in messages ("texts", "labels").
    """
    if isinstance(values, str):
        raise DataError(f"expected a list of {what}, got one string ({_preview(values)}); wrap it in a list: "
                        f"[{_preview(values)}]")
    if isinstance(values, bytes):
        raise DataError(f"expected a list of {what}, got bytes ({_preview(values)}); decode them and wrap the "
                        "result in a list: [data.decode()]")
    if isinstance(values, pd.DataFrame):
        columns = ", ".join(map(str, values.columns[:5]))
        raise DataError(f"expected a list of {what}, got a DataFrame (columns {columns}); pass one of its columns, "
                        f"e.g. df[{what[:-1]!r}]")
    if isinstance(values, Mapping):
        raise DataError(f"expected a list of {what}, got a {type(values).__name__}; pass list(d.values()) or "
                        "list(d) to say which you mean")
    if values is None:
        raise DataError(f"expected a list of {what}, got None; pass a list, e.g. [\"first {what[:-1]}\", …]")
    try:
        items = iter(values)
    except TypeError as exc:
        raise DataError(f"expected a list of {what}, got {type(values).__name__} ({_preview(values)}); pass a "
                        f"list, e.g. [{_preview(values)}]") from exc
    return list(items)


def as_str_list(values, *, what: str = "texts") -> list[str]:
    """``values`` as a list of ``str`` (see :func:`as_list`); any item that is not a string is a
    :class:`~textshift.errors.DataError` naming the first one's position and type."""
    out = as_list(values, what=what)
    for i, value in enumerate(out):
        if type(value) is str:
            continue
        if isinstance(value, str):  # numpy.str_ and other str subclasses
            out[i] = str(value)
            continue
        count = sum(not isinstance(v, str) for v in out)
        found = "None" if value is None else f"{type(value).__name__} {_preview(value)}"
        raise DataError(f"{what}[{i}] is {found}; expected a string at every position ({count} of {len(out)} "
                        f"{what} are not). Remove those items or convert them to text")
    return out
