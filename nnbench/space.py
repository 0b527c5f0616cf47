"""Search spaces for tuning: where a hyperparameter is sampled from.

In an experiment file, a table in place of a value::

    learning_rate = { log_uniform = [1e-5, 1e-1] }
    momentum = { one_minus_log_uniform = [0.5, 0.999] }   # 1 - mu is log-uniform
    mb_maxiter = { int_uniform = [2, 20] }
    form = { choice = ["blog", "classical"] }

Each space maps a point ``u`` of [0, 1) to a value (so quasi-random points
fill it evenly), rounds a value as trials are labelled (:meth:`round`: four
significant digits, of the distance from 1 for ``one_minus_log_uniform``),
and says where a value sits in it (:meth:`position`, on the scale it is
sampled on), which the report uses to flag a choice at an edge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SIGNIFICANT_DIGITS = 4  # trial values: readable labels, finer than any tuning needs


def _significant(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float
    log = True
    kind = "log_uniform"

    def value(self, u: float) -> float:
        return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))

    def position(self, value: float) -> float:
        return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))

    def round(self, value: float) -> float:
        return _significant(value)

    def to_table(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def __str__(self) -> str:
        return f"log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class OneMinusLogUniform:
    """``1 - x`` log-uniform: momentum-like values near 1 get their share of points."""

    low: float
    high: float
    log = False
    kind = "one_minus_log_uniform"

    def value(self, u: float) -> float:
        return 1.0 - LogUniform(1.0 - self.high, 1.0 - self.low).value(1.0 - u)

    def position(self, value: float) -> float:
        return 1.0 - LogUniform(1.0 - self.high, 1.0 - self.low).position(1.0 - value)

    def round(self, value: float) -> float:
        # four significant digits of the distance from 1: 0.99999 stays 0.99999
        distance = _significant(1.0 - value)
        if distance <= 0:
            return 1.0 - distance
        decimals = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(distance))
        return round(1.0 - distance, decimals)  # 0.8382, not 0.8382000000000001

    def to_table(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def __str__(self) -> str:
        return f"1 - log-uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float
    log = False
    kind = "uniform"

    def value(self, u: float) -> float:
        return self.low + u * (self.high - self.low)

    def position(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def round(self, value: float) -> float:
        return _significant(value)

    def to_table(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def __str__(self) -> str:
        return f"uniform [{self.low:g}, {self.high:g}]"


@dataclass(frozen=True)
class IntUniform:
    """Integers from ``low`` to ``high``, both included, equally likely."""

    low: int
    high: int
    log = False
    kind = "int_uniform"

    def value(self, u: float) -> int:
        return min(self.high, self.low + int(u * (self.high - self.low + 1)))

    def position(self, value: float) -> float:
        return (value - self.low + 0.5) / (self.high - self.low + 1)

    def round(self, value: int) -> int:
        return value

    def to_table(self) -> dict[str, Any]:
        return {self.kind: [self.low, self.high]}

    def __str__(self) -> str:
        return f"integers {self.low} to {self.high}"


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]
    log = False
    kind = "choice"

    def value(self, u: float) -> Any:
        return self.values[min(len(self.values) - 1, int(u * len(self.values)))]

    def position(self, value: Any) -> float:
        return 0.5  # an unordered choice has no edge

    def round(self, value: Any) -> Any:
        return value

    def to_table(self) -> dict[str, Any]:
        return {self.kind: list(self.values)}

    def __str__(self) -> str:
        return "one of " + ", ".join(map(str, self.values))


Space = LogUniform | OneMinusLogUniform | Uniform | IntUniform | Choice
KINDS = {c.kind: c for c in (LogUniform, OneMinusLogUniform, Uniform, IntUniform, Choice)}


def is_edge(space: Space, value: Any, fraction: float) -> bool:
    """Whether ``value`` lies in the outer ``fraction`` of ``space`` at either end."""
    p = space.position(value)
    return p < fraction or p > 1 - fraction


def space_from_table(table: Any) -> Space:
    """A space from its table, ``{"log_uniform": [1e-5, 0.1]}``; ValueError naming the fix."""
    if not isinstance(table, dict) or len(table) != 1:
        raise ValueError(f"a search space is a table of one key, one of {', '.join(KINDS)}")
    ((kind, args),) = table.items()
    if kind not in KINDS:
        raise ValueError(f"unknown search space {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError("choice takes a non-empty list of values")
        if len({repr(a) for a in args}) < len(args):
            raise ValueError(f"choice names a value twice ({args!r}); give each once")
        return Choice(tuple(args))
    if not (isinstance(args, list) and len(args) == 2):
        raise ValueError(f"{kind} takes [low, high]")
    low, high = args
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not all(math.isfinite(v) for v in (low, high)) or not low < high:
        raise ValueError(f"{kind} takes two finite numbers, low < high; got {args!r}")
    if kind == "int_uniform":
        if low != int(low) or high != int(high):
            raise ValueError(f"int_uniform takes two integers; got {args!r}")
        return IntUniform(int(low), int(high))
    if kind == "log_uniform" and low <= 0:
        raise ValueError(f"log_uniform takes bounds > 0; got {args!r}")
    if kind == "one_minus_log_uniform" and high >= 1:
        raise ValueError(f"one_minus_log_uniform takes bounds < 1; got {args!r}")
    return KINDS[kind](float(low), float(high))
