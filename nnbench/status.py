"""How a run ended: one enum, with the two questions every reader asks of it."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """How a run ended. A ``str``, so it is stored and compared as its value."""

    COMPLETED = "completed"  # a budget ran out
    CONVERGED = "converged"  # the training cost changed by less than tol
    STOPPED = "stopped"  # a callback asked to stop
    DIVERGED = "diverged"  # a non-finite or exploding cost
    INTERRUPTED = "interrupted"  # Ctrl-C, in `nnbench train` and the estimator
    FAILED = "failed"  # an exception, a crash or a hang (recorded by the runner)

    @property
    def is_ok(self) -> bool:
        """The run trained to a normal end: its metrics are a result."""
        return self in _OK

    @property
    def is_final(self) -> bool:
        """Rerunning would give the same: a grid skips the run. Divergence is a
        result of the optimizer, so it is final; a failure or an interruption is not."""
        return self in _FINAL

    def outranks(self, other: Status) -> bool:
        """Of two results of one run, whether this one stands for the run over
        ``other``: a final result over one that is not, so that a rerun that
        failed never hides a result. The rule every reader of two files applies."""
        return self.is_final and not other.is_final


_OK = frozenset({Status.COMPLETED, Status.CONVERGED, Status.STOPPED})
_FINAL = _OK | {Status.DIVERGED}
