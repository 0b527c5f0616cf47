"""The fault suite (slow tier): the same scenarios under every backend.

Backends: every one the registry knows (``nnbench.backends.available()``:
the built-ins ``threading``, ``loky`` and ``dask`` with a local cluster, and
plugins: the test plugin's ``procpool``, a process pool that codes no safety
of its own), and ``dask`` against a real ``dask scheduler`` and two ``dask
worker`` processes started on loopback. For each: every way a run can end
badly becomes a row naming the cause; Ctrl-C and SIGTERM stop the grid,
keep what is finished and leave no process behind; SIGKILL of the runner
leaves no process behind either, and the same command then completes the
grid with the numbers an uninterrupted grid gives; a run's process killed
from outside is tried again.
"""

import errno
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnbench import backends, experiment, results, runner, study
from nnbench.errors import NnbenchError

pytestmark = pytest.mark.slow

PLUGINS = str(Path(__file__).parent / "plugin_site")
BACKENDS = [*backends.available(), "dask-cluster"]  # a backend registered is fault-tested

FAULTS = """
name = "faults"
[data]
dataset = "digits"
[model]
hidden = [[16]]
[grid]
batch_size = [32]
seeds = [1]
[budget]
max_iter = 30
hang_seconds = 2
[[optimizer]]
name = "gd"
[[optimizer]]
name = "faulty"
fault = ["raise", "exit", "sysexit", "keyboard", "generatorexit", "segfault", "hang", "nan"]
"""

