"""Dask: workers of a local cluster, or of a cluster of machines, supervise the run processes.

Without ``--scheduler`` a local cluster of ``-j`` worker processes is started
for the grid. With it, the grid goes to a running scheduler
(``dask scheduler`` on one machine, ``dask worker tcp://HOST:8786`` on each),
whose workers need nnbench installed and the data in their cache. Dask's own
futures are used rather than joblib's Dask backend: a future says which run
a lost worker was running, so that run alone is retried or recorded.
"""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from nnbench.backends import Backend
from nnbench.errors import ConfigError, NnbenchError

SCHEDULER_TIMEOUT = 10.0  # seconds to reach a scheduler, handshake included
STOP_POLL_SECONDS = 1.0  # how often a supervisor asks the scheduler whether to stop


class _StopEvent:
    """A stop check for a Dask worker, asked at most once a second: True once
    the task is no longer wanted (the runner cancelled it, or died and its
    futures were released), the grid's stop ``Event`` is set, or the
    scheduler is gone."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._asked = 0.0
        self._set = False

    def __call__(self) -> bool:
        now = time.monotonic()
        if self._set or now - self._asked < STOP_POLL_SECONDS:
            return self._set
        self._asked = now
        try:
            from distributed import Event, get_client, get_worker

            worker = get_worker()
            task = worker.state.tasks.get(worker.get_current_task())
            released = task is None or task.state in ("cancelled", "released", "forgotten")
            self._set = released or Event(self.name, client=get_client()).is_set()
        except Exception:  # the scheduler is gone: so is the grid
            self._set = True
        return self._set

    def __getstate__(self) -> dict:
        return {"name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"])


PROBE_SECONDS = 3.0  # a Dask scheduler greets a new connection at once


def _probe(address: str, timeout: float) -> None:
    """Check that something at a ``tcp://`` address speaks Dask's protocol.

    A Dask server writes its handshake as soon as a connection opens: a
    frame count and frame sizes (8-byte little-endian integers) then the
    frames. A web server waits for a request instead, and other servers send
    other bytes; either is reported at once, without waiting on Dask's
    client. Other schemes (tls://, inproc://) are left to the client.
    """
    if not address.startswith("tcp://"):
        return
    host, _, port = address[len("tcp://") :].rpartition(":")
    hint = "check the address (tcp://HOST:8786) and that a Dask scheduler is running there"
    try:
        sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
    except (OSError, ValueError) as exc:
        raise NnbenchError(f"cannot reach a Dask scheduler at {address} ({exc}); {hint}") from None
    with sock:
        sock.settimeout(PROBE_SECONDS)
        try:
            head = sock.recv(16)
        except OSError:
            head = b""
    n_frames = int.from_bytes(head[:8], "little") if len(head) >= 8 else 0
    if not 1 <= n_frames <= 64:
        seen = "nothing" if not head else f"{len(head)} bytes of something else"
        raise NnbenchError(
            f"{address} does not answer as a Dask scheduler (it sent {seen} within "
            f"{PROBE_SECONDS:g} s); {hint}"
        )


_ADDRESS = re.compile(
    r"(?:(?P<scheme>[a-z]+)://)?(?P<host>\[[0-9a-fA-F:.]+\]|[^\s/:\[\]]+):(?P<port>[0-9]{1,5})"
)


_NETWORK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def _address(address: str) -> str:
    """``address`` as Dask's client takes it, ``tcp://`` by default; anything
    that is not ``[SCHEME://]HOST:PORT`` (or an ``inproc://`` address) is a
    clear error before any connection (a half-made client would stall the
    exit for 20 s, closing itself)."""
    if address.startswith("inproc://"):  # a cluster in this process (from Python)
        return address
    match = _ADDRESS.fullmatch(address.strip())
    if (
        not match
        or (match["scheme"] or "tcp") not in _NETWORK_SCHEMES
        or not 0 < int(match["port"]) < 65536
    ):
        raise NnbenchError(
            f"--scheduler must be a Dask scheduler's address, such as tcp://HOST:8786; "
            f"got {address!r}"
        )
    scheme = match["scheme"] or "tcp"
    return f"{scheme}://{match['host']}:{match['port']}"


def _connect(address: str, timeout: float) -> Any:
    """A Client of the scheduler at ``address``, or one clear error within ``timeout``.

    The connection is made in a thread that is abandoned at the deadline: a
    server that accepts the connection and never speaks Dask's protocol
    (a web server, say) would otherwise hold the handshake forever.
    """
    from distributed import Client

    _probe(address, timeout)
    box: dict[str, Any] = {}

    def connect() -> None:
        try:
            box["client"] = Client(address, timeout=timeout, set_as_default=False)
        except BaseException as exc:  # reported below, whatever it is
            box["error"] = f"{type(exc).__name__}: {exc}"  # text only: no frames kept alive

    thread = threading.Thread(target=connect, daemon=True, name="nnbench-dask-connect")
    thread.start()
    thread.join(timeout + 2.0)
    hint = "check the address (tcp://HOST:8786) and that a Dask scheduler is running there"
    if "client" in box:
        return box["client"]
    if "error" in box:
        raise NnbenchError(f"cannot reach a Dask scheduler at {address} ({box['error']}); {hint}")
    raise NnbenchError(
        f"no Dask scheduler answered at {address} within {timeout:g} s; {hint}"
    ) from None


@contextlib.contextmanager
def _sigint_ignored() -> Any:
    """SIGINT ignored while processes are started: they inherit it, and a Python
    that starts with SIGINT ignored installs no KeyboardInterrupt handler, so a
    Ctrl-C reaches the runner alone (which stops the grid) instead of every
    worker printing its traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_LOGGERS = ("distributed", "tornado")


@contextlib.contextmanager
def _log_level(level: int) -> Any:
    """Dask's and tornado's loggers at ``level`` inside the block, as they were after."""
    loggers = [logging.getLogger(name) for name in _LOGGERS]
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(level)
    try:
        yield
    finally:
        for logger, old in zip(loggers, previous, strict=True):
            logger.setLevel(old)


class DaskBackend(Backend):
    name = "dask"
    summary = "Dask workers supervise the run processes: a local cluster, or --scheduler"
    takes_scheduler = True

    def __init__(self, n_jobs: int, scheduler: str | None = None) -> None:
        # checked here, before any data is prepared or anything started
        super().__init__(n_jobs, _address(scheduler) if scheduler else None)

    def __enter__(self) -> DaskBackend:
        try:
            import distributed
        except ImportError:
            raise ConfigError(
                "--backend dask needs Dask's distributed: pip install 'nnbench[dask]'"
            ) from None
        self._stack = contextlib.ExitStack()
        # Dask's own logging would print connection chatter through every grid
        self._stack.enter_context(_log_level(logging.ERROR))
        try:
            if self.scheduler:
                self.client = self._stack.enter_context(_connect(self.scheduler, SCHEDULER_TIMEOUT))
                self.where = f"dask scheduler {self.scheduler}"
            else:
                with _sigint_ignored():  # inherited: Ctrl-C is the runner's to handle
                    cluster = self._stack.enter_context(
                        distributed.LocalCluster(
                            n_workers=self.n_jobs,
                            threads_per_worker=1,
                            processes=True,
                            dashboard_address=None,
                            # its scheduler serves HTTP even so, on port 8787
                            # unless told: a free loopback port, no clash warning
                            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                            silence_logs=logging.ERROR,
                        )
                    )
                self.client = self._stack.enter_context(
                    distributed.Client(cluster, set_as_default=False)
                )
                self.where = "local dask cluster"
            self._event_name = f"nnbench-stop-{uuid.uuid4().hex}"
            self._event = distributed.Event(self._event_name, client=self.client)
        except BaseException:
            self._stack.close()
            raise
        self._futures: list[Any] = []
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()
        # and its shutdown, after a cancel, logs the comms it finds closed as
        # CRITICAL with a traceback: nothing the user can act on. (The stack
        # puts the levels back as they were before the backend, last.)
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        self._stack.close()

    def describe(self) -> str:
        n = len(self.client.scheduler_info().get("workers", {}))
        return f"{self.where}, {n} worker{'s' if n != 1 else ''}"

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        future = self.client.submit(fn, *args, pure=False, retries=0)
        self._futures.append(future)
        return self.track(future)

    def capacity(self) -> int:
        workers = self.client.scheduler_info().get("workers", {})
        return max(1, sum(w.get("nthreads", 1) for w in workers.values()))

    def stop_check(self) -> Callable[[], bool]:
        return _StopEvent(self._event_name)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._event.set()
        with contextlib.suppress(Exception):
            self.client.cancel(self._futures)
