"""Execution backends: what dispatches a grid's runs, behind one seam.

A backend only dispatches: every run itself executes in a process of its own
under :func:`nnbench.isolation.supervise`, whichever backend sent it, so
isolation, hang detection, the recorded statuses and the safety guarantees
are the same under all of them: on Ctrl-C or SIGTERM the runner asks every
supervisor on its machine to stop its run, and a supervisor whose runner is
gone (even by SIGKILL) kills its run and ends its own process. A backend
codes none of that (the fault suite runs every registered backend, a test
plugin's process pool among them, through the same scenarios).

A backend is a subclass of :class:`Backend` in a module of its own,
registered here (built-ins) or as an entry point of the group
``nnbench.backends`` (plugins). The runner knows only this interface:

- ``with backend:`` starts and stops what it needs (a pool, a cluster);
  leaving the block on an error or Ctrl-C stops every run;
- ``submit(fn, *args)`` returns a future (``result()``, ``cancel()``,
  ``add_done_callback()``), passed through :meth:`Backend.track`;
- ``completed(timeout)`` returns the futures finished since the last call
  (waiting up to ``timeout`` for one);
- ``capacity()`` is how many runs it runs at once (the runner keeps twice
  that many submitted, so no worker waits and Ctrl-C has little to cancel);
- ``stop_check()`` is a picklable callable that the supervisors poll: it
  turns True when the grid is being stopped, and the run is killed.

Built in: ``threading`` (the default: threads of the runner supervise the
run processes), ``loky`` (joblib's process pool supervises them) and
``dask`` (Dask workers, local or on a cluster, supervise them).
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from typing import Any, ClassVar

from nnbench.errors import ConfigError
from nnbench.registry import Registry

ENTRY_POINT_GROUP = "nnbench.backends"
BUILTIN = {
    "threading": "nnbench.backends.threads:ThreadBackend",
    "loky": "nnbench.backends.loky:LokyBackend",
    "dask": "nnbench.backends.dask:DaskBackend",
}
DEFAULT = "threading"
# More jobs than this many per core only slow a CPU-bound grid down (and a
# typo such as -j 1000 would start a thousand processes).
MAX_JOBS_PER_CORE = 4


class Backend:
    """The seam. Subclasses set ``name`` and ``summary`` and implement the methods."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    takes_scheduler: ClassVar[bool] = False

    def __init__(self, n_jobs: int, scheduler: str | None = None) -> None:
        self.n_jobs = n_jobs
        self.scheduler = scheduler
        self._done: queue.SimpleQueue = queue.SimpleQueue()

    def track(self, future: Any) -> Any:
        """``future``, reported by :meth:`completed` once it finishes."""
        future.add_done_callback(self._done.put)
        return future

    def completed(self, timeout: float) -> list[Any]:
        """The tracked futures that finished since the last call; waits up to
        ``timeout`` seconds for the first."""
        try:
            done = [self._done.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                return done

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def describe(self) -> str:
        """Where the runs go, for the progress line: ``threading (2 jobs)``."""
        return f"{self.name} ({self.n_jobs} job{'s' if self.n_jobs > 1 else ''})"

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        raise NotImplementedError

    def capacity(self) -> int:
        return self.n_jobs

    def stop_check(self) -> Callable[[], bool] | None:
        return None

    def stop(self) -> None:
        """Tell every supervisor to stop its run; cancel what has not started."""


def _accept(cls: Any, name: str) -> type[Backend]:
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise TypeError(f"backend {name!r} is not an nnbench Backend")
    return cls


_REGISTRY: Registry[type[Backend]] = Registry("backend", ENTRY_POINT_GROUP, _accept)
for _name, _reference in BUILTIN.items():
    _REGISTRY.register(_name, _reference, builtin=True)  # imported when chosen


def available() -> list[str]:
    """The backends' names, built-ins first (none is imported to list them)."""
    return _REGISTRY.names()


def get(name: str) -> type[Backend]:
    """The backend class registered as ``name``."""
    if name == "multiprocessing":
        raise ConfigError(
            "unknown backend 'multiprocessing': it is not offered, every run already gets a "
            f"process of its own; choose one of {', '.join(available())}"
        )
    return _REGISTRY.get(name)


def check_jobs(n_jobs: object, threads: object) -> None:
    """``-j`` and ``--threads``: integers from 1 to a bound, or one clear error."""
    cores = os.cpu_count() or 1
    limit = MAX_JOBS_PER_CORE * cores
    for flag, value, top in (("-j/--jobs", n_jobs, limit), ("--threads", threads, cores)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise ConfigError(
                f"{flag} must be an integer from 1 to {top} ({cores} cores here); got {value!r}"
            )


def make(name: str, n_jobs: int, scheduler: str | None = None) -> Backend:
    """A configured backend; a scheduler for a backend that takes none is an error."""
    cls = get(name)
    if scheduler and not cls.takes_scheduler:
        raise ConfigError(f"--scheduler is for --backend dask, not {name}")
    return cls(n_jobs, scheduler)
