"""Run an experiment's grid: resume where it stopped, dispatch, record every end.

- The data are shared first (``.npy`` files in the cache, memory-mapped by
  every run), so a damaged data file is reported before anything is written.
- Runs go to an execution backend (:mod:`nnbench.backends`), which hands
  each to :func:`nnbench.isolation.supervise`: every run executes in a
  process of its own, and whatever it does (raise, exit, crash, hang) comes
  back as a status. A supervisor lost with its worker is tried once more.
- Each result is written at once, atomically, by this process. A result
  already final is never replaced by a failed one, ``--force`` or not.
- Ctrl-C and SIGTERM stop the grid: the runs under way are killed (and
  not recorded), every finished run is kept, no process is left behind.
- A lock keeps a second runner off the same results folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import sys
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnbench import backends, results
from nnbench import data as data_mod
from nnbench.errors import ConfigError, NnbenchError
from nnbench.fileio import open_lock_file
from nnbench.grid import Experiment, RunSpec
from nnbench.isolation import RunTask, supervise
from nnbench.status import Status

WAIT_SECONDS = 0.5  # the runner wakes at least this often, so Ctrl-C is never held up


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the grid stops and keeps what is finished."""


@dataclass
class GridSummary:
    out_dir: Path
    n_runs: int
    n_skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    n_kept: int = 0  # forced reruns that failed: the earlier, final result was kept
    interrupted: bool = False
    terminated: bool = False

    @property
    def n_done(self) -> int:
        return sum(self.statuses.values())


# -- the lock and signals ------------------------------------------------------------------


@contextlib.contextmanager
def results_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.lock`` for the whole run; a second runner gets a clear error."""
    path = out_dir / ".lock"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fh = open_lock_file(path)  # held open for the lock's lifetime
    except OSError as exc:
        raise NnbenchError(
            f"cannot write to the results folder {out_dir}: {exc.strerror or exc}; "
            "give a writable folder with --out"
        ) from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read(64).decode("ascii", "replace").strip() or "unknown"
            raise NnbenchError(
                f"another nnbench run (pid {holder}) is writing to {out_dir}; wait for it "
                "to finish, or give this one another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()).encode())
        fh.flush()
        yield
    finally:
        fh.close()  # releases the lock


@contextlib.contextmanager
def sigterm_stops() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- the grid ----------------------------------------------------------------------------


def default_out_dir(experiment: Experiment) -> Path:
    return Path("results") / experiment.name


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    n_jobs: int = 1,
    force: bool = False,
    backend: str = backends.DEFAULT,
    scheduler: str | None = None,
    data_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    progress_bar: bool = False,
    threads: int = 1,
    merge: bool = False,
) -> GridSummary:
    """Run every unfinished run of ``experiment``; return what happened.

    Parameters
    ----------
    out_dir : path, optional
        Results folder (default ``results/<experiment name>``).
    n_jobs : int
        Runs at once (workers of a local Dask cluster).
    force : bool
        Rerun runs that are already finished (a failed rerun keeps the earlier result).
    backend : str
        An execution backend (:func:`nnbench.backends.available`).
    scheduler : str, optional
        Address of a running Dask scheduler; without it ``backend="dask"``
        starts a local cluster for the run.
    threads : int
        BLAS threads per run. It is fixed rather than derived from ``n_jobs``
        because the thread count changes floating-point summation order:
        with it fixed, ``-j 1`` and ``-j 2`` give bitwise-identical metrics.
    merge : bool
        Let this experiment's runs join a folder another experiment owns.
    """
    out = _out_dir(experiment, out_dir)
    specs = experiment.runs()  # under [tune], the trials: the finals use the same data

    def body(work: Work) -> None:
        if experiment.tune is None:
            if not merge:
                _warn_of_other_configurations(work.out, specs)
            run_specs(specs, work)
        else:
            from nnbench import tune

            tune.run(experiment, work)

    execution = Execution(n_jobs, backend, scheduler, threads, data_dir, log, progress_bar)
    return execution.run(specs, out, experiment.to_dict(), merge, force, experiment.n_runs, body)


class OtherRunsWarning(UserWarning):
    """The results folder holds runs this experiment does not have."""


def _warn_of_other_configurations(out: Path, specs: Sequence[RunSpec]) -> None:
    """Say when the folder holds runs of configurations the experiment does not
    have (an earlier version of the file, with another budget say): tables and
    reports of the folder show them beside this experiment's."""
    mine = {s.config_id for s in specs}
    other = [r for r in results.stored_runs(out).values() if r.spec.config_id not in mine]
    if other:
        n_configs = len({r.spec.config_id for r in other})
        warnings.warn(
            f"{out} holds {len(other)} runs of {n_configs} configuration(s) this experiment "
            "does not have (from an earlier version of it?); its tables and report show "
            "them too: give a fresh --out to keep them apart",
            OtherRunsWarning,
            stacklevel=2,
        )


