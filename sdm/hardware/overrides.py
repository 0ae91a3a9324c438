"""Override fields of frozen spec dataclasses: by keyword, by dotted name, or from a TOML file.

One mechanism serves `device("nand", qd1_latency_s=1e-4)`, `hardware("host-nand",
**{"scm.qd1_latency_s": 1e-5})`, `sdm-plan hardware --set host.dram.capacity_bytes=64GiB` and
`hardware_from_toml(path)`. Values are coerced to the field's declared type (strings such as
"64GiB" or "1e-5" are accepted, so the CLI and TOML can pass text; a fractional value for an integer
field is an error, never a truncation), every overridden field records where its new value came from
in the owner's `sources`, and a bad name or value raises `InvalidInputError` naming it, with the
valid names, before anything is built.

This module knows no spec type: it is the lowest of sdm.hardware, so every spec's `replace` can use
it. A field that holds a spec and may be given a preset name (`scm="p4500"`) is resolved through the
`named` mapping the caller passes (type -> lookup by name).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from sdm.core.errors import InvalidInputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3, "t": 1000**4, "tb": 1000**4,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_quantity(text: str, what: str) -> float:
    """'64GiB' -> 68719476736, '1.6TB' -> 1.6e12, '1e-5' -> 1e-05. Units are byte units only."""
    m = _QUANTITY.match(text)
    if not m or m.group(2).lower() not in _UNITS:
        raise InvalidInputError(
            f"{what}: cannot read {text!r} as a number (units allowed: KiB MiB GiB TiB KB MB GB TB)"
        )
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_assignments(items, what: str = "--set") -> dict[str, str]:
    """`["a.b=1", "c=64GiB"]` -> `{"a.b": "1", "c": "64GiB"}`: the one parser of FIELD=VALUE text
    (CLI `--set`). Values stay text: `apply_overrides` coerces each to its field's type, so a
    fractional value for an integer field is an error there, never a truncation."""
    out: dict[str, str] = {}
    for item in items or ():
        key, eq, value = str(item).partition("=")
        if not eq or not key.strip() or not value.strip():
            raise InvalidInputError(f"{what} {item!r}: expected FIELD=VALUE, e.g. dram_capacity_bytes=64GiB")
        key = key.strip()
        if key in out:
            raise InvalidInputError(f"{what}: {key!r} is given twice")
        out[key] = value.strip()
    return out


Named = Mapping[type, Callable[[str], Any]]  # field type -> preset lookup by name


def apply_overrides(obj: Any, overrides: Mapping[str, Any], *, source: str = "user override", prefix: str = "",
                    named: Named | None = None) -> Any:
    """A copy of dataclass `obj` with `overrides` applied; keys are field names, dotted for nesting.

    `sources.<field>` keys set the source text of a field instead of its value. Tuples of
    dataclasses (e.g. `cards`) take `cards.<i>.<field>` for one element or `cards.<field>` for all.
    `named` maps a field type to a lookup by preset name, for fields given as text (`scm="p4500"`).
    """
    named = named or {}
    if not overrides:
        return obj
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    source_texts: dict[str, str] = {}
    for key, value in overrides.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"override name must be a non-empty string, got {key!r}")
        head, _, rest = key.partition(".")
        if head == "sources" and rest:
            # "sources.scm.qd1_latency_s" names the source of a nested field: route it there.
            inner, _, inner_rest = rest.partition(".")
            if inner_rest and inner in fields and inner != "sources":
                nested.setdefault(inner, {})[f"sources.{inner_rest}"] = value
                continue
            if "sources" in fields:
                source_texts[rest] = str(value)
                continue
        if head not in fields or head == "sources":
            valid = ", ".join(prefix + n for n in fields if n != "sources")
            raise InvalidInputError(f"unknown field {prefix + key!r} of {type(obj).__name__}; valid fields: {valid}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = _coerce(value, hints[head], prefix + head, named)
    changes: dict[str, Any] = {}
    for head, sub in nested.items():
        current = direct.get(head, getattr(obj, head))
        changes[head] = _apply_nested(current, sub, source=source, prefix=f"{prefix}{head}.", named=named)
    for head, value in direct.items():
        changes.setdefault(head, value)
    if "sources" in fields:
        srcs = dict(obj.sources)
        for head in direct:
            srcs[head] = source
        for name, text in source_texts.items():
            srcs[name] = text
        changes["sources"] = srcs
    return dataclasses.replace(obj, **changes)


def _apply_nested(current: Any, sub: dict[str, Any], *, source: str, prefix: str, named: Named) -> Any:
    if dataclasses.is_dataclass(current):
        return apply_overrides(current, sub, source=source, prefix=prefix, named=named)
    if isinstance(current, tuple) and current and all(dataclasses.is_dataclass(x) for x in current):
        items = list(current)
        for_all = {k: v for k, v in sub.items() if not k.partition(".")[0].isdigit()}
        for key, value in sub.items():
            idx, _, rest = key.partition(".")
            if not idx.isdigit():
                continue
            i = int(idx)
            if i >= len(items) or not rest:
                raise InvalidInputError(
                    f"override {prefix + key!r}: index {i} out of range (0..{len(items) - 1}) or no field given"
                )
            items[i] = apply_overrides(items[i], {rest: value}, source=source, prefix=f"{prefix}{i}.", named=named)
        if for_all:
            items = [apply_overrides(x, for_all, source=source, prefix=prefix, named=named) for x in items]
        return tuple(items)
    raise InvalidInputError(
        f"override {prefix}{next(iter(sub))!r}: {prefix.rstrip('.')!r} is {current!r}, which has no fields to set"
    )


def _coerce(value: Any, hint: Any, name: str, named: Named) -> Any:
    """Convert `value` to the declared type `hint` of field `name`, or raise naming both."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", ""))):
            return None
        others = [a for a in args if a is not type(None)]
        errors = []
        for a in others:
            try:
                return _coerce(value, a, name, named)
            except InvalidInputError as exc:
                errors.append(str(exc))
        raise InvalidInputError(errors[0] if errors else f"{name}: bad value {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise InvalidInputError(f"{name}: expected true or false, got {value!r}")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise InvalidInputError(f"{name}: expected {'an integer' if hint is int else 'a number'}, got {value!r}")
        v = parse_quantity(value, name) if isinstance(value, str) else value
        if not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise InvalidInputError(f"{name}: expected a finite number, got {value!r}")
        if hint is float:
            return float(v)  # "2" and 2 are as good as 2.0
        if isinstance(v, numbers.Integral):
            return int(v)
        if float(v).is_integer():  # "64GiB", "1e6", 2.0 from TOML
            return int(v)
        raise InvalidInputError(f"{name}: expected an integer, got {value!r} (a fraction is not truncated)")
    if hint is str:
        if isinstance(value, str):
            return value
        raise InvalidInputError(f"{name}: expected text, got {value!r}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        lookup = named.get(hint)
        if lookup is not None and isinstance(value, str):
            return lookup(value.strip())
        what = f"a {hint.__name__} or a preset name" if lookup is not None else f"a {hint.__name__}"
        raise InvalidInputError(f"{name}: expected {what}, got {value!r}")
    if origin is tuple and isinstance(value, (tuple, list)):
        return tuple(value)
    raise InvalidInputError(f"{name}: cannot set a field of type {hint!r} from {value!r}; set its sub-fields instead")


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables -> dotted names: {"scm": {"qd1_latency_s": 1e-5}} -> {"scm.qd1_latency_s": 1e-5}."""
    out: dict[str, Any] = {}
    for k, v in table.items():
        if isinstance(v, Mapping):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_toml(path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error becomes InvalidInputError naming the file."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path}: not valid TOML: {exc}") from exc
