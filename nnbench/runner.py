"""Run an experiment's grid in parallel, safely, resuming where it stopped.

- Runs go to joblib workers (loky processes by default, or a Dask cluster);
  every worker memory-maps the same copy of the data and caps its BLAS
  threads so that jobs x threads never exceed the cores.
- Each finished run is written at once, atomically, by this process; a run
  that raises or diverges becomes a row with its status; a worker that dies
  is retried alone and, if it dies again, recorded as failed. Nothing stops
  the grid but Ctrl-C, which keeps every finished run.
- A lock keeps a second runner off the same results folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib

from nnbench import data as data_mod
from nnbench import results
from nnbench.errors import ConfigError, NnbenchError
from nnbench.grid import Experiment, RunSpec
from nnbench.train import FAILED, INTERRUPTED
from nnbench.worker import execute_run

BACKENDS = ("loky", "multiprocessing", "threading", "dask")
RUNNING = ".running"  # markers of runs under way, to find the one that killed a worker
SCHEDULER_TIMEOUT = "10s"  # how long to try reaching a Dask scheduler


@dataclass
class GridSummary:
    out_dir: Path
    n_runs: int
    n_skipped: int = 0
    statuses: Counter = field(default_factory=Counter)
    interrupted: bool = False

    @property
    def n_done(self) -> int:
        return sum(self.statuses.values())


# -- the lock --------------------------------------------------------------------------


@contextlib.contextmanager
def results_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.lock`` for the whole run; a second runner gets a clear error."""
    path = out_dir / ".lock"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fh = open(path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
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
            holder = fh.read().strip() or "unknown"
            raise NnbenchError(
                f"another nnbench run (pid {holder}) is writing to {out_dir}; wait for it "
                "to finish, or give this one another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        yield
    finally:
        fh.close()  # releases the lock


# -- backends --------------------------------------------------------------------------


def _check_backend(backend: str, scheduler: str | None) -> None:
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if scheduler and backend != "dask":
        raise ConfigError("--scheduler is for --backend dask")


@contextlib.contextmanager
def backend_context(backend: str, n_jobs: int, scheduler: str | None) -> Iterator[str]:
    """Configure joblib for ``backend``; for Dask, connect or start a local cluster."""
    _check_backend(backend, scheduler)
    if backend != "dask":
        with joblib.parallel_config(backend=backend):
            yield f"{backend} ({n_jobs} job{'s' if n_jobs > 1 else ''})"
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError(
            "--backend dask needs Dask's distributed: pip install 'nnbench[dask]'"
        ) from None
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout=SCHEDULER_TIMEOUT))
            except OSError as exc:
                raise NnbenchError(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc}); check the "
                    "address (tcp://HOST:8786) and that the scheduler is running"
                ) from None
            where = f"dask scheduler {scheduler}"
        else:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=None
                )
            )
            client = stack.enter_context(Client(cluster))
            where = f"local dask cluster ({n_jobs} workers)"
        with joblib.parallel_config(backend="dask"):
            yield f"{where}, {len(client.scheduler_info()['workers'])} workers"


# -- the grid --------------------------------------------------------------------------


