"""Build frozen dataclasses from plain dicts, checking keys and types.

Used by `config.load` and by the `targets.get` / `learners.get` registries, so a
misspelled or mistyped field is the same clear `ConfigError` from YAML and Python.

Example:
    >>> build(sparselearn.targets.lookup("sparse_parity"), {"n": 30, "k": 3})
    SparseParity(n=30, k=3, noise=0.0, inputs='hypercube', p=0.5)
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from typing import Any, Literal, get_args, get_origin, get_type_hints

from sparselearn.errors import ConfigError

_EXPONENT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
#: every integer field is a 32-bit integer: sizes, counts and seeds beyond it cannot be stored or run
MAX_INT = 2**31 - 1
MIN_INT = -(2**31)


def suggest(key: str, choices) -> str:
    """' (did you mean 'x'?)' when a close match exists, else ''."""
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _OutOfRange(ConfigError):
    """An integer beyond 32 bits (a ConfigError like any other to callers)."""


class _Unsettable(ConfigError):
    """A field whose annotation no config value can meet (a ConfigError to callers)."""


def _type_name(tp) -> str:
    if get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if get_origin(tp) in (tuple, list):
        args = get_args(tp)
        if get_origin(tp) is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return f"a list of {len(args)} (" + ", ".join(_type_name(a) for a in args) + ")"
        return "a list of " + _type_name(args[0])
    return {int: "an integer", float: "a number", str: "a string", bool: "true/false",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def coerce(value: Any, tp, key: str) -> Any:
    """`value` checked against the annotation `tp` (int, float, str, bool, Literal,
    X | None, tuple[X, ...], list[X], tuple[X, Y] of a fixed length); lists become tuples
    (hashable, as a jitted teacher or learner needs), ints become floats where a float is
    expected; integers must fit in 32 bits. Raises ConfigError(key) on a mismatch, and for an
    annotation a config cannot set (a dict, a class), naming it."""
    origin = get_origin(tp)
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in get_args(tp)):
            return value
    elif origin in (typing.Union, types.UnionType):
        unsettable = None
        for arm in get_args(tp):
            try:
                return coerce(value, arm, key)
            except _OutOfRange:
                raise  # the right type, too large: say so rather than "expected an integer or null"
            except _Unsettable as e:
                unsettable = e   # what the value was meant for, unless another arm takes it (null)
            except ConfigError:
                pass
        if unsettable is not None:
            raise unsettable
    elif origin in (tuple, list) and get_args(tp):
        if isinstance(value, (list, tuple)):
            args = get_args(tp)
            if origin is list or (len(args) == 2 and args[1] is Ellipsis):
                return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) == len(args):
                return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    elif tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if value > MAX_INT:
                raise _OutOfRange(f"must be at most {MAX_INT} (2^31 − 1), got {value}", key=key)
            if value < MIN_INT:
                raise _OutOfRange(f"must be at least {MIN_INT} (−2^31), got {value}", key=key)
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer of hundreds of digits
                raise ConfigError(f"expected a number within float range, got an integer of {len(str(value))} "
                                  "digits", key=key) from None
            if not math.isfinite(number):  # no setting means anything at inf or NaN; its range checks pass inf
                raise ConfigError(f"expected a finite number, got {value}", key=key)
            return number + 0.0  # −0.0 as 0.0: one setting, one config hash
        if isinstance(value, str) and _EXPONENT.match(value.strip()):
            return coerce(float(value), float, key)  # YAML 1.1 reads 1e-3 (no dot) as a string
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    else:
        raise _Unsettable(f"has the annotation {_type_name(tp)}, which a config cannot set (fields are int, "
                          "float, str, bool, Literal[...], tuple[X, ...], list[X], fixed tuples, or X | None)",
                          key=key)
    hint = ""
    if isinstance(value, str) and _numeric(value) and tp in (int, float, int | None, float | None):
        if not math.isfinite(float(value)):   # inf, nan: no setting means anything there
            raise ConfigError(f"expected a finite number, got {value!r}", key=key)
        hint = " (a string: write the number without quotes)"
    raise ConfigError(f"expected {_type_name(tp)}, got {value!r}{hint}", key=key)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build(cls, values: dict, *, skip: tuple[str, ...] = ()):
    """`cls(**values)` after checking every key is a field and every value its type.

    Keys in `skip` are ignored (e.g. the registry's `name`). Errors raised by
    `cls.__post_init__` pass through as ConfigError naming the field.
    """
    if not isinstance(values, dict):
        raise ConfigError(f"expected a mapping of fields, got {values!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in values.items():
        if key in skip:
            continue
        if key not in fields:
            raise ConfigError(f"unknown key{suggest(key, fields)}; expected one of {', '.join(fields)}", key=str(key))
        kwargs[key] = coerce(value, hints[key], key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:  # a constructor check without a key
        raise ConfigError(str(e)) from e


#: field metadata marking a field added after configs were stored: `to_dict` leaves it out while it
#: holds its default, so the hashes of configs written before it existed stay the same
OMIT_DEFAULT = {"omit_default": True}


def to_dict(obj) -> dict:
    """Fields of a dataclass as plain Python values (tuples as lists), for YAML and hashing;
    a field with OMIT_DEFAULT metadata is left out while it equals its default."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if f.metadata.get("omit_default") and v == f.default:
            continue
        if dataclasses.is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out
