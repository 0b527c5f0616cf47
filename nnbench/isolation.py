"""Every run in a process of its own, watched: nothing a run does can reach the grid.

:func:`supervise` is what every execution backend runs, one call per run. It
starts a fresh process for the run (forked from a server process that has
already imported numpy, scipy and nnbench, so a start costs milliseconds),
waits for its result, and turns every other end into a ``failed`` result
that names the cause:

- an exception of any kind, ``SystemExit`` and ``KeyboardInterrupt``
  included, raised by the run (caught in the run's process);
- the process exiting without a result, or killed by a signal (a crash in
  native code, the out-of-memory killer), or whose status the fork server lost
  (255): tried once more in a new process, since a signal may have come from
  outside, then recorded;
- a hang: no step for ``hang_seconds``; the process is killed.

The run's process ignores Ctrl-C (the runner handles it and stops the runs)
and watches a pipe from its supervisor: when the supervisor dies, even by
SIGKILL, the pipe closes and the run's process exits. The supervisor in turn
watches the runner (the process that made the task, when it runs on the same
machine): when the runner is gone, even by SIGKILL, it kills the run and
returns. Both live here, behind the backend seam, so every backend inherits
them, a plugin's as much as the built-ins': no run outlives its grid.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.spawn
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nnbench.status import Status

POLL_SECONDS = 0.1  # how often the supervisor looks at its run: Ctrl-C reacts within this
KILL_GRACE_SECONDS = 2.0  # after SIGTERM, before SIGKILL
EXIT_ORPHANED = 70  # the run's process exits with this when its supervisor is gone
# What a signal that ended a run's process usually means.
_SIGNAL_CAUSES = {
    signal.SIGSEGV: "a crash in native code",
    signal.SIGBUS: "a crash in native code",
    signal.SIGILL: "a crash in native code",
    signal.SIGABRT: "an abort in native code",
    signal.SIGFPE: "a floating-point trap in native code",
    signal.SIGKILL: "killed from outside, or by the out-of-memory killer",
    signal.SIGTERM: "terminated from outside",
}

_context: Any = None
_starting = threading.local()  # set while this thread starts a run's process


def _preparation_data(name: str) -> dict[str, Any]:
    """multiprocessing's data for a new process, without the main module when a
    run's process is started: its target lives in nnbench, so the caller's
    script need not be re-run in the child (a script that starts a grid at
    import, with no ``if __name__ == "__main__":``, would otherwise start one
    in every run's process)."""
    data = _original_preparation_data(name)
    if getattr(_starting, "run", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


_original_preparation_data = multiprocessing.spawn.get_preparation_data


def _install() -> None:
    """Wrap multiprocessing's preparation data, once, when the first run's process
    is started (never at import): the wrapper changes nothing for processes
    other code starts, only for the runs' (a thread-local flag)."""
    if multiprocessing.spawn.get_preparation_data is not _preparation_data:
        multiprocessing.spawn.get_preparation_data = _preparation_data


@dataclass(frozen=True)
class RunTask:
    """What a supervisor needs: the run (as its spec's dict), the data, the limits,
    and who asked (the runner's host and process id: the supervisor stops the
    run when that process is gone)."""

    run_id: str
    spec: dict[str, Any] | list[dict[str, Any]]  # a list: a stack (nnbench.stack)
    shared: Any  # nnbench.data.shared.SharedData
    threads: int
    hang_seconds: float
    runner: tuple[str, int] = field(default_factory=lambda: (socket.gethostname(), os.getpid()))
    stop_file: str | None = None  # the runner creates it to stop every run
    # a stack whose optimizer's stacked update is not yet trusted: one member is
    # also run alone, and the stack's results are kept only if it matches
    verify: bool = False


def runner_gone(task: RunTask) -> bool:
    """Whether the runner that made ``task`` has died or asked every run to stop
    (on its machine: elsewhere, a cluster's scheduler says when to stop)."""
    host, pid = task.runner
    if host != socket.gethostname():
        return False
    if task.stop_file is not None and os.path.exists(task.stop_file):
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's: not ours, but not gone
        return False
    return False


_server_lock = threading.Lock()
# The BLAS libraries' thread counts as their libraries read them at load: the
# fork server loads them with one thread, so that a run's process starts with no
# thread pool to rebuild after the fork (tens of milliseconds of CPU a run); a
# run with more threads asks for them (threadpoolctl grows the pool).
_SINGLE_THREADED = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
_ENV_KEYS = ("PYTHONPATH", "PYTHONSAFEPATH", *_SINGLE_THREADED)
_SAVED_ENV = "_NNBENCH_SAVED_ENV"


def _mp_context() -> Any:
    """The forkserver context, its server preloaded with what a run imports."""
    global _context
    with _server_lock:
        _install()
        if _context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["nnbench.forkserver_init"])
            _start_server()
            _context = ctx
    return _context


def _start_server() -> None:
    """Start multiprocessing's fork server importing nnbench from where this process does.

    The server is a ``python -c`` process: Python puts its working folder
    first on its path, and Python 3.11's server ignores the path it is given,
    so a folder holding another ``nnbench`` (a source tree, say) would be the
    one its runs import. It is started with this process's path instead, and
    ``PYTHONSAFEPATH`` (nothing put first); a run's process restores the
    variables (see :func:`_restore_environment`).
    """
    from multiprocessing import forkserver, resource_tracker

    saved = {k: os.environ.get(k) for k in _ENV_KEYS}
    path = [os.getcwd() if p == "" else p for p in sys.path]
    # The server inherits this thread's signal mask: with SIGINT blocked, a
    # Ctrl-C while it starts cannot interrupt it (this process gets the signal
    # once it is unblocked; other threads get it meanwhile). The resource
    # tracker is started first: starting it unblocks SIGINT on its way out.
    resource_tracker.ensure_running()
    masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        os.environ["PYTHONPATH"] = os.pathsep.join(path)
        os.environ["PYTHONSAFEPATH"] = "1"
        os.environ.update(dict.fromkeys(_SINGLE_THREADED, "1"))
        os.environ[_SAVED_ENV] = json.dumps(saved)
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, masked)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        os.environ.pop(_SAVED_ENV, None)


