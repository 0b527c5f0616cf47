"""The fault suite: what happens to long jobs, and to the machine's safety.

Each test names the fault. After every fault a rerun completes the grid, no
finished run is lost, duplicated or half-written, and the failure shows in
the results.
"""

import errno
import os
import pickle
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nnbench import check, grid, report, results, runner
from nnbench.errors import NnbenchError

GRID = """
name = "faults"
[data]
dataset = "digits"
[model]
hidden = [[32]]
[grid]
batch_size = [16]
seeds = [1, 2, 3, 4, 5, 6]
[budget]
max_iter = 300
[eval]
every = 100
[[optimizer]]
name = "gd"
[[optimizer]]
name = "cg"
mb_maxiter = 5
"""
N_RUNS = 12


def experiment_file(tmp_path):
    path = tmp_path / "faults.toml"
    path.write_text(GRID)
    return path


def start(exp_file, out, *extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
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
    )


def wait_for(predicate, proc=None, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the runner ended early: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail("timed out")


def n_files(out):
    return len(list((out / "runs").glob("*.parquet"))) if (out / "runs").exists() else 0


def assert_complete_and_clean(out, exp_file):
    """Every run present once, readable, finished; no temporary files left."""
    files = list((out / "runs").iterdir())
    assert sorted(p.suffix for p in files) == [".parquet"] * N_RUNS
    frame = results.load(out)
    assert frame["run_id"].nunique() == N_RUNS
    expected = {s.run_id for s in grid.load_experiment(exp_file).runs()}
    assert set(frame["run_id"]) == expected
    assert (frame.groupby("run_id")["iteration"].apply(list) == [[0, 100, 200, 300]] * N_RUNS).all()


def timeless(out):
    cols = ["run_id", "iteration", "train_cost", "val_accuracy", "test_accuracy", "grad_evals"]
    return results.load(out).sort_values(["run_id", "iteration"], ignore_index=True)[cols]


@pytest.mark.parametrize("kill_after", [0, 1, 5, 9])
def test_fault_sigkill_of_the_runner_at_several_points(tmp_path, kill_after):
    """SIGKILL of the runner and its workers, from before the first run to late in the grid."""
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2")
    if kill_after:
        wait_for(lambda: n_files(out) >= kill_after, proc)
    else:  # somewhere during start-up, at a random moment
        time.sleep(random.Random(kill_after).uniform(0.2, 1.0))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = n_files(out)
    summary = runner.run_experiment(grid.load_experiment(exp_file), out, n_jobs=2, log=None)
    assert summary.n_skipped == before and summary.n_done == N_RUNS - before
    assert_complete_and_clean(out, exp_file)


def test_fault_sigkill_twice_then_the_same_numbers_as_an_uninterrupted_grid(tmp_path):
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    for target in (2, 6):
        proc = start(exp_file, out, "-j", "2")
        wait_for(lambda t=target: n_files(out) >= t, proc)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    runner.run_experiment(grid.load_experiment(exp_file), out, n_jobs=2, log=None)
    runner.run_experiment(grid.load_experiment(exp_file), tmp_path / "clean", n_jobs=1, log=None)
    pd.testing.assert_frame_equal(timeless(out), timeless(tmp_path / "clean"))


def test_fault_ctrl_c_then_rerun(tmp_path):
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2")
    wait_for(lambda: n_files(out) >= 3, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"Traceback" not in err
    runner.run_experiment(grid.load_experiment(exp_file), out, n_jobs=2, log=None)
    assert_complete_and_clean(out, exp_file)


def children(pid):
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True
    ).stdout
    return [int(p) for p in out.split()]


def test_fault_a_worker_process_killed_from_outside(tmp_path):
    """An OOM killer or an admin kills a worker: its run is retried, the grid completes."""
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    proc = start(exp_file, out, "-j", "2")
    wait_for(lambda: n_files(out) >= 1, proc)
    workers = []
    wait_for(
        lambda: bool(workers.extend(c for c in children(proc.pid) if c not in workers) or workers),
        proc,
    )
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert_complete_and_clean(out, exp_file)
    assert set(results.load(out)["status"]) == {"completed"}


def test_fault_an_exception_inside_an_optimizer_is_a_failed_row(tmp_path):
    exp = grid.validate(
        {
            "name": "raise",
            "data": {"dataset": "digits"},
            "grid": {"seeds": [1, 2]},
            "budget": {"max_iter": 20},
            "optimizer": [{"name": "faulty", "fault": "raise"}, {"name": "gd"}],
        }
    )
    runner.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    frame = results.load(tmp_path)
    assert sorted(report.status_table(frame)["message"]) == ["RuntimeError: injected failure"] * 2
    report.build_report(tmp_path)
    assert "Runs that did not complete (2)" in (tmp_path / "report.md").read_text()


def test_fault_a_diverging_run_is_recorded_and_reported(tmp_path):
    exp = grid.validate(
        {
            "name": "diverge",
            "data": {"dataset": "digits"},
            "grid": {"seeds": [1]},
            "budget": {"max_iter": 50},
            "eval": {"every": 5},
            "optimizer": [{"name": "gd", "learning_rate": 10000.0}, {"name": "adam"}],
            "model": {"hidden": [[16, 16]]},
        }
    )
    summary = runner.run_experiment(exp, tmp_path, log=None)
    assert summary.statuses["diverged"] == 1
    report.build_report(tmp_path)
    assert "diverged" in (tmp_path / "report.md").read_text()


def test_fault_disk_full_while_writing_results(tmp_path, monkeypatch):
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    real_write = results.pq.write_table
    calls = []

    def full_disk(table, where, *args, **kwargs):
        calls.append(where)
        if len(calls) == 4:
            Path(where).write_bytes(b"PAR1 partial")  # what a full disk leaves behind
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(table, where, *args, **kwargs)

    monkeypatch.setattr(results.pq, "write_table", full_disk)
    with pytest.raises(NnbenchError, match="No space left on device; the runs finished so far"):
        runner.run_experiment(grid.load_experiment(exp_file), out, log=None)
    assert n_files(out) == 3  # the three written before are intact ...
    assert not list((out / "runs").glob(".*"))  # ... and no partial file is left
    assert len(results.load(out)) == 3 * 4
    monkeypatch.setattr(results.pq, "write_table", real_write)
    summary = runner.run_experiment(grid.load_experiment(exp_file), out, log=None)
    assert summary.n_skipped == 3
    assert_complete_and_clean(out, exp_file)


def test_fault_a_read_only_results_folder(tmp_path, monkeypatch):
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    if os.access(out, os.W_OK):  # root writes anyway: make the folder refuse, as it would
        real_open = open

        def refuse(path, *args, **kwargs):
            if str(path).startswith(str(out)):
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(runner, "open", refuse, raising=False)
    try:
        with pytest.raises(
            NnbenchError,
            match=r"cannot write to the results folder .*Permission denied; give a writable folder",
        ):
            runner.run_experiment(grid.load_experiment(exp_file), out, log=None)
    finally:
        out.chmod(0o755)
    monkeypatch.undo()
    runner.run_experiment(grid.load_experiment(exp_file), out, log=None)
    assert_complete_and_clean(out, exp_file)


def test_fault_a_read_only_folder_on_the_command_line_is_one_line(tmp_path, monkeypatch, capsys):
    from nnbench.cli import main

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(runner, "open", refuse, raising=False)
    code = main(["run", str(experiment_file(tmp_path)), "--out", str(tmp_path / "x"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Permission denied" in err


# -- concurrency ---------------------------------------------------------------------------


def test_concurrency_a_second_runner_on_the_same_folder_is_refused(tmp_path):
    exp_file = experiment_file(tmp_path)
    out = tmp_path / "out"
    first = start(exp_file, out, "-j", "1")
    wait_for(lambda: n_files(out) >= 1, first)
    second = start(exp_file, out, "-j", "1")
    _, err = second.communicate(timeout=60)
    assert second.returncode == 2
    message = err.decode()
    assert message.count("\n") == 1 and f"another nnbench run (pid {first.pid})" in message
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err.decode()
    assert_complete_and_clean(out, exp_file)


# -- security ----------------------------------------------------------------------------


def test_security_results_and_baselines_are_never_unpickled(tmp_path, monkeypatch):
    runner.run_experiment(grid.load_experiment(experiment_file(tmp_path)), tmp_path / "r", log=None)
    base = check.write_baseline(tmp_path / "r", tmp_path / "base.json")
    # a pickle bomb disguised as a run file and as a baseline
    bomb = pickle.dumps(type("Boom", (), {"__reduce__": lambda s: (os.system, ("exit 7",))})())
    (tmp_path / "r" / "runs" / "0123456789abcdef.parquet").write_bytes(bomb)

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle used to read results")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    with pytest.warns(results.ResultsWarning, match="not a readable nnbench run"):
        frame = results.load(tmp_path / "r")
    assert frame["run_id"].nunique() == N_RUNS
    assert len(results.load_runs(tmp_path / "r")) == N_RUNS
    with pytest.warns(results.ResultsWarning):
        assert check.check(tmp_path / "r", base).ok
    (tmp_path / "bomb.json").write_bytes(bomb)
    with pytest.raises(NnbenchError, match="not a baseline file"):
        check.check(tmp_path / "r", tmp_path / "bomb.json")


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", ".hidden", "..", "x" * 101])
def test_security_experiment_names_cannot_leave_the_results_folder(name):
    with pytest.raises(NnbenchError, match="name"):
        grid.validate({"name": name, "budget": {"max_iter": 1}, "optimizer": [{"name": "gd"}]})


def test_security_run_files_are_named_by_hex_ids_only(tmp_path):
    runner.run_experiment(grid.load_experiment(experiment_file(tmp_path)), tmp_path / "r", log=None)
    for path in (tmp_path / "r" / "runs").iterdir():
        assert len(path.stem) == 16 and all(c in "0123456789abcdef" for c in path.stem)


# -- determinism ---------------------------------------------------------------------------


def test_determinism_a_forced_rerun_gives_identical_metrics(tmp_path):
    exp = grid.load_experiment(experiment_file(tmp_path))
    runner.run_experiment(exp, tmp_path / "a", n_jobs=2, log=None)
    first = timeless(tmp_path / "a")
    runner.run_experiment(exp, tmp_path / "a", n_jobs=1, log=None, force=True)
    pd.testing.assert_frame_equal(first, timeless(tmp_path / "a"))
