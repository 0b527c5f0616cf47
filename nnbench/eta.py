"""How long a grid has left, from its own finished runs.

The runner orders runs slowest first (by a rough cost model), so the first
runs to finish are the slowest: the time per run so far, times the runs
left, overestimates by as much as the first runs outweigh the rest. Instead,
each finished run's seconds per unit of its modelled cost give this
machine's speed on this study; the time left is the modelled cost of the
runs not yet finished at that speed, spread over the workers. Its range comes
from how much that speed varied between the finished runs (the standard
error of their mean speed, two either side), so it narrows as runs finish.
Before the first run finishes there is no speed to go on, and nothing is said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """Seconds left: the point estimate and its range."""

    seconds: float
    low: float
    high: float

    def text(self) -> str:
        if self.high <= self.low * 1.05:
            return f"about {_fmt(self.seconds)} left"
        return f"about {_fmt(self.seconds)} left ({_fmt(self.low)} to {_fmt(self.high)})"


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class TimeLeft:
    """The time left of a set of runs with modelled ``costs`` (any unit), run by
    ``workers`` at a time."""

    def __init__(self, costs: dict[str, float], workers: int = 1) -> None:
        self.costs = {k: max(float(v), 1e-12) for k, v in costs.items()}
        self.workers = max(1, int(workers))
        self.speeds: list[float] = []  # seconds per unit of cost, of each finished run
        self.left = dict(self.costs)

    def done(self, run_id: str, seconds: float | None) -> None:
        """Run ``run_id`` finished after ``seconds`` of its own (None: unknown, as for a
        run that failed before it started: it leaves the count, not the speed)."""
        cost = self.left.pop(run_id, None)
        if cost is not None and seconds is not None and math.isfinite(seconds) and seconds > 0:
            self.speeds.append(seconds / cost)

    def estimate(self) -> Estimate | None:
        """Seconds left at the speed of the runs finished so far; None before any."""
        if not self.speeds:
            return None
        n = len(self.speeds)
        mean = sum(self.speeds) / n
        remaining = sum(self.left.values())
        point = remaining * mean / self.workers
        if n < 2:
            return Estimate(point, point / 2, point * 2)  # one run: within a factor 2 at best
        sd = math.sqrt(sum((s - mean) ** 2 for s in self.speeds) / (n - 1))
        rel = min(2 * sd / (mean * math.sqrt(n)), 0.9)
        return Estimate(point, point * (1 - rel), point * (1 + rel))
