"""Node parameters described once, validated all together.

Each node lists its parameters as :class:`ParamSpec` objects. The ROS side declares
them (with descriptors built from the same specs) and hands the values to
:func:`validate`, which checks every value and raises one :class:`ParameterError`
listing every problem: which parameter, which value, what is allowed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mouse_lifter_ros.core.errors import ParameterError

ParamValue = bool | int | float | str | list[int] | list[float] | list[str]

#: A check returns None when the value is fine, or a sentence saying what is allowed.
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class ParamSpec:
    """One node parameter.

    Attributes
    ----------
    name:
        Parameter name, as in ``config/*.yaml``.
    default:
        Default value; its type is the parameter's type (an ``int`` parameter also
        accepts a ``float`` with an integral value, a ``float`` one also an ``int``).
    description:
        One line for ``ros2 param describe`` and the README, with units.
    check:
        Optional further constraint on the (type-checked) value.
    allowed:
        Human-readable statement of the allowed values, shown in descriptors.
    kind:
        The element type for list parameters (``int``, ``float`` or ``str``).
    """

    name: str
    default: ParamValue
    description: str
    check: Check | None = None
    allowed: str = ""
    kind: type | None = None

    @property
    def type(self) -> type:
        """The Python type of the value (``list`` for arrays)."""
        return type(self.default)


def is_int(value: object) -> bool:
    """True for an integer that is not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """True for a real number (NaN and infinities included) that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_finite(value: object) -> bool:
    """True for a finite real number that is not a bool."""
    return is_real(value) and math.isfinite(float(value))  # type: ignore[arg-type]


def at_least(low: float, *, strict: bool = False) -> Check:
    """Check for a finite number ``>= low`` (``> low`` when ``strict``)."""

    def check(value: float) -> str | None:
        ok = math.isfinite(value) and (value > low if strict else value >= low)
        return None if ok else f"must be {'>' if strict else '>='} {low:g}"

    return check


def between(low: float, high: float, *, or_zero: bool = False) -> Check:
    """Check for a finite number with ``low <= value <= high`` (or exactly 0 when
    ``or_zero``: "use the default")."""

    def check(value: float) -> str | None:
        ok = (or_zero and value == 0) or (math.isfinite(value) and low <= value <= high)
        return None if ok else (f"must be {'0 or ' if or_zero else ''}>= {low:g} and "
                                f"<= {high:g}")

    return check


def half_open(low: float, high: float) -> Check:
    """Check for a number in ``[low, high)``: ``low <= value < high`` (NaN fails)."""

    def check(value: float) -> str | None:
        return None if low <= value < high else f"must be >= {low:g} and < {high:g}"

    return check


def non_empty(value: str) -> str | None:
    """Check for a string that holds more than whitespace."""
    return None if value.strip() else "must not be empty"


def parses(parse: Callable[[Any], object]) -> Check:
    """Check that ``parse`` accepts the value: None, or the ``ValueError`` it raised."""

    def check(value: Any) -> str | None:
        try:
            parse(value)
        except ValueError as exc:
            return str(exc)
        return None

    return check


def one_of(*choices: str) -> Check:
    """Check that a string is one of ``choices``."""

    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def rectangle_or_zeros(value: Sequence[int]) -> str | None:
    """Check an ``[x, y, width, height]`` pixel rectangle (all zeros = none)."""
    if len(value) != 4:
        return "must be [x, y, width, height] in pixels (all zeros: none)"
    if all(v == 0 for v in value):
        return None
    x, y, w, h = value
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        return "must have x, y >= 0 and width, height > 0 (all zeros: none)"
    return None


def _coerce(spec: ParamSpec, value: Any) -> tuple[Any, str | None]:
    """Return the value in the spec's type, or an error sentence."""
    want = spec.type
    if want is bool:
        return (value, None) if isinstance(value, bool) else (value, "must be true or false")
    if want is int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, "must be an integer"
        if isinstance(value, float) and not value.is_integer():
            return value, "must be an integer"
        return int(value), None
    if want is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return value, "must be a number"
        return float(value), None
    if want is str:
        return (value, None) if isinstance(value, str) else (value, "must be a string")
    if want is list:
        if not isinstance(value, list | tuple):
            return value, "must be a list"
        kind = spec.kind or str
        items: list[Any] = []
        for item in value:
            sub = ParamSpec(spec.name, kind(), spec.description)
            converted, problem = _coerce(sub, item)
            if problem:
                return value, f"must be a list whose items each {problem.removeprefix('must ')}"
            items.append(converted)
        return items, None
    raise TypeError(f"parameter {spec.name!r}: unsupported type {want.__name__}")


def validate(
    specs: Sequence[ParamSpec], values: Mapping[str, Any], *, owner: str = "node"
) -> dict[str, Any]:
    """Check every value against its spec and return them in their proper types.

    Parameters
    ----------
    specs:
        The node's parameters.
    values:
        Values by name; a missing name takes the spec's default.
    owner:
        The node's name, used in the error message.

    Returns
    -------
    dict
        Every parameter by name, typed as its spec says.

    Raises
    ------
    ParameterError
        Listing every invalid value at once, with what is allowed, and any name that
        no spec knows.
    """
    known = {spec.name for spec in specs}
    problems = [
        f"  {name}: unknown parameter (known: {', '.join(sorted(known))})"
        for name in values
        if name not in known
    ]
    out: dict[str, Any] = {}
    for spec in specs:
        raw = values.get(spec.name, spec.default)
        value, problem = _coerce(spec, raw)
        if problem is None and spec.check is not None:
            problem = spec.check(value)
        if problem:
            problems.append(f"  {spec.name} = {raw!r}: {problem}")
        out[spec.name] = value
    if problems:
        raise ParameterError(f"{owner}: invalid parameters:\n" + "\n".join(problems))
    return out
