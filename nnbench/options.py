"""One declared value: its kind, default, accepted range and meaning.

:class:`Option` is used twice, so that a value is described and checked one
way everywhere: for an optimizer's hyperparameters (``Optimizer.options``) and
for every run setting of the schema (:mod:`nnbench.settings`). A value is
*canonicalised* when it is checked: ``1`` and ``1.0`` become the same float
for a float option, ``20.0`` the integer 20 for an integer one. What is
stored, compared and hashed is the canonical value, never the spelling.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Kind:
    """How a value is read: ``convert`` returns the canonical value or raises ValueError.

    ``name`` is how the kind reads in an error message ("a number"); a function
    when the accepted values are only known later (a registry's names).
    """

    def __init__(self, name: str | Callable[[], str], convert: Callable[[Any], Any]) -> None:
        self._name = name
        self._convert = convert

    @property
    def name(self) -> str:
        return self._name() if callable(self._name) else self._name

    def convert(self, value: Any) -> Any:
        return self._convert(value)

    def __repr__(self) -> str:
        return f"Kind({self.name!r})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _to_float(value: Any) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):
        raise ValueError
    return float(value)


def _to_int(value: Any) -> int:
    if not _is_number(value) or not math.isfinite(float(value)) or float(value) != int(value):
        raise ValueError
    return int(value)


def _to_bool(value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError
    return bool(value)


# Text an option or a setting takes: it ends up in labels, names and reports,
# so a limit keeps a pasted megabyte out of every table.
MAX_TEXT = 1_000


def _to_str(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise ValueError
    return value


FLOAT = Kind("a number", _to_float)
INT = Kind("an integer", _to_int)
BOOL = Kind("true or false", _to_bool)
STR = Kind(f"a string of at most {MAX_TEXT:,} characters", _to_str)
_KINDS = {float: FLOAT, int: INT, bool: BOOL, str: STR}


def kind_of(kind: Kind | type) -> Kind:
    """A :class:`Kind` from a Kind or one of the types float, int, bool, str."""
    if isinstance(kind, Kind):
        return kind
    try:
        return _KINDS[kind]
    except KeyError:
        raise TypeError(
            f"an option's kind is a Kind or float, int, bool, str; got {kind!r}"
        ) from None


@dataclass(frozen=True)
class Option:
    """One declared value.

    Parameters
    ----------
    default : the value when none is given (``None`` with ``optional=True``)
    doc : what it is, in a few words
    low, high : bounds of a number
    low_open, high_open : True when the bound itself is excluded
    choices : the accepted strings
    kind : float, int, bool, str or a :class:`Kind`; None takes the type of the default
    optional : whether ``None`` (unset) is accepted
    search : the default search space for tuning (``nnbench.tune``), or None
    """

    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] | None = None
    kind: Kind | type | None = None
    high_open: bool = False
    optional: bool = False
    search: Any = field(default=None, compare=False)

    @property
    def value_kind(self) -> Kind:
        if self.kind is not None:
            return kind_of(self.kind)
        return kind_of(type(self.default))

    def describe_range(self, unset: bool = True) -> str:
        """What the option accepts, in words: ``a number > 0 and < 1``."""
        if self.choices:
            text = "one of " + ", ".join(self.choices)
        else:
            parts = []
            whole = self.value_kind is INT
            if self.low is not None:
                low = f"{int(self.low):,}" if whole else f"{self.low:g}"
                parts.append(f"{'>' if self.low_open else '>='} {low}")
            if self.high is not None:
                high = f"{int(self.high):,}" if whole else f"{self.high:g}"
                parts.append(f"{'<' if self.high_open else '<='} {high}")
            text = self.value_kind.name + (" " + " and ".join(parts) if parts else "")
        return text + (" (or unset)" if self.optional and unset else "")

    def convert(self, value: Any) -> Any:
        """The canonical value, or ValueError saying what is accepted."""
        if value is None and self.optional:
            return None
        try:
            value = self.value_kind.convert(value)
        except (ValueError, TypeError, OverflowError):
            raise ValueError(self.describe_range(unset=False)) from None
        ok = True
        if self.choices is not None:
            ok = value in self.choices
        if _is_number(value):
            if self.low is not None:
                ok = ok and (value > self.low if self.low_open else value >= self.low)
            if self.high is not None:
                ok = ok and (value < self.high if self.high_open else value <= self.high)
        if not ok:
            raise ValueError(self.describe_range(unset=False))
        return value


def other_value(opt: Option) -> Any:
    """A valid value other than the option's default: the first other choice, the
    other boolean, or a number its range admits (twice, one more, half the
    default); ValueError when there is none to suggest."""
    default = opt.default
    if opt.choices:
        return next(c for c in opt.choices if c != default)
    if opt.value_kind is BOOL:
        return not default
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        for candidate in (default * 2, default + 1, default / 2):
            try:
                value = opt.convert(type(default)(candidate))
            except (ValueError, TypeError):
                continue
            if value != default:
                return value
    raise ValueError("no other value to suggest")
