"""Typed config values: parsing by type hint and the allowed range of every number.

Used by :mod:`tusimple_duc.config`: a key's type hint says how its text is parsed, and
its :class:`Range` (``dataclasses.field`` metadata, see :func:`key`) which numbers it
accepts. NaN and infinity are refused for every number. No value is evaluated as code.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, List, Literal, Optional

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"", "none"}

#: metadata key of a field's :class:`Range`
RANGE = "range"


@dataclass(frozen=True)
class Range:
    """Closed or open bounds of a number (None: unbounded on that side)."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: float) -> Optional[str]:
        """Why ``value`` is outside the range (None when it is inside)."""
        if not math.isfinite(value):
            return f"must be a finite number, got {value}"
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if not (too_low or too_high):
            return None
        return f"must be {self.describe()}, got {value}"

    def describe(self) -> str:
        """The range in words, e.g. ``>= 0 and < 1``."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {_number(self.low)}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {_number(self.high)}")
        return " and ".join(parts) or "finite"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


#: ranges used by the schema
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
FINITE = Range()


def key(default: Any, bounds: Range) -> Any:
    """A dataclass field with ``default`` whose numbers (each element of a tuple) must lie in
    ``bounds``."""
    return dataclasses.field(default=default, metadata={RANGE: bounds})


def range_problem(bounds: Optional[Range], value: Any) -> Optional[str]:
    """Check a parsed value (number, tuple of numbers, None, anything else) against ``bounds``;
    every float must be finite even without bounds."""
    if isinstance(value, tuple):
        for item in value:
            problem = range_problem(bounds, item)
            if problem:
                return problem
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if bounds is None:
        return FINITE.problem(value) if isinstance(value, float) else None
    return bounds.problem(value)


def is_numeric_hint(hint: Any) -> bool:
    """True if a type hint holds numbers (int, float, Optional or tuples of them)."""
    if hint in (int, float):
        return True
    return any(is_numeric_hint(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)


def _split(text: str) -> List[str]:
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _parse_scalar(kind: type, text: str) -> Any:
    if kind is bool:
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ValueError(f"expected True or False, got {text!r}")
    if kind is int:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        if not number.is_integer():
            raise ValueError(f"expected an integer, got {text!r}")
        return int(number)
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if kind is str:
        return text
    raise TypeError(f"unsupported config type {kind}")


def parse_value(hint: Any, text: str) -> Any:
    """Parse ``text`` according to the type hint ``hint`` (no evaluation of code)."""
    text = text.strip()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        inner = [a for a in args if a is not type(None)][0]
        if text.lower() in _NONE:
            return None
        return parse_value(inner, text)
    if origin is Literal:
        if text not in args:
            raise ValueError(f"expected one of {', '.join(map(str, args))}, got {text!r}")
        return text
    if origin is tuple:
        parts = _split(text)
        if len(args) == 2 and args[1] is Ellipsis:
            if not parts:
                raise ValueError("expected a comma-separated list, got nothing")
            return tuple(_parse_scalar(args[0], p) for p in parts)
        if len(parts) != len(args):
            kind = {int: "integers", float: "numbers", str: "values"}[args[0]]
            example = ",".join(["800"] * len(args)) if args[0] is int else ",".join(["1.0"] * len(args))
            raise ValueError(f"expected {len(args)} {kind} like '{example}', got {text!r}")
        return tuple(_parse_scalar(a, p) for a, p in zip(args, parts))
    return _parse_scalar(hint, text)


def format_value(value: Any) -> str:
    """Inverse of :func:`parse_value` for writing a resolved config back to INI."""
    if value is None:
        return "None"
    if isinstance(value, tuple):
        return ",".join(format_value(v) for v in value)
    return str(value)
