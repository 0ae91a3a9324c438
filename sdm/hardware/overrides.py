"""Override fields of frozen spec dataclasses: by keyword, by dotted name, or from a TOML file.

One mechanism serves `device("nand", qd1_latency_s=1e-4)`, `hardware("host-nand",
**{"scm.qd1_latency_s": 1e-5})`, `sdm-plan hardware --set host.dram.capacity_bytes=64GiB` and
`hardware_from_toml(path)`. Values are coerced to the field's declared type (strings such as
"64GiB" or "1e-5" are accepted, so the CLI and TOML can pass text), every overridden field records
where its new value came from in the owner's `sources`, and a bad name or value raises
`InvalidInputError` naming it, with the valid names, before anything is built.
"""
from __future__ import annotations

import dataclasses
import math
import re
import sys
import types
import typing
from collections.abc import Mapping
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


def apply_overrides(obj: Any, overrides: Mapping[str, Any], *, source: str = "user override", prefix: str = "") -> Any:
    """A copy of dataclass `obj` with `overrides` applied; keys are field names, dotted for nesting.

    `sources.<field>` keys set the source text of a field instead of its value. Tuples of
    dataclasses (e.g. `cards`) take `cards.<i>.<field>` for one element or `cards.<field>` for all.
    """
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
            direct[head] = _coerce(value, hints[head], prefix + head)
    changes: dict[str, Any] = {}
    for head, sub in nested.items():
        current = direct.get(head, getattr(obj, head))
        changes[head] = _apply_nested(current, sub, source=source, prefix=f"{prefix}{head}.")
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


def _apply_nested(current: Any, sub: dict[str, Any], *, source: str, prefix: str) -> Any:
    if dataclasses.is_dataclass(current):
        return apply_overrides(current, sub, source=source, prefix=prefix)
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
            items[i] = apply_overrides(items[i], {rest: value}, source=source, prefix=f"{prefix}{i}.")
        if for_all:
            items = [apply_overrides(x, for_all, source=source, prefix=prefix) for x in items]
        return tuple(items)
    raise InvalidInputError(
        f"override {prefix}{next(iter(sub))!r}: {prefix.rstrip('.')!r} is {current!r}, which has no fields to set"
    )


def _coerce(value: Any, hint: Any, name: str) -> Any:
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
                return _coerce(value, a, name)
            except InvalidInputError as exc:
                errors.append(str(exc))
        raise InvalidInputError(errors[0] if errors else f"{name}: bad value {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.strip().lower() in ("true", "1", "yes")
        raise InvalidInputError(f"{name}: expected true or false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise InvalidInputError(f"{name}: expected an integer, got {value!r}")
        v = parse_quantity(value, name) if isinstance(value, str) else value
        if isinstance(v, int):
            return v
        if isinstance(v, float) and math.isfinite(v) and v == int(v):
            return int(v)
        raise InvalidInputError(f"{name}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool):
            raise InvalidInputError(f"{name}: expected a number, got {value!r}")
        v = parse_quantity(value, name) if isinstance(value, str) else value
        if isinstance(v, (int, float)) and math.isfinite(float(v)):
            return float(v)
        raise InvalidInputError(f"{name}: expected a finite number, got {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        raise InvalidInputError(f"{name}: expected text, got {value!r}")
    # A field holding a device: accept a DeviceSpec or a preset name ("p4500").
    from sdm.hardware.devices import DeviceSpec, device

    if hint is DeviceSpec:
        if isinstance(value, DeviceSpec):
            return value
        if isinstance(value, str):
            return device(value.strip())
        raise InvalidInputError(f"{name}: expected a DeviceSpec or a device preset name, got {value!r}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, hint):
        return value
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