def _restore_environment() -> None:
    """The environment of the process that started the runs, in a run's process."""
    saved = os.environ.pop(_SAVED_ENV, None)
    if saved is None:
        return
    for key, value in json.loads(saved).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _run_process(task: RunTask, result_w: Any, lifeline_r: Any, beat: Any) -> None:
    """The body of a run's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    _restore_environment()

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            lifeline_r.recv()
        os._exit(EXIT_ORPHANED)  # the supervisor is gone: so is the grid

    threading.Thread(target=watch, daemon=True).start()
    from nnbench.run_process import execute, execute_stack

    def heartbeat(iteration: int) -> None:
        beat.value = iteration

    try:
        if isinstance(task.spec, list):
            out = execute_stack(task.spec, task.shared, task.threads, heartbeat, task.verify)
        else:
            out = execute(task.spec, task.shared, task.threads, heartbeat)
        result_w.send(out)
    except BaseException:  # sending failed: the supervisor reports the exit
        os._exit(1)
    # exit at once: no waiting for threads a plugin left behind, no atexit hooks
    os._exit(0)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return f"signal {code}"


FORKSERVER_LOST = 255  # multiprocessing.popen_forkserver's returncode when the status was lost


def supervise(task: RunTask, stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Run ``task`` in a process of its own; its result, or a failed one naming the cause.

    ``stop()`` is polled: when it returns True (the grid is being stopped),
    the run's process is killed and the result has ``"status": None``
    (nothing to record).
    """
    _outlive_no_runner(task)
    first = _attempt(task, stop)
    if first.get("retry"):
        second = _attempt(task, stop)
        if second.get("retry"):
            again = (
                "twice" if second["message"] == first["message"] else f"then {second['message']}"
            )
            second["message"] = f"{first['message']}; tried again: {again}"
        return _final(second)
    return _final(first)


_guarded: set[tuple[str, int]] = set()
_guard_lock = threading.Lock()


def _outlive_no_runner(task: RunTask) -> None:
    """In a process that supervises runs for a runner elsewhere on this machine (a
    pool's worker, whatever the pool), a watchdog that ends the process when
    that runner is gone: idle or busy, a worker never outlives its grid."""
    host, pid = task.runner
    if host != socket.gethostname() or pid == os.getpid():
        return
    with _guard_lock:
        if task.runner in _guarded:
            return
        _guarded.add(task.runner)

    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(EXIT_ORPHANED)
            except PermissionError:
                pass
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="nnbench-runner-watch").start()