def run_spec_list(
    specs: Sequence[RunSpec],
    out_dir: str | Path,
    owner: Mapping[str, Any],
    n_jobs: int = 1,
    force: bool = False,
    backend: str = backends.DEFAULT,
    scheduler: str | None = None,
    data_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    threads: int = 1,
) -> GridSummary:
    """Run a list of specs into ``out_dir`` (claimed for ``owner``, an experiment
    as a dict), as :func:`run_experiment` runs a grid: how ``nnbench
    baseline`` runs the variants it measures rounding with."""
    execution = Execution(n_jobs, backend, scheduler, threads, data_dir, log, False)
    return execution.run(
        specs, Path(out_dir), owner, False, force, len(specs), lambda work: run_specs(specs, work)
    )


@dataclass
class Execution:
    """How runs are executed: jobs, backend, threads, data, output."""

    n_jobs: int
    backend: str
    scheduler: str | None
    threads: int
    data_dir: str | Path | None
    log: Callable[[str], None] | None
    progress_bar: bool

    def run(
        self,
        specs: Sequence[RunSpec],
        out: Path,
        owner: Mapping[str, Any],
        merge: bool,
        force: bool,
        n_runs: int,
        body: Callable[[Work], None],
    ) -> GridSummary:
        """Check, share the data, enter the backend, lock and claim the folder, then
        ``body(work)``; a stop by Ctrl-C or SIGTERM is recorded in the summary.

        The order of the work is the order of what can go wrong: the settings,
        the data, the backend (a cluster that cannot be reached), the results
        folder (a lock, an owner); nothing is written before the last of these.
        """
        backends.check_jobs(self.n_jobs, self.threads)
        backend_obj = backends.make(self.backend, self.n_jobs, self.scheduler)
        say = self.log or (lambda _msg: None)
        summary = GridSummary(out, n_runs)
        shared = share_data(specs, self.data_dir, say)
        work = Work(out, backend_obj, summary, force, shared, say, self.progress_bar, self.threads)
        try:
            with sigterm_stops(), backend_obj, results_lock(out):
                prepare_folder(out, owner, merge)
                body(work)
        except Terminated:
            summary.interrupted = summary.terminated = True
        except KeyboardInterrupt:
            summary.interrupted = True
        return summary


def _out_dir(experiment: Experiment, out_dir: str | Path | None) -> Path:
    if out_dir is None:
        return default_out_dir(experiment)
    if not str(out_dir).strip():
        raise ConfigError("--out must name a folder; got an empty path")
    return Path(out_dir)


def prepare_folder(out: Path, experiment: Mapping[str, Any], merge: bool) -> None:
    """Claim the results folder for ``experiment`` (its dict) and clear a killed
    runner's leftovers."""
    try:
        results.clean_temporary(out)
        results.claim_folder(out, experiment, merge)
    except OSError as exc:
        raise NnbenchError(
            f"cannot write to the results folder {out}: {exc.strerror or exc}; "
            "give a writable folder with --out"
        ) from None


def share_data(
    specs: Sequence[RunSpec], data_dir: str | Path | None, say: Callable[[str], None]
) -> dict[tuple, data_mod.SharedData]:
    """Every dataset the specs need, in the dtypes they need, ready to memory-map."""
    keys = sorted({(s.dataset, s.path, s.dtype) for s in specs}, key=str)
    return {
        key: data_mod.share_dataset(key[0], key[2], data_dir=data_dir, path=key[1], progress=say)
        for key in keys
    }


@dataclass
class Work:
    """Where and how a grid's runs go: what :func:`run_specs` needs besides the specs."""

    out: Path
    backend: backends.Backend
    summary: GridSummary
    force: bool
    shared: dict[tuple, data_mod.SharedData]
    say: Callable[[str], None]
    progress_bar: bool
    threads: int


def run_specs(specs: Sequence[RunSpec], work: Work) -> None:
    """Run the specs not finished in ``work.out`` (all with ``force``) and record them.

    The caller holds the folder's lock and has entered the backend.
    """
    stored = results.stored_runs(work.out)
    todo = [
        s
        for s in specs
        if work.force or not (s.run_id in stored and stored[s.run_id].status.is_final)
    ]
    work.summary.n_skipped += len(specs) - len(todo)
    if len(specs) - len(todo):
        work.say(
            f"{len(specs) - len(todo)} of {len(specs)} runs already finished; skipping them "
            "(--force reruns)"
        )
    if not todo:
        return
    # Longest first, so that the last runs to finish are short ones and no
    # worker idles at the end (order never changes a run's numbers).
    todo = sorted(todo, key=lambda s: _expected_cost(s, work.shared), reverse=True)
    recorder = _Recorder(work.out, stored, work.summary, work.say, len(todo), work.progress_bar)
    tasks = {
        s.run_id: RunTask(
            s.run_id,
            s.to_dict(),
            work.shared[(s.dataset, s.path, s.dtype)],
            work.threads,
            s.hang_seconds,
        )
        for s in todo
    }
    threads = work.threads
    work.say(
        f"running {len(todo)} runs on {work.backend.describe()}, {threads} BLAS "
        f"thread{'s' if threads > 1 else ''} each -> {work.out}"
    )
    recorder.prov = dict(
        results.provenance(work.backend.n_jobs, work.backend.name), blas_threads_per_job=threads
    )
    try:
        _dispatch(work.backend, tasks, {s.run_id: s for s in todo}, recorder)
    finally:
        recorder.close()


