"""Typed parameters: a config section read into a frozen dataclass, checked field by field.

A stage's parameters are one frozen dataclass. Its fields are the only place where the
section's keys, defaults, types, bounds, choices and help text are written (`option`); the
loader reads every one of them from the field, so validation, the recorded config and "did you
mean" all agree. Rules that tie two fields together live in the dataclass's own
`check()` method. Every error is one line naming the key as a dotted path.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

_KEYED = re.compile(r"[\w.\[\]]+: ")


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    min: float | None = None,
    max: float | None = None,
    above: float | None = None,
    below: float | None = None,
    choices: tuple | None = None,
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its help text and bounds: `min`/`max` inclusive, `above`/`below`
    exclusive, `choices` the allowed values. Lists, dicts and dataclasses go in `factory`."""
    meta = {"help": help, "min": min, "max": max, "above": above, "below": below}
    meta["choices"] = choices
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    names |= {list: "list", tuple: "list", dict: "mapping", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def unknown_key(key: str, where: str, known: list[str]) -> ValueError:
    hint = difflib.get_close_matches(key, known, n=1)
    also = f"did you mean {hint[0]!r}?" if hint else f"known: {', '.join(sorted(known)) or 'none'}"
    return ValueError(f"{where}{key}: unknown key ({also})")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None is allowed)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        inner = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
        return inner, len(args) < len(typing.get_args(tp))
    return tp, False


def _scalar(value: Any, tp: Any, where: str) -> Any:
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{where}: expected true or false, got {type_name(value)} {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError(f"{where}: expected an integer, got {type_name(value)} {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError(f"{where}: expected a number, got {type_name(value)} {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{where}: expected a string, got {type_name(value)} {value!r}")
    raise TypeError(f"{where}: no reader for type {tp!r}")


def _value(value: Any, tp: Any, where: str) -> Any:
    tp, nullable = _optional(tp)
    if value is None:
        if nullable or tp is Any:
            return None
        raise ValueError(f"{where}: must not be null")
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return load(tp, value, where)
    if origin in (typing.Union, types.UnionType):  # e.g. str | list[str]: the first that fits
        for option_type in typing.get_args(tp):
            try:
                return _value(value, option_type, where)
            except ValueError:
                continue
        raise ValueError(f"{where}: {type_name(value)} {value!r} does not fit")
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{where}: expected a list, got {type_name(value)} {value!r}")
        item = typing.get_args(tp)[0]
        items = [_value(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: expected a mapping, got {type_name(value)} {value!r}")
        args = typing.get_args(tp) or (str, Any)
        return {str(k): _value(v, args[1], f"{where}.{k}") for k, v in value.items()}
    return _scalar(value, tp, where)


def _bounds(value: Any, meta: Mapping[str, Any], where: str) -> None:
    choices = meta.get("choices")
    if choices is not None and value is not None:
        values = value if isinstance(value, tuple | list) else [value]
        for v in values:
            if v not in choices:
                allowed = ", ".join(map(str, choices))
                raise ValueError(f"{where}: must be one of {allowed}, got {v!r}")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    lo, hi, above, below = (meta.get(k) for k in ("min", "max", "above", "below"))
    if lo is not None and value < lo:
        raise ValueError(f"{where}: must be at least {lo}, got {value}")
    if hi is not None and value > hi:
        raise ValueError(f"{where}: must be at most {hi}, got {value}")
    if above is not None and value <= above:
        raise ValueError(f"{where}: must be above {above}, got {value}")
    if below is not None and value >= below:
        raise ValueError(f"{where}: must be below {below}, got {value}")


def load(cls: type, given: Any, where: str = "") -> Any:
    """`cls` from a mapping of overrides (None: all defaults). `where` prefixes error keys."""
    prefix = f"{where}." if where else ""
    if given is None:
        given = {}
    if dataclasses.is_dataclass(given) and isinstance(given, cls):
        return given
    if not isinstance(given, Mapping):
        raise ValueError(f"{where or 'section'}: expected a mapping, got {type_name(given)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in given:
        if key not in fields:
            raise unknown_key(str(key), prefix, list(fields))
    hints = _hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in given:
            continue
        value = _value(given[name], hints[name], f"{prefix}{name}")
        _bounds(value, f.metadata, f"{prefix}{name}")
        kwargs[name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        try:
            check()
        except ValueError as err:
            raise ValueError(_at(where, str(err))) from None
    return obj


def _at(where: str, message: str) -> str:
    """A check's message under its section: "key: ..." names a key, else the section itself."""
    if not where:
        return message
    if _KEYED.match(message):
        return f"{where}.{message}"
    return f"{where}: {message}"


def as_dict(obj: Any) -> Any:
    """Plain data (dicts, lists, scalars) in field order: what a job file would say."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list | frozenset):
        return [as_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: as_dict(v) for k, v in obj.items()}
    return obj


def defaults(cls: type) -> dict[str, Any]:
    """A section's defaults as plain data: for code that builds a section by hand."""
    return as_dict(cls())