def _final(out: dict[str, Any]) -> dict[str, Any]:
    out.pop("retry", None)
    return out


def _failed(task: RunTask, message: str, retry: bool = False) -> dict[str, Any]:
    return {
        "run_id": task.run_id,
        "rows": [],
        "blas": [],
        "diagnostics": {},
        "status": Status.FAILED.value,
        "message": message,
        "retry": retry,
    }


def _attempt(task: RunTask, stop: Callable[[], bool] | None) -> dict[str, Any]:
    """One process for the run: its result, or a failed or stopped one."""
    ctx = _mp_context()
    _allow_children()
    result_r, result_w = ctx.Pipe(duplex=False)
    lifeline_r, lifeline_w = ctx.Pipe(duplex=False)
    beat = ctx.RawValue("q", 0)
    proc = ctx.Process(target=_run_process, args=(task, result_w, lifeline_r, beat))
    _starting.run = True
    try:
        proc.start()
    except OSError as exc:  # no process could be made (a process limit, no memory)
        for conn in (result_r, result_w, lifeline_r, lifeline_w):
            conn.close()
        return _failed(
            task, f"could not start a process for the run ({exc}); lower -j", retry=False
        )
    finally:
        _starting.run = False
    result_w.close()
    lifeline_r.close()
    try:
        out = _watch(task, proc, result_r, beat, stop)
    finally:
        if proc.is_alive():
            _kill(proc)
        proc.join()
        result_r.close()
        lifeline_w.close()  # the run's process is gone by now; this only frees the pipe
    if out is not None:
        return out
    code = proc.exitcode
    if code is not None and code < 0:
        name = _signal_name(-code)
        cause = _SIGNAL_CAUSES.get(-code, "")
        return _failed(
            task,
            f"the process running it was killed by {name}" + (f" ({cause})" if cause else ""),
            retry=True,
        )
    if code == FORKSERVER_LOST:
        # multiprocessing's fork server says 255 when it could not pass the status on
        # (a process that ends at once can race its own registration): a crash of
        # unknown kind, so it is tried once more, as a signal would be
        return _failed(
            task,
            "the process running it ended and the fork server lost its exit status (255)",
            retry=True,
        )
    return _failed(task, f"the process running it exited with status {code} before finishing")


def _allow_children() -> None:
    """Let this process start the run's process, whatever started this one."""
    if multiprocessing.get_start_method(allow_none=True) not in (
        None,
        "fork",
        "spawn",
        "forkserver",
    ):
        # Inside joblib's loky workers the default method is "loky", which a
        # forkserver child cannot set up (it re-applies its parent's default).
        multiprocessing.set_start_method("forkserver", force=True)
    me = multiprocessing.current_process()
    if me.daemon:
        # Dask's workers are daemonic processes, which multiprocessing forbids
        # to have children lest they outlive them. Ours cannot: the run's
        # process exits when its lifeline from this process closes.
        me.daemon = False


def _watch(
    task: RunTask, proc: Any, result_r: Any, beat: Any, stop: Callable[[], bool] | None
) -> dict[str, Any] | None:
    """Wait for the run's result; None when its process ended without one. Stop
    (killing it) when ``stop()`` says so, or when it makes no step for
    ``hang_seconds``."""
    seen, seen_at = -1, time.monotonic()
    while True:
        if result_r.poll(POLL_SECONDS):
            try:
                return result_r.recv()
            except (EOFError, OSError):
                return None  # it exited without a result: its exit code says why
        if not proc.is_alive():
            if result_r.poll(0):
                continue  # its result arrived as it exited
            return None
        if (stop is not None and stop()) or runner_gone(task):
            _kill(proc)
            return {"run_id": task.run_id, "status": None, "message": "stopped"}
        now = time.monotonic()
        if beat.value != seen:
            seen, seen_at = beat.value, now
        elif now - seen_at > task.hang_seconds:
            _kill(proc)
            return _failed(
                task,
                f"hung: no step for {task.hang_seconds:g} s (after iteration {seen}); "
                "the process was killed",
            )


def _kill(proc: Any) -> None:
    proc.terminate()
    proc.join(KILL_GRACE_SECONDS)
    if proc.is_alive():
        proc.kill()
        proc.join()