def default_out_dir(experiment: Experiment) -> Path:
    return Path("results") / experiment.name


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    n_jobs: int = 1,
    force: bool = False,
    backend: str = "loky",
    scheduler: str | None = None,
    data_dir: str | Path | None = None,
    log: Callable[[str], None] | None = print,
    progress_bar: bool = False,
    threads: int = 1,
) -> GridSummary:
    """Run every unfinished run of ``experiment``; return what happened.

    Parameters
    ----------
    out_dir : path, optional
        Results folder (default ``results/<experiment name>``).
    n_jobs : int
        Parallel jobs (workers for a local Dask cluster).
    force : bool
        Rerun runs that are already finished.
    backend : {"loky", "multiprocessing", "threading", "dask"}
    scheduler : str, optional
        Address of a running Dask scheduler; without it ``backend="dask"``
        starts a local cluster for the run.
    threads : int
        BLAS threads per run, capped so that jobs x threads never exceed the
        cores. It is fixed rather than derived from ``n_jobs`` because the
        thread count changes floating-point summation order: with it fixed,
        ``-j 1`` and ``-j 2`` give bitwise-identical metrics.
    """
    for flag, value in (("-j/--jobs", n_jobs), ("--threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{flag} must be an integer >= 1; got {value!r}")
    _check_backend(backend, scheduler)  # before any data is fetched or file written
    out = Path(out_dir) if out_dir is not None else default_out_dir(experiment)
    say = log or (lambda _msg: None)
    specs = experiment.runs()
    summary = GridSummary(out, len(specs))
    # The data first: a missing or damaged data file is reported before the
    # results folder is touched (sharing is instant once done).
    datasets = {(s.dataset, s.data_path, s.dtype) for s in specs}
    shared = {
        key: data_mod.share_dataset(
            key[0], key[2], data_dir=data_dir, path=key[1], progress=lambda m: say(m)
        )
        for key in sorted(datasets, key=str)
    }
    with results_lock(out):
        markers = out / RUNNING
        try:
            results.clean_temporary(out)
            markers.mkdir(exist_ok=True)
            for stale in markers.iterdir():  # left by a runner that was killed
                stale.unlink()
            results.write_experiment(out, experiment.to_dict())
        except OSError as exc:
            raise NnbenchError(
                f"cannot write to the results folder {out}: {exc.strerror or exc}; "
                "give a writable folder with --out"
            ) from None
        done = results.finished_runs(out)
        todo = [s for s in specs if force or done.get(s.run_id) not in results.FINAL_STATUSES]
        summary.n_skipped = len(specs) - len(todo)
        if summary.n_skipped:
            say(
                f"{summary.n_skipped} of {len(specs)} runs already finished; "
                "skipping them (--force reruns)"
            )
        if not todo:
            return summary
        # Longest first, so that the last runs to finish are short ones and no
        # worker idles at the end (order never changes a run's numbers).
        todo.sort(key=_expected_cost, reverse=True)
        cap = max(1, (os.cpu_count() or 1) // n_jobs)
        if threads > cap:
            say(
                f"--threads {threads} with {n_jobs} jobs would oversubscribe "
                f"{os.cpu_count()} cores; using {cap}"
            )
            threads = cap
        with backend_context(backend, n_jobs, scheduler) as where:
            say(
                f"running {len(todo)} runs of {experiment.name!r} on {where}, "
                f"{threads} BLAS thread{'s' if threads > 1 else ''} each -> {out}"
            )
            prov = results.provenance(n_jobs, backend)
            prov["blas_threads_per_job"] = threads
            _run_all(
                todo, shared, threads, str(markers), n_jobs, out, prov, summary, say, progress_bar
            )
    return summary


def _expected_cost(spec: RunSpec) -> float:
    """A rough relative cost of a run, for ordering only."""
    sizes = [784, *spec.hidden, 10]  # the input width only scales every run alike
    per_row = sum(a * b for a, b in itertools.pairwise(sizes))
    per_step = 25 if spec.optimizer in ("cg", "lbfgsb") else 1  # scipy's line searches
    return float(per_row * per_step)


def _run_all(
    todo: list[RunSpec],
    shared: dict,
    threads: int,
    markers: str,
    n_jobs: int,
    out: Path,
    prov: dict[str, Any],
    summary: GridSummary,
    say: Callable[[str], None],
    bar_on: bool,
) -> None:
    bar = None
    if bar_on:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="run", file=sys.stderr, dynamic_ncols=True)
    by_id = {s.run_id: s for s in todo}
    started = time.perf_counter()

    def record(res: dict[str, Any]) -> None:
        spec = by_id[res["run_id"]]
        try:
            results.write_run(
                out, spec, res["rows"], res["status"], res["message"], dict(prov, blas=res["blas"])
            )
        except OSError as exc:  # a full disk, a folder made read-only under us
            raise NnbenchError(
                f"cannot write results to {out}: {exc.strerror or exc}; the runs finished "
                "so far are kept: fix that and run the same command again"
            ) from None
        del by_id[res["run_id"]]
        summary.statuses[res["status"]] += 1
        n_failed = summary.statuses[FAILED]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failed=n_failed, remaining=len(by_id))
        else:
            acc = res["rows"][-1]["val_accuracy"] if res["rows"] else float("nan")
            elapsed = time.perf_counter() - started
            eta = elapsed / summary.n_done * len(by_id)
            say(
                f"[{summary.n_done}/{len(todo)}] {spec.label} hidden={spec.arch} "
                f"batch={spec.batch_size} seed={spec.seed}: {res['status']}, "
                f"val acc {acc:.4f}; failed {n_failed}, remaining {len(by_id)}, "
                f"eta {eta:.0f} s"
            )
        if res["status"] == INTERRUPTED:  # Ctrl-C reached the run first (one job)
            raise KeyboardInterrupt

    def tasks(specs: list[RunSpec]) -> Any:
        return (
            joblib.delayed(execute_run)(
                s.to_dict(), shared[(s.dataset, s.data_path, s.dtype)], threads, markers
            )
            for s in specs
        )

    try:
        for _round in range(len(todo) + 1):  # each crash round settles at least one run
            pending = list(by_id.values())
            if not pending:
                break
            try:
                parallel = joblib.Parallel(n_jobs=n_jobs, return_as="generator_unordered")
                for res in parallel(tasks(pending)):
                    record(res)
            except (KeyboardInterrupt, NnbenchError):
                raise
            except Exception as exc:  # a worker died: find the run that killed it
                marked = {p.name for p in Path(markers).iterdir()}
                suspects = [s for s in by_id.values() if s.run_id in marked] or list(by_id.values())
                say(
                    f"a worker died ({type(exc).__name__}); retrying {len(suspects)} "
                    "run(s) that were under way, one at a time"
                )
                for spec in suspects:
                    (Path(markers) / spec.run_id).unlink(missing_ok=True)
                    _retry_alone(spec, tasks, record, exc, max(2, n_jobs))
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if bar is not None:
            bar.close()


def _retry_alone(
    spec: RunSpec, tasks: Callable, record: Callable, first: Exception, n_jobs: int
) -> None:
    """Run ``spec`` alone in a worker; if the worker dies again, record a failed run."""
    try:
        for res in joblib.Parallel(n_jobs=n_jobs)(tasks([spec])):
            record(res)
    except (KeyboardInterrupt, NnbenchError):
        raise
    except Exception as exc:
        record(
            {
                "run_id": spec.run_id,
                "rows": [],
                "status": FAILED,
                "blas": [],
                "message": f"the worker process running it died twice "
                f"({type(first).__name__}; then {type(exc).__name__}: {exc})",
            }
        )
