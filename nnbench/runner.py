"""Run lists of runs: resume where they stopped, dispatch, record every end.

A study (:mod:`nnbench.study`: a grid, or the tuning protocol's phases)
hands its runs to a :class:`Session`, the one entry point here; the runner
knows nothing of tuning.

- The data are shared first (``.npy`` files in the cache, memory-mapped by
  every run), so a damaged data file is reported before anything is written.
- Runs go to an execution backend (:mod:`nnbench.backends`), which hands
  each to :func:`nnbench.isolation.supervise`: every run executes in a
  process of its own, and whatever it does (raise, exit, crash, hang) comes
  back as a status. A supervisor lost with its worker is tried once more.
- A tuning study's trials that differ only in their optimizer's numbers
  (same optimizer, cell and seed) go as one task, a stack
  (:mod:`nnbench.stack`): one process trains them together, each member
  bit for bit as alone, each recorded as its own run. A stack that fails as
  a whole is not a result: its runs go again, alone. ``Execution(stack=False)``
  (``--no-stack``) runs every trial alone.
- Each result is written at once, atomically, by this process. A result
  already final is never replaced by a failed one, ``--force`` or not.
- Ctrl-C and SIGTERM stop the grid: the runs under way are killed (and
  not recorded), every finished run is kept, no process is left behind.
- A lock keeps a second runner off the same results folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import itertools
import json
import os
import signal
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnbench import backends, ownership, provenance, results, settings
from nnbench import data as data_mod
from nnbench.errors import NnbenchError
from nnbench.eta import TimeLeft
from nnbench.experiment import RunSpec
from nnbench.fileio import open_lock_file
from nnbench.isolation import RunTask, supervise
from nnbench.layout import n_params_of
from nnbench.status import Status
from nnbench.train import resolve_batch_size

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


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """While inside, a SIGTERM waits: on leaving it is delivered again, to
    whatever handled it before (:func:`sigterm_stops`: :class:`Terminated`), so
    that what is under way inside (a stack's results being written) ends first."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
    if received:
        signal.raise_signal(signal.SIGTERM)


# -- the session: a folder, a backend, runs ------------------------------------------------


@dataclass(frozen=True)
class Execution:
    """How runs are executed.

    ``n_jobs``: runs at once (workers of a local Dask cluster). ``backend``: what
    dispatches them (:func:`nnbench.backends.available`); ``scheduler``: the
    address of a running Dask scheduler. ``threads``: BLAS threads per run,
    fixed rather than derived from ``n_jobs`` because the thread count
    changes floating-point summation order: with it fixed, ``-j 1`` and
    ``-j 2`` give bitwise-identical metrics. ``data_dir``: the data cache.
    ``log``: where progress lines go (None: nowhere). ``stack``: train a
    tuning study's trials in stacks (:func:`stacks`); their seconds are then
    the stack's, not each run's.
    """

    n_jobs: int = 1
    backend: str = backends.DEFAULT
    scheduler: str | None = None
    threads: int = 1
    data_dir: str | Path | None = None
    log: Callable[[str], None] | None = print
    progress_bar: bool = False
    stack: bool = True


class Session:
    """A results folder claimed for an owner, with a backend running: the one
    way runs are executed (a study runs each of its phases through one).

    ::

        with Session(out, owner, execution, specs) as session:
            session.run(specs)

    Entering checks everything that can go wrong before anything is written,
    in this order: the execution settings, the data (shared once, for every
    dataset ``specs`` need), the backend (a cluster that cannot be reached),
    the folder (its lock, its owner). Ctrl-C and SIGTERM end the session:
    the runs under way are killed (and not recorded), every finished run is
    kept, and ``summary`` says so; they are not raised.
    """

    def __init__(
        self,
        out: str | Path,
        owner: Mapping[str, Any],
        execution: Execution,
        specs: Sequence[RunSpec],
        merge: bool = False,
        force: bool = False,
        n_runs: int | None = None,
    ) -> None:
        self.out = Path(out)
        self.owner = owner
        self.execution = execution
        self.merge = merge
        self.force = force
        self.summary = GridSummary(self.out, len(specs) if n_runs is None else n_runs)
        self.say = execution.log or (lambda _msg: None)
        self._specs = specs
        self._stack = contextlib.ExitStack()
        # created to stop every run of the session, whatever supervises it (see
        # isolation.runner_gone): the seam's own stop, inherited by every backend
        self.stop_file = os.path.join(
            tempfile.gettempdir(), f"nnbench-stop-{os.getpid()}-{id(self):x}"
        )

    def __enter__(self) -> Session:
        ex = self.execution
        backends.check_jobs(ex.n_jobs, ex.threads)
        self.backend = backends.make(ex.backend, ex.n_jobs, ex.scheduler)
        # the data of the runs to do (none when every run is finished: a rerun of a
        # finished grid needs no dataset at hand)
        self.shared = share_data(self._unfinished(self._specs), ex.data_dir, self.say)
        self.stopped = False
        try:
            self._stack.enter_context(sigterm_stops())
            self._stack.enter_context(self.backend)
            self._stack.enter_context(results_lock(self.out))
            prepare_folder(self.out, self.owner, self.merge)
        except KeyboardInterrupt:  # Ctrl-C while a cluster starts, say: nothing runs
            self.__exit__(*sys.exc_info())
        except BaseException:
            self._stack.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        if self.stopped:
            return kind is None or issubclass(kind, KeyboardInterrupt)
        stopped = kind is not None and issubclass(kind, KeyboardInterrupt)
        if stopped:
            self.stopped = True
            self.summary.interrupted = True
            self.summary.terminated = issubclass(kind, Terminated)
        if kind is not None:
            with contextlib.suppress(OSError):
                open(self.stop_file, "w").close()  # every supervisor stops its run
        try:
            self._stack.__exit__(kind, exc, tb)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(self.stop_file)
        return stopped  # a stop is in the summary, not raised

    def _unfinished(self, specs: Sequence[RunSpec]) -> list[RunSpec]:
        """The specs not finished in the folder (all of them with ``force``)."""
        stored = results.stored_runs(self.out) if self.out.is_dir() else {}
        return [
            s
            for s in specs
            if self.force or not (s.run_id in stored and stored[s.run_id].status.is_final)
        ]

    def run(self, specs: Sequence[RunSpec]) -> None:
        """Run the specs not finished in the folder (all of them with ``force``), and
        record each as it ends. Nothing once the session was stopped."""
        if self.stopped:
            return
        stored = results.stored_runs(self.out)
        todo = self._unfinished(specs)
        self.summary.n_skipped += len(specs) - len(todo)
        if len(specs) - len(todo):
            self.say(
                f"{len(specs) - len(todo)} of {len(specs)} runs already finished; skipping them "
                "(--force reruns)"
            )
        if not todo:
            return
        missing = {data_key(s) for s in todo} - set(self.shared)
        self.shared.update(share_data([s for s in todo if data_key(s) in missing],
                                      self.execution.data_dir, self.say))  # fmt: skip
        # Longest first, so that the last runs to finish are short ones and no
        # worker idles at the end (order never changes a run's numbers).
        todo = sorted(todo, key=lambda s: _expected_cost(s, self.shared), reverse=True)
        ex = self.execution
        recorder = _Recorder(self.out, stored, self.summary, self.say, len(todo), ex.progress_bar,
                             TimeLeft({s.run_id: _expected_cost(s, self.shared) for s in todo},
                                      self.backend.n_jobs))  # fmt: skip
        groups = stacks(todo, self.shared) if ex.stack else [[s] for s in todo]
        groups.sort(key=lambda g: sum(_expected_cost(s, self.shared) for s in g), reverse=True)

        def make_task(group: list[RunSpec]) -> RunTask:
            return task_of(group, self.shared[data_key(group[0])], ex.threads, self.stop_file)

        tasks = {task.run_id: (task, group) for group in groups for task in [make_task(group)]}
        in_stacks = [g for g in groups if len(g) > 1]
        stacked = (
            f" ({sum(map(len, in_stacks))} trials in {len(in_stacks)} stacks)" if in_stacks else ""
        )
        self.say(
            f"running {len(todo)} runs{stacked} on {self.backend.describe()}, {ex.threads} BLAS "
            f"thread{'s' if ex.threads > 1 else ''} each -> {self.out}"
        )
        recorder.prov = dict(
            provenance.provenance(self.backend.n_jobs, self.backend.name),
            blas_threads_per_job=ex.threads,
        )
        try:
            _dispatch(self.backend, tasks, recorder, make_task)
        finally:
            recorder.close()
            self._check_data(recorder)

    def _check_data(self, recorder: _Recorder) -> None:
        """Runs whose shared data changed under them (a cache file overwritten in
        place while mapped) are no results: each is written again as failed, so that
        a resume reruns it on data shared anew (its checksums are checked then)."""
        from nnbench.data.shared import changed

        keys = {data_key(spec) for spec, _ in recorder.written}
        damaged = {k: why for k in keys for why in [changed(self.shared[k])] if why is not None}
        for key, why in damaged.items():
            hit = [(s, st) for s, st in recorder.written if data_key(s) == key and st.is_final]
            for spec, status in hit:
                message = f"its data changed while it trained ({why}); run again to rerun it"
                results.write_run(self.out, spec, [], Status.FAILED, message, recorder.prov)
                self.summary.statuses[status] -= 1
                self.summary.statuses[Status.FAILED] += 1
            self.summary.statuses = +self.summary.statuses  # no zero counts
            self.say(
                f"warning: the shared data in {self.shared[key].folder} changed during the "
                f"runs ({why}); the {len(hit)} runs trained on it are recorded as failed: "
                "run the same command again to rerun them"
            )


def run_specs(
    specs: Sequence[RunSpec],
    out: str | Path,
    owner: Mapping[str, Any],
    execution: Execution,
    force: bool = False,
) -> GridSummary:
    """Run a list of specs into ``out`` (claimed for ``owner``, an experiment as a
    dict) in one :class:`Session`: how ``nnbench baseline`` runs its variants."""
    with Session(out, owner, execution, specs, force=force) as session:
        session.run(specs)
    return session.summary


def task_of(
    spec: RunSpec | Sequence[RunSpec],
    shared: data_mod.SharedData,
    threads: int,
    stop_file: str | None = None,
) -> RunTask:
    """What a supervisor needs to run ``spec``: the run, its data, its limits
    (the ``control`` settings of the schema), and how the runner stops it.
    Several specs (of :func:`stacks`) make a stack's task; one makes a run's."""
    if isinstance(spec, RunSpec) or len(spec) == 1:
        one = spec if isinstance(spec, RunSpec) else spec[0]
        return RunTask(
            one.run_id, one.to_dict(), shared, threads, one.hang_seconds, stop_file=stop_file
        )
    from nnbench.run_process import stack_id

    return RunTask(
        stack_id(list(spec)),
        [s.to_dict() for s in spec],
        shared,
        threads,
        # a stack's steps and evaluations take about K times a run's: its watchdog
        # waits as much longer, or every stack would look hung where its runs are not
        max(s.hang_seconds for s in spec) * len(spec),
        stop_file=stop_file,
    )


def stacks(
    specs: Sequence[RunSpec], shared: Mapping[tuple, data_mod.SharedData] | None = None
) -> list[list[RunSpec]]:
    """The specs in groups that train together (:mod:`nnbench.stack`); a group of
    one trains alone.

    A stack holds trials of a tuning study (``phase = "trial"``: runs for
    choosing, whose seconds no report reads) of one optimizer with a
    vectorised step, whose settings are all the same (cell, seed, budget,
    data) and whose options differ in numbers only; at most
    :data:`nnbench.stack.MAX_STACK` of them, and (with the runs' ``shared``
    data, which sizes their networks and minibatches) no more than
    :func:`nnbench.stack.max_members` allows for their weights and activations.
    Runs timed by seconds (a budget or evaluation points in seconds) train alone."""
    from nnbench.stack import MAX_STACK, max_members

    groups: dict[str, list[RunSpec]] = {}
    alone: list[list[RunSpec]] = []
    for spec in specs:
        key = _stack_key(spec)
        if key is None:
            alone.append([spec])
        else:
            groups.setdefault(key, []).append(spec)
    out = list(alone)
    for group in groups.values():
        group.sort(key=lambda s: (s.trial if s.trial is not None else -1, s.run_id))
        size = MAX_STACK
        if shared is not None and data_key(group[0]) in shared:
            data = shared[data_key(group[0])]
            sizes = [data.n_features, *group[0].hidden, data.n_classes]
            size = max_members(n_params_of(sizes), _batch_rows(group[0], data), sizes[1:])
        out.extend(group[i : i + size] for i in range(0, len(group), size))
    return out


def _batch_rows(spec: RunSpec, data: Any) -> int | None:
    """The most rows a minibatch of ``spec`` holds (a growing batch: the whole
    training split); None when the split's rows cannot be read."""
    n_train = _split_rows(data).get("train") if hasattr(data, "load") else None
    if not n_train:
        return None
    if float(spec.values.get("batch_growth") or 1.0) > 1.0:
        return n_train
    try:
        return min(n_train, resolve_batch_size(spec.values["batch_size"], n_train))
    except (ValueError, TypeError, KeyError):
        return n_train


def _stack_kind(spec: RunSpec) -> str:
    """A stack's optimizer and its options other than numbers (which may select
    other code in its stacked update): what a check of that update covers."""
    from nnbench import optimizers
    from nnbench.options import FLOAT

    known = optimizers.get(spec.optimizer).options
    fixed = {
        k: v for k, v in spec.options.items() if k not in known or known[k].value_kind is not FLOAT
    }
    return json.dumps([spec.optimizer, fixed], sort_keys=True, default=str)


def _stack_key(spec: RunSpec) -> str | None:
    """What the members of a stack share (None: the spec trains alone): a tuning
    study's trial, every run setting, and the optimizer's options but its numbers
    (:func:`nnbench.optimizers.base.stack_signature`), in a loop a stack can run
    (:func:`nnbench.train.stackable`: not timed by seconds)."""
    from nnbench import optimizers
    from nnbench.optimizers.base import stack_signature
    from nnbench.train import LoopSettings, stackable

    if spec.phase != "trial":
        return None
    try:
        shared = stack_signature(optimizers.get(spec.optimizer), spec.options)
    except Exception:  # an unknown or broken plugin: its run reports that alone
        return None
    if shared is None or stackable(LoopSettings.from_values(spec.values)) is not None:
        return None
    return json.dumps(
        [spec.optimizer, shared, spec.to_dict()["values"], spec.phase], sort_keys=True, default=str
    )


def data_key(spec: RunSpec) -> tuple:
    """What selects a run's data: the ``source`` settings and its dtype (a table as
    its JSON, so that the key can key a dict)."""
    values = [spec.values[k] for k in settings.keys_of("source")]
    plain = [json.dumps(v, sort_keys=True) if isinstance(v, dict) else v for v in values]
    return (*plain, spec.dtype)


def prepare_folder(out: Path, experiment: Mapping[str, Any], merge: bool) -> None:
    """Claim the results folder for ``experiment`` (its dict) and clear a killed
    runner's leftovers."""
    try:
        results.clean_temporary(out)
        ownership.claim_folder(out, experiment, merge)
    except OSError as exc:
        raise NnbenchError(
            f"cannot write to the results folder {out}: {exc.strerror or exc}; "
            "give a writable folder with --out"
        ) from None


def share_data(
    specs: Sequence[RunSpec], data_dir: str | Path | None, say: Callable[[str], None]
) -> dict[tuple, data_mod.SharedData]:
    """Every dataset the specs need, in the dtypes they need, ready to memory-map."""
    by_key = {data_key(s): s for s in specs}
    return {
        key: data_mod.share_dataset(
            s.dataset, s.dtype, data_dir, s.path, say, options=s.values["data_options"]
        )
        for key, s in sorted(by_key.items(), key=lambda kv: str(kv[0]))
    }


def _dispatch(
    backend: backends.Backend,
    tasks: dict[str, tuple[RunTask, list[RunSpec]]],
    recorder: _Recorder,
    make_task: Callable[[list[RunSpec]], RunTask],
) -> None:
    """Keep twice the backend's capacity of tasks submitted; record each run as it ends.

    A future that raises lost its supervisor (a worker process killed from
    outside), not its run: the run is submitted once more, then recorded as
    failed. A stack that fails as a whole (or whose supervisor is lost twice)
    records nothing: its runs are submitted again, alone.

    A plugin's stacked update is checked before it is trusted: its stacks are
    verified (one member also run alone, :func:`nnbench.run_process.execute_stack`)
    until one matches; after a mismatch its stacks run as single runs.
    """
    from nnbench import optimizers

    stop = backend.stop_check()
    queue = list(tasks)
    pending: dict[Any, str] = {}
    lost: Counter = Counter()
    window = 2 * backend.capacity()
    # plugin settings (an optimizer and its options other than numbers: they may
    # select other code) whose stacked update matched their step alone, and not
    trusted: set[str] = set()
    untrusted: set[str] = set()

    def alone(specs: list[RunSpec]) -> None:
        for spec in reversed(specs):
            tasks[spec.run_id] = (make_task([spec]), [spec])
            queue.insert(0, spec.run_id)

    while queue or pending:
        while queue and len(pending) < window:
            task_id = queue.pop(0)
            task, specs = tasks[task_id]
            kind = _stack_kind(specs[0])
            if len(specs) > 1 and kind in untrusted:
                alone(specs)
                continue
            plugin = not optimizers.builtin(specs[0].optimizer)
            if len(specs) > 1 and plugin and kind not in trusted:
                task = dataclasses.replace(task, verify=True)
            pending[backend.submit(supervise, task, stop)] = task_id
        for future in backend.completed(WAIT_SECONDS):
            task_id = pending.pop(future)
            specs = tasks[task_id][1]
            try:
                out = future.result()
            except Exception as exc:
                lost[task_id] += 1
                if lost[task_id] < 2:
                    queue.insert(0, task_id)
                    continue
                out = {
                    "run_id": task_id,
                    "rows": [],
                    "status": Status.FAILED.value,
                    "message": f"the {backend.name} worker supervising it was lost twice "
                    f"({type(exc).__name__}: {exc})",
                }
            if len(specs) == 1:
                recorder.record(specs[0], out)
            elif out.get("status") is None:
                continue  # stopped: nothing to record
            elif "stack" in out:
                if out.get("verified"):
                    trusted.add(_stack_kind(specs[0]))
                by_id = {m.get("run_id"): m for m in out["stack"]}
                with sigterm_deferred():  # computed: every member is written before a stop
                    for spec in specs:
                        recorder.record(spec, by_id.get(spec.run_id, _missing(spec)))
            elif out.get("unverified"):
                untrusted.add(_stack_kind(specs[0]))
                recorder.say(f"warning: {out.get('message')}")
                alone(specs)
            else:
                recorder.say(
                    f"a stack of {len(specs)} trials failed ({out.get('message')}); "
                    "running them alone"
                )
                alone(specs)


def _run_seconds(res: dict[str, Any]) -> float | None:
    """A finished run's own seconds (training and evaluation; its share of its
    stack's), for the time left; None when it recorded none."""
    rows = res.get("rows") or []
    if not rows:
        return None
    last = rows[-1]
    if res.get("stack_size"):
        seconds = last.get("stack_seconds")
        return None if seconds is None else float(seconds) / int(res["stack_size"])
    parts = [last.get("train_seconds"), last.get("eval_seconds")]
    known = [float(p) for p in parts if p is not None and p == p]
    return sum(known) if known else None


def _missing(spec: RunSpec) -> dict[str, Any]:
    return {
        "run_id": spec.run_id,
        "rows": [],
        "status": Status.FAILED.value,
        "message": "its stack returned no result for it",
    }


def _expected_cost(spec: RunSpec, shared: dict) -> float:
    """A run's modelled work, in multiply-adds: the rows it trains on (a forward
    and a backward pass, about 3 forward passes; CG's and L-BFGS-B's line
    searches, about 25 evaluations a step) and the rows it evaluates, times the
    network's weights per row. For ordering (longest first) and for the time
    left, whose speed per unit of it comes from the runs that finished."""
    data = shared[data_key(spec)]
    sizes = [data.n_features, *spec.hidden, data.n_classes]
    per_row = sum(a * b for a, b in itertools.pairwise(sizes))
    per_step = 25 if spec.optimizer in ("cg", "lbfgsb") else 1  # scipy's line searches
    rows = _split_rows(data)
    n_train = rows.get("train", 1) or 1
    v = spec.values
    try:
        batch = resolve_batch_size(v["batch_size"], n_train)
    except (ValueError, TypeError):
        batch = n_train
    if v.get("max_epochs"):
        steps = float(v["max_epochs"]) * n_train / batch
    else:
        steps = float(v.get("max_iter") or v.get("max_grad_evals") or n_train / batch)
    every = v.get("every")
    if isinstance(every, (int, float)) and not isinstance(every, bool) and every > 0:
        points = steps / float(every) + 1
    else:
        points = float(v.get("points") or 20)
    train_rows = v.get("train_rows")
    if train_rows in (None, "all"):
        train_eval = float(n_train)
    elif isinstance(train_rows, (int, float)) and not isinstance(train_rows, bool):
        train_eval = float(min(train_rows, n_train))  # a sample, at most the split
    else:  # "running": the training cost is the minibatches' own, nothing evaluated
        train_eval = 0.0
    evaluated = train_eval + sum(n for s, n in rows.items() if s != "train")
    return float(per_row * (3.0 * steps * batch * per_step + points * evaluated))


def _split_rows(data: Any) -> dict[str, int]:
    """Rows of each split of a shared dataset, from its arrays' headers (memory-mapped,
    nothing read); empty when they cannot be read (the model then counts no rows).
    Read once per shared dataset: the cost model asks for every run of a grid."""
    try:
        return dict(_split_rows_of(data))
    except TypeError:  # not a SharedData (unhashable): read each time
        return dict(_read_split_rows(data))


def _read_split_rows(data: Any) -> tuple[tuple[str, int], ...]:
    try:
        return tuple((s, int(x.shape[0])) for s, (x, _) in data.load().items())
    except Exception:  # a dataset shared in another way: the model is for ordering only
        return ()


_split_rows_of = functools.lru_cache(maxsize=32)(_read_split_rows)


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
        left: TimeLeft | None = None,
    ) -> None:
        self.out, self.stored, self.summary, self.say = out, stored, summary, say
        self.n_todo, self.n_seen = n_todo, 0
        self.left = left or TimeLeft({})
        self.prov: dict[str, Any] = {}
        self.written: list[tuple[RunSpec, Status]] = []  # what this session recorded
        self.bar = None
        if progress_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=n_todo, unit="run", file=sys.stderr, dynamic_ncols=True)

    def record(self, spec: RunSpec, res: dict[str, Any]) -> None:
        if res.get("status") is None:
            return  # stopped by Ctrl-C: nothing to record
        status = Status(res["status"])
        self.n_seen += 1
        self.left.done(spec.run_id, _run_seconds(res))
        previous = self.stored.get(spec.run_id)
        if previous is not None and previous.status.outranks(status):
            self.summary.n_kept += 1  # never replace a result by a failure
            self.summary.statuses[status] += 1
            self._say(spec, res, status, kept=True)
            return
        prov = dict(self.prov, blas=res.get("blas", []))
        if res.get("stack_size"):
            prov["stack_size"] = res["stack_size"]  # trained in a stack of this many
        try:
            path = results.write_run(
                self.out, spec, res.get("rows", []), status, res.get("message", ""), prov,
                res.get("diagnostics", {}),
            )  # fmt: skip
            if (
                previous is not None
                and previous.path != path
                and results.named_by_nnbench(previous.path)
            ):
                previous.path.unlink(missing_ok=True)  # the same run, under an older name
        except OSError as exc:  # a full disk, a folder made read-only under us
            raise NnbenchError(
                f"cannot write results to {self.out}: {exc.strerror or exc}; the runs finished "
                "so far are kept: fix that and run the same command again"
            ) from None
        self.written.append((spec, status))
        self.summary.statuses[status] += 1
        self._say(spec, res, status)

    def _say(self, spec: RunSpec, res: dict[str, Any], status: Status, kept: bool = False) -> None:
        n_failed = self.summary.statuses[Status.FAILED]
        estimate = self.left.estimate() if self.n_seen < self.n_todo else None
        left = estimate.text() if estimate else ("done" if self.n_seen >= self.n_todo else "")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"failed {n_failed}" + (f", {left}" if left else ""))
            return
        rows = res.get("rows") or []
        acc = rows[-1].get("val_accuracy", float("nan")) if rows else float("nan")
        note = " (the earlier final result is kept)" if kept else ""
        self.say(
            f"[{self.n_seen}/{self.n_todo}] {spec.label} {spec.workload} hidden={spec.arch} "
            f"batch={spec.batch_size} seed={spec.seed}: {status}{note}, val acc {acc:.4f}; "
            f"failed {n_failed}" + (f"; {left}" if left else "")
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
