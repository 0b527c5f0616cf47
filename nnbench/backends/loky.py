"""joblib's loky process pool: worker processes of the runner supervise the run processes.

That a worker stops its run and exits when the runner dies (even by SIGKILL)
is the seam's, not this backend's (:mod:`nnbench.isolation`): loky's pool
does not outlive the grid, as no pool does.

Workers ignore Ctrl-C, which a terminal sends to the whole process group:
stopping them is the runner's job (it kills them), and a worker interrupted
in loky's own code would print a traceback. They are started with SIGINT
blocked, so that it cannot reach them before their initializer ignores it.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from typing import Any

from nnbench.backends import Backend


def _ignore_ctrl_c() -> None:
    """A worker's initializer: SIGINT ignored, then unblocked (see the module's doc)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


class LokyBackend(Backend):
    name = "loky"
    summary = "joblib's loky worker processes supervise the run processes (one machine)"

    def __enter__(self) -> LokyBackend:
        from joblib.externals.loky import get_reusable_executor

        self._executor = get_reusable_executor(
            max_workers=self.n_jobs, reuse=False, initializer=_ignore_ctrl_c
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()
        self._executor.shutdown(wait=True)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Workers, and loky's threads that may start more later, are made here:
        # they inherit this thread's signal mask. A Ctrl-C meanwhile is not
        # lost: another thread of this process takes it, or it waits.
        masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return self.track(self._executor.submit(fn, *args))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, masked)

    def stop(self) -> None:
        """Kill the workers and every process they started (runs' processes, the
        fork server); loky's pool then finds itself broken and winds down.

        Not ``shutdown(kill_workers=True)``: loky's manager thread then drops
        the queued work before taking its ids off the queue, and dies printing
        a ``KeyError`` traceback when runs are still waiting for a worker.
        """
        from joblib.externals.loky.backend.utils import kill_process_tree

        workers = getattr(self._executor, "_processes", None)
        if workers is None:  # a loky without that attribute: its own way
            self._executor.shutdown(wait=False, kill_workers=True)
            return
        for worker in list(workers.values()):
            with contextlib.suppress(ProcessLookupError):
                kill_process_tree(worker)
