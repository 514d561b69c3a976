"""Sampling values: which fields an arch takes, their ranges, and where a missing value comes from (pure).

Nothing is filled in silently: every applicable field is given, answered at a prompt, or the
defaults are accepted explicitly. Values out of range are refused, never clamped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from taoplan.errors import RequestError

if TYPE_CHECKING:
    from taoplan.spec.references import RequestRefs, SamplingField

Ask = Callable[[str, "SamplingField"], Any]


def flag_name(field_name: str) -> str:
    """How a field is named in messages to CLI users; the client passes its own (keyword names)."""
    return "--" + field_name.replace("_", "-")


def _describe_field(name: str, spec: SamplingField, flag: Callable[[str], str]) -> str:
    bounds = _bounds(spec)
    extra = f", {bounds}" if bounds else ""
    return f"{flag(name)} ({spec.type}, default {spec.default!r}{extra})"


def describe_fields(
    arch: str, rules: RequestRefs, names: list[str], flag: Callable[[str], str] = flag_name
) -> str:
    """``name (type, default D, bounds)`` for each field named, comma-separated (for "missing" errors)."""
    fields = rules.archs[arch].sampling
    return ", ".join(_describe_field(name, fields[name], flag) for name in names)


def _bounds(spec: SamplingField) -> str:
    if spec.min is not None and spec.max is not None:
        return f"{_num(spec.min)}..{_num(spec.max)}"
    if spec.min is not None:
        return f">= {_num(spec.min)}"
    if spec.max is not None:
        return f"<= {_num(spec.max)}"
    return ""


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,)}


def check_value(
    name: str, spec: SamplingField, value: Any, flag: Callable[[str], str] = flag_name, arch: str = ""
) -> str | None:
    """Why ``value`` is not acceptable for this field, or None. Values are never clamped."""
    if isinstance(value, bool) or not isinstance(value, _KINDS[spec.type]):
        return f"{flag(name)} must be {spec.type}, got {value!r}"
    if spec.type == "str":
        return None
    number = float(cast(float, value))
    if not math.isfinite(number):
        return f"{flag(name)} must be a finite number, got {value!r}"
    if (spec.min is not None and number < spec.min) or (spec.max is not None and number > spec.max):
        where = f" for {arch}" if arch else ""
        return f"{flag(name)} {value!r} is out of range{where} ({_bounds(spec)}); values are never clamped"
    return None


def cross_check(
    arch: str, rules: RequestRefs, given: Mapping[str, Any], flag: Callable[[str], str] = flag_name
) -> list[str]:
    """Fields meant for another arch, and values of the wrong type or out of range."""
    fields = rules.archs[arch].sampling
    problems = []
    for name, value in given.items():
        if name not in fields:
            owners = [a for a, r in rules.archs.items() if name in r.sampling]
            where = f"it applies to {', '.join(owners)}" if owners else "no arch takes it"
            takes = ", ".join(flag(f) for f in fields)
            problems.append(f"{flag(name)} does not apply to {arch} ({where}); {arch} takes {takes}")
            continue
        problem = check_value(name, fields[name], value, flag, arch)
        if problem:
            problems.append(problem)
    return problems


def resolve_sampling(
    arch: str,
    rules: RequestRefs,
    given: Mapping[str, Any],
    *,
    accept_defaults: bool = False,
    ask: Ask | None = None,
    flag: Callable[[str], str] = flag_name,
) -> dict[str, Any]:
    """Every applicable sampling field gets a value the user chose: given, answered, or defaults accepted.

    Order of sources: explicit values; else ``accept_defaults``; else ``ask`` (a terminal prompt);
    else an error listing the missing fields and their defaults. Nothing is filled in silently.
    """
    problems = cross_check(arch, rules, given, flag)
    if problems:
        raise RequestError(problems[0], lines=problems)
    fields = rules.archs[arch].sampling
    values = dict(given)
    missing = [name for name in fields if name not in values]
    if not missing:
        return {name: values[name] for name in fields}
    if accept_defaults:
        values.update({name: fields[name].default for name in missing})
    elif ask is not None:
        for name in missing:
            values[name] = ask(name, fields[name])
            problem = check_value(name, fields[name], values[name], flag, arch)
            if problem:
                raise RequestError(problem)
    else:
        listed = describe_fields(arch, rules, missing, flag)
        raise RequestError(
            f"{arch} needs sampling values and there is no terminal to ask: {listed}; "
            f"give them, or accept these defaults explicitly with {flag('accept_defaults')}"
        )
    return {name: values[name] for name in fields}
