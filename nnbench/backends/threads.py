"""The default backend: threads of the runner, each supervising one run process at a time.

The runs still execute in processes (see :mod:`nnbench.isolation`); the
threads only start and watch them, so this is the lightest way to keep
``-j`` runs going on one machine.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from nnbench.backends import Backend


class ThreadBackend(Backend):
    name = "threading"
    summary = "threads of the runner supervise the run processes (one machine)"

    def __enter__(self) -> ThreadBackend:
        self._stop = threading.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            self.n_jobs, thread_name_prefix="nnbench-supervisor"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.track(self._pool.submit(fn, *args))

    def stop_check(self) -> Callable[[], bool]:
        return self._stop.is_set

    def stop(self) -> None:
        self._stop.set()
