"""What the fork server that starts the runs' processes imports first (its
preload; nothing else imports this module).

Ctrl-C at a terminal signals the whole foreground process group, run
processes included. Stopping runs is the runner's job, through their
supervisors; a run's process interrupted while it is still starting would
print multiprocessing's traceback instead. The fork server gives each child
the signal handlers it had before it set its own, so ignoring SIGINT here
makes every run's process ignore it from its first instruction. (The server
itself starts with SIGINT blocked, see ``isolation._start_server``, so that
Ctrl-C cannot reach it before this line either.)

The same stop can kill a supervisor (a loky worker, say) between asking the
server for a process and handing that process its run. The new process then
reads the end of its pipe, has nothing to do and nobody to report to; it
exits with status 1 without printing multiprocessing's traceback for it.
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: the imports below take a while

import pickle  # noqa: E402
import sys  # noqa: E402
import types  # noqa: E402

import nnbench.run_process  # noqa: E402, F401  (what every run imports, loaded once here)


def _abandoned(exc: BaseException, tb: types.TracebackType | None) -> bool:
    """True when the exception says the process that asked for this one went
    away before handing over its work: the pipe ended, or ended half-way,
    while multiprocessing's start-up code read from it."""
    if not isinstance(exc, EOFError | pickle.UnpicklingError) or tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    code = tb.tb_frame.f_code
    return code.co_name == "_main" and code.co_filename.endswith("spawn.py")


def _excepthook(
    kind: type[BaseException], exc: BaseException, tb: types.TracebackType | None
) -> None:
    if not _abandoned(exc, tb):
        _default_hook(kind, exc, tb)


_default_hook = sys.excepthook
sys.excepthook = _excepthook

# Every run's process is forked from this server: with its objects frozen, the
# garbage collector of a run never walks (and so never copies, page by page)
# the tens of megabytes the imports above built, which cost each run tens of
# milliseconds of CPU (benchmarks/run_overhead.py measures it).
import gc  # noqa: E402

gc.freeze()