def _dispatch(
    backend: backends.Backend,
    tasks: dict[str, RunTask],
    by_id: dict[str, RunSpec],
    recorder: _Recorder,
) -> None:
    """Keep twice the backend's capacity of runs submitted; record each as it ends.

    A future that raises lost its supervisor (a worker process killed from
    outside), not its run: the run is submitted once more, then recorded as
    failed.
    """
    stop = backend.stop_check()
    queue = list(tasks)
    pending: dict[Any, str] = {}
    lost: Counter = Counter()
    window = 2 * backend.capacity()
    while queue or pending:
        while queue and len(pending) < window:
            run_id = queue.pop(0)
            pending[backend.submit(supervise, tasks[run_id], stop)] = run_id
        for future in backend.completed(WAIT_SECONDS):
            run_id = pending.pop(future)
            try:
                out = future.result()
            except Exception as exc:
                lost[run_id] += 1
                if lost[run_id] < 2:
                    queue.insert(0, run_id)
                    continue
                out = {
                    "run_id": run_id,
                    "rows": [],
                    "status": Status.FAILED.value,
                    "message": f"the {backend.name} worker supervising it was lost twice "
                    f"({type(exc).__name__}: {exc})",
                }
            recorder.record(by_id[run_id], out)


def _expected_cost(spec: RunSpec, shared: dict) -> float:
    """A rough relative cost of a run, for ordering only."""
    data = shared[(spec.dataset, spec.path, spec.dtype)]
    sizes = [data.n_features, *spec.hidden, data.n_classes]
    per_row = sum(a * b for a, b in itertools.pairwise(sizes))
    per_step = 25 if spec.optimizer in ("cg", "lbfgsb") else 1  # scipy's line searches
    return float(per_row * per_step)


class _Recorder:
    """Writes each result as it comes, and says how the grid is going."""

    def __init__(
        self,
        out: Path,
        stored: dict[str, results.StoredRun],
        summary: GridSummary,
        say: Callable[[str], None],
        n_todo: int,
        progress_bar: bool,
    ) -> None:
        self.out, self.stored, self.summary, self.say = out, stored, summary, say
        self.n_todo, self.n_seen = n_todo, 0
        self.prov: dict[str, Any] = {}
        self.started = time.perf_counter()
        self.bar = None
        if progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=n_todo, unit="run", file=sys.stderr, dynamic_ncols=True)

    def record(self, spec: RunSpec, res: dict[str, Any]) -> None:
        if res.get("status") is None:
            return  # stopped by Ctrl-C: nothing to record
        status = Status(res["status"])
        self.n_seen += 1
        previous = self.stored.get(spec.run_id)
        if previous is not None and previous.status.is_final and not status.is_final:
            self.summary.n_kept += 1  # never replace a result by a failure
            self.summary.statuses[status] += 1
            self._say(spec, res, status, kept=True)
            return
        try:
            path = results.write_run(
                self.out,
                spec,
                res.get("rows", []),
                status,
                res.get("message", ""),
                dict(self.prov, blas=res.get("blas", [])),
                res.get("diagnostics", {}),
            )
            if previous is not None and previous.path != path:
                previous.path.unlink(missing_ok=True)  # the same run, under an older name
        except OSError as exc:  # a full disk, a folder made read-only under us
            raise NnbenchError(
                f"cannot write results to {self.out}: {exc.strerror or exc}; the runs finished "
                "so far are kept: fix that and run the same command again"
            ) from None
        self.summary.statuses[status] += 1
        self._say(spec, res, status)

    def _say(self, spec: RunSpec, res: dict[str, Any], status: Status, kept: bool = False) -> None:
        n_failed = self.summary.statuses[Status.FAILED]
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(failed=n_failed)
            return
        rows = res.get("rows") or []
        acc = rows[-1].get("val_accuracy", float("nan")) if rows else float("nan")
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.n_seen * (self.n_todo - self.n_seen)
        note = " (the earlier final result is kept)" if kept else ""
        self.say(
            f"[{self.n_seen}/{self.n_todo}] {spec.label} hidden={spec.arch} "
            f"batch={spec.batch_size} seed={spec.seed}: {status}{note}, val acc {acc:.4f}; "
            f"failed {n_failed}, eta {eta:.0f} s"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