# Runs of about a second each (50 steps of 20 ms): long enough to be caught under
# way by a signal, short enough for the suite.
SLOW = """
name = "slow"
[data]
dataset = "digits"
[model]
hidden = [[16]]
[grid]
batch_size = [32]
seeds = [1, 2, 3, 4, 5, 6, 7, 8]
[budget]
max_iter = 50
[eval]
every = 10
[[optimizer]]
name = "faulty"
fault = "sleep"
seconds = 0.02
"""
N_SLOW = 8


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster():
    """A real scheduler and two workers, each its own process, on loopback."""
    pytest.importorskip("distributed")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PLUGINS, *sys.path]))
    procs = [
        subprocess.Popen(
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    ]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    procs.append(
        subprocess.Popen(
            ["dask", "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )
    from distributed import Client

    with Client(address, timeout=30) as client:
        client.wait_for_workers(2, timeout=60)
    CLUSTER_SESSIONS.add(procs[1].pid)  # started in a session of its own
    yield address
    CLUSTER_SESSIONS.discard(procs[1].pid)
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The flags that pick a backend, and the scheduler's address for the real cluster."""
    if request.param == "dask-cluster":
        address = request.getfixturevalue("dask_cluster")
        return ["--backend", "dask", "--scheduler", address]
    if request.param == "dask":
        pytest.importorskip("distributed")
    return ["--backend", request.param]


def write(tmp_path, text, name="exp.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def start(exp_file, out, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([PLUGINS, *sys.path]))
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnbench.cli",
            "run",
            str(exp_file),
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_interruptible,
    )


def _interruptible():
    """Ctrl-C as a terminal's foreground job gets it: a test run in the background
    of a shell inherits SIGINT ignored, and the runner would never see it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(predicate, proc=None, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the runner ended early: {proc.communicate()}")
        time.sleep(0.05)
    pytest.fail("timed out")


def n_files(out):
    return len(list((out / "runs").glob("*.parquet"))) if (out / "runs").exists() else 0


def processes() -> list[tuple[int, int, int, str]]:
    """(pid, parent, session, command) of every process. ``-ww``: whole command
    lines; without it ``ps`` cuts them to 80 columns when its output is a pipe,
    and a long interpreter path hides what the command runs."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,sid=,args="], capture_output=True, text=True
    ).stdout
    rows = []
    for line in out.splitlines():
        pid, ppid, sid, args = line.split(None, 3)
        rows.append((int(pid), int(ppid), int(sid), args))
    return rows


# The sessions of the test cluster's workers, whose fork servers run the runs
# of a runner that uses the cluster (see dask_cluster).
CLUSTER_SESSIONS: set[int] = set()


def run_processes(session: int) -> list[int]:
    """The processes running a runner's runs: children of a multiprocessing fork
    server of its session or of the test cluster's (nnbench starts no session of
    its own, so its processes, orphans included, keep their session; another
    nnbench running on the machine is not this test's business)."""
    rows = [row for row in processes() if row[2] in {session, *CLUSTER_SESSIONS}]
    servers = {pid for pid, _, _, args in rows if "multiprocessing.forkserver" in args}
    return [pid for pid, ppid, _, _ in rows if ppid in servers]


def leftovers(session: int) -> list[str]:
    """What is still alive of a runner's session (every process it started, fork
    servers and run processes included, whoever their parent is now), and any
    run process on the test cluster."""
    rows = [(pid, args) for pid, _, sid, args in processes() if sid == session]
    mine = {pid for pid, _ in rows}
    cluster = [f"run process {pid}" for pid in run_processes(session) if pid not in mine]
    return [args[:100] for _, args in rows] + cluster


def assert_nothing_left(session: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while leftovers(session) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert leftovers(session) == []


def timeless(out):
    cols = ["run_id", "iteration", "train_cost", "val_accuracy", "test_accuracy", "grad_evals"]
    return results.load(out).sort_values(["run_id", "iteration"], ignore_index=True)[cols]


def finish(exp_file, out, backend_flags):
    """The same command again, to the end."""
    proc = start(exp_file, out, "-j", "2", *backend_flags)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def statuses(out):
    return results.load_runs(out)["status"].value_counts().to_dict()


# A tuning study whose trials of one seed train as one stack (nnbench.stack).
STACKED_FAULT = """
name = "stacked-fault"
[data]
dataset = "digits"
[model]
hidden = [[16]]
[grid]
batch_size = [32]
seeds = [1]
[budget]
max_iter = 30
hang_seconds = 2
[tune]
trials = 3
final_seeds = [5]
[[optimizer]]
name = "faulty"
fault = "{fault}"
learning_rate = {{ log_uniform = [0.1, 1.0] }}
"""


@pytest.mark.parametrize(
    "fault, status, message",
    [
        ("raise", "failed", "RuntimeError: injected failure"),
        ("segfault", "failed", "killed by SIGSEGV"),
        ("nan", "diverged", "minibatch loss became nan at iteration 3"),
    ],
)
def test_a_stack_that_fails_runs_its_trials_alone(tmp_path, fault, status, message):
    """A crash takes the whole stack down: nothing of it is recorded, and each
    trial runs again alone, to its own end. A trial that diverges only leaves
    the stack."""
    exp_file = write(tmp_path, STACKED_FAULT.format(fault=fault))
    proc = start(exp_file, tmp_path / "out", "-j", "2")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    stored = results.stored_runs(tmp_path / "out")
    trials = [r for r in stored.values() if r.spec.phase == "trial"]
    assert len(trials) == 3
    for run in trials:
        meta = results.read_meta(run.path)
        assert meta["status"] == status
        assert message in meta["message"]
        # a crashed stack's trials ran alone; a diverging member stayed in its stack
        assert meta["provenance"].get("stack_size") == (3 if fault == "nan" else None)


# -- every end of a run ---------------------------------------------------------------------


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_every_end_of_a_run_is_a_row_naming_it(tmp_path, backend, jobs):
    if jobs == "1" and backend != ["--backend", "threading"]:
        pytest.skip("-j 1 once is enough")
    exp_file = write(tmp_path, FAULTS)
    proc = start(exp_file, tmp_path / "out", "-j", jobs, *backend)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    runs = results.load_runs(tmp_path / "out").set_index("label")
    status, message = runs["status"].to_dict(), runs["message"].to_dict()
    assert status.pop("gd") == "completed"
    assert status.pop("faulty[fault=nan]") == "diverged"
    assert set(status.values()) == {"failed"}
    assert message["faulty[fault=raise]"].startswith("RuntimeError: injected failure")
    assert message["faulty[fault=exit]"].endswith("exited with status 3 before finishing")
    assert message["faulty[fault=sysexit]"].startswith("SystemExit: 3")
    assert "KeyboardInterrupt raised by the run itself" in message["faulty[fault=keyboard]"]
    assert message["faulty[fault=generatorexit]"].startswith("GeneratorExit")
    assert "SIGSEGV" in message["faulty[fault=segfault]"]
    assert message["faulty[fault=hang]"].startswith("hung: no step for 2 s")


# -- stopping a grid ---------------------------------------------------------------------------


def _signal_the_runner(proc, sig, backend_flags):
    if "--scheduler" in backend_flags:
        os.kill(proc.pid, sig)  # the cluster is not the runner's to signal
    else:
        os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole foreground group


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_keep_finished_runs_and_leave_no_process(tmp_path, backend, sig, code):
    exp_file = write(tmp_path, SLOW)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2", *backend)
    wait_for(lambda: n_files(out) >= 2, proc)
    kept = {p.name: p.read_bytes() for p in (out / "runs").glob("*.parquet")}
    _signal_the_runner(proc, sig, backend)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err.decode()[-2000:]
    assert b"Traceback" not in err, err.decode()
    assert_nothing_left(proc.pid)
    for name, raw in kept.items():  # finished runs kept as they were
        assert (out / "runs" / name).read_bytes() == raw
    assert set(statuses(out)) <= {"completed"} and n_files(out) < N_SLOW
    finish(exp_file, out, backend)
    assert statuses(out) == {"completed": N_SLOW}


def test_sigkill_of_the_runner_leaves_no_process_and_the_grid_resumes(tmp_path, backend):
    exp_file = write(tmp_path, SLOW)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2", *backend)
    wait_for(lambda: n_files(out) >= 2, proc)
    os.kill(proc.pid, signal.SIGKILL)  # the runner alone: its workers must notice
    proc.wait()
    assert_nothing_left(proc.pid)
    finish(exp_file, out, backend)
    clean = tmp_path / "clean"
    study.run_experiment(experiment.load_experiment(exp_file), clean, n_jobs=2, log=None)
    pd.testing.assert_frame_equal(timeless(out), timeless(clean))


def test_a_run_process_killed_from_outside_is_tried_again(tmp_path, backend):
    exp_file = write(tmp_path, SLOW)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2", *backend)
    wait_for(lambda: bool(run_processes(proc.pid)), proc)
    os.kill(run_processes(proc.pid)[0], signal.SIGKILL)  # the out-of-memory killer, an admin
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert statuses(out) == {"completed": N_SLOW}


def test_force_then_ctrl_c_never_replaces_a_completed_run(tmp_path, backend):
    exp_file = write(tmp_path, SLOW)
    out = tmp_path / "out"
    finish(exp_file, out, backend)
    proc = start(exp_file, out, "-j", "2", "--force", *backend)
    wait_for(lambda: bool(run_processes(proc.pid)), proc)
    time.sleep(0.3)
    _signal_the_runner(proc, signal.SIGINT, backend)
    proc.communicate(timeout=60)
    assert statuses(out) == {"completed": N_SLOW}
    assert_nothing_left(proc.pid)


# -- the results folder -------------------------------------------------------------------------


def test_disk_full_while_writing_results(tmp_path, monkeypatch):
    exp_file = write(tmp_path, SLOW.replace('fault = "sleep"', 'fault = "none"'))
    out = tmp_path / "out"
    real_write = results.pq.write_table
    calls = []

    def full_disk(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 4:
            where.write(b"PAR1 partial")  # what a full disk leaves behind
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(table, where, *args, **kwargs)

    monkeypatch.setattr(results.pq, "write_table", full_disk)
    with pytest.raises(NnbenchError, match="No space left on device; the runs finished so far"):
        study.run_experiment(experiment.load_experiment(exp_file), out, log=None)
    assert n_files(out) == 3  # the three written before are intact ...
    assert not list((out / "runs").glob(".*"))  # ... and no partial file is left
    monkeypatch.setattr(results.pq, "write_table", real_write)
    summary = study.run_experiment(experiment.load_experiment(exp_file), out, log=None)
    assert summary.n_skipped == 3 and statuses(out) == {"completed": N_SLOW}


def test_a_read_only_results_folder(tmp_path, monkeypatch):
    exp_file = write(tmp_path, FAULTS)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root writes anyway: make the folder refuse, as it would
        real_open = runner.open_lock_file

        def refuse(path):
            if str(path).startswith(str(out)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path)

        monkeypatch.setattr(runner, "open_lock_file", refuse)
    try:
        with pytest.raises(NnbenchError, match=r"Permission denied; give a writable folder"):
            study.run_experiment(experiment.load_experiment(exp_file), out, log=None)
    finally:
        out.chmod(0o755)


def test_a_second_runner_on_the_same_folder_is_refused(tmp_path):
    exp_file = write(tmp_path, SLOW)
    out = tmp_path / "out"
    first = start(exp_file, out, "-j", "1")
    wait_for(lambda: (out / ".lock").exists() and bool(run_processes(first.pid)), first)
    second = start(exp_file, out, "-j", "1")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2
    message = err.decode()
    assert message.count("\n") == 1 and f"another nnbench run (pid {first.pid})" in message
    os.killpg(first.pid, signal.SIGINT)
    first.communicate(timeout=60)


# -- security ---------------------------------------------------------------------------------


def test_results_are_never_unpickled(tmp_path, monkeypatch):
    exp_file = write(tmp_path, SLOW.replace('fault = "sleep"', 'fault = "none"'))
    study.run_experiment(experiment.load_experiment(exp_file), tmp_path / "r", log=None)
    bomb = pickle.dumps(type("Boom", (), {"__reduce__": lambda s: (os.system, ("exit 7",))})())
    (tmp_path / "r" / "runs" / "0123456789abcdef.parquet").write_bytes(bomb)

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used to read results")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    with pytest.warns(results.ResultsWarning, match="not a readable nnbench run"):
        frame = results.load(tmp_path / "r")
    assert frame["run_id"].nunique() == N_SLOW
    assert len(results.load_runs(tmp_path / "r")) == N_SLOW


def test_the_dask_backend_leaves_logging_as_it_found_it():
    """Dask's loggers are quietened while a grid runs and silent while its
    cluster shuts down (which logs closed comms as CRITICAL), then restored."""
    import logging

    from nnbench.backends.dask import DaskBackend

    pytest.importorskip("distributed")  # whose import sets its own levels
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    with pytest.raises(KeyboardInterrupt), DaskBackend(1):
        assert [logger.level for logger in loggers] == [logging.ERROR] * 2
        raise KeyboardInterrupt
    assert [logger.level for logger in loggers] == [logging.INFO] * 2


def _interrupt_myself() -> str:
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # a handler would have raised by now
    except KeyboardInterrupt:
        return "interrupted"
    return "still working"


def test_loky_workers_leave_ctrl_c_to_the_runner():
    """A Ctrl-C reaches loky's workers too (the whole process group gets it);
    they carry on until the runner stops them, printing nothing."""
    from nnbench.backends.loky import LokyBackend

    with LokyBackend(2) as backend:
        futures = [backend.submit(_interrupt_myself) for _ in range(4)]
        assert [f.result(timeout=60) for f in futures] == ["still working"] * 4


# Runs still waiting for a worker when the grid stops.
STOP_LOKY = """
import time
from nnbench.backends.loky import LokyBackend

try:
    with LokyBackend(2) as backend:
        for _ in range(8):
            backend.submit(time.sleep, 30)
        time.sleep(1.5)
        raise KeyboardInterrupt
except KeyboardInterrupt:
    print("stopped")
"""


def test_a_loky_pool_stopped_with_work_queued_ends_at_once_and_quietly():
    proc = subprocess.Popen(
        [sys.executable, "-c", STOP_LOKY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    out, err = proc.communicate(timeout=60)
    assert out.strip() == b"stopped" and b"Traceback" not in err, err.decode()
    assert_nothing_left(proc.pid)


def test_ctrl_c_while_the_run_processes_start_prints_no_traceback(tmp_path):
    """Ctrl-C reaches the whole process group: the fork server, while it still
    imports what runs need, and each run's process from its first instruction
    ignore it (the runner stops them), so no traceback of theirs is printed."""
    exp_file = write(tmp_path, SLOW)
    proc = start(exp_file, tmp_path / "out", "-j", "2")

    def server_started() -> bool:
        return any(
            "multiprocessing.forkserver" in args
            for _, _, sid, args in processes()
            if sid == proc.pid
        )

    wait_for(server_started, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"Traceback" not in err, err.decode()[-3000:]
    assert_nothing_left(proc.pid)


# A supervisor that asks the fork server for a run's process, then dies before
# handing it the run: nothing, or half of it.
ABANDON = """
import os, sys
from multiprocessing import forkserver
from nnbench import isolation, study

isolation._mp_context()
status_r, data_w = forkserver.connect_to_new_process([])
os.write(data_w, bytes.fromhex(sys.argv[1]))
os.close(data_w)
forkserver.read_signed(status_r)  # the new process's pid
print(forkserver.read_signed(status_r))  # its exit status
"""


@pytest.mark.parametrize(
    "sent", [b"", pickle.dumps({"preparation": "data" * 100})[:50]], ids=["nothing", "half"]
)
def test_a_run_process_abandoned_while_starting_exits_quietly(sent):
    proc = subprocess.run(
        [sys.executable, "-c", ABANDON, sent.hex()], capture_output=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.strip() == b"1"  # it ended, as a process with nothing to do
    assert b"Traceback" not in proc.stderr, proc.stderr.decode()
