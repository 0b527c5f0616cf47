"""The grid runner: parallel equals serial, resume, every end of a run as a row,
the folder's lock and owner, the shared data. The fault matrix (every fault
under every backend, signals, killed processes) is the slow tier's:
tests/test_faults.py."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from nnbench import backends, experiment, optimizers, results, runner, study
from nnbench.data import share_dataset
from nnbench.errors import ConfigError, NnbenchError
from nnbench.status import Status

TIMELESS = [
    "train_cost",
    "train_accuracy",
    "val_cost",
    "val_accuracy",
    "test_accuracy",
    "iteration",
    "epoch",
    "grad_evals",
    "samples",
]


def grid_of(
    name="small", optimizers=None, seeds=(1, 2), hidden=((16,),), max_iter=30, batch_size=(32,)
):
    raw = {
        "name": name,
        "data": {"dataset": "digits"},
        "model": {"hidden": [list(h) for h in hidden]},
        "grid": {"batch_size": list(batch_size), "seeds": list(seeds)},
        "budget": {"max_iter": max_iter},
        "eval": {"every": 10},
        "optimizer": optimizers
        or [
            {"name": "gd", "learning_rate": 0.5},
            {"name": "adam"},
            {"name": "cg", "mb_maxiter": 3},
        ],
    }
    return experiment.validate(raw)


def metrics(out):
    frame = results.load(out)
    return frame.sort_values(["run_id", "iteration"], ignore_index=True)[["run_id", *TIMELESS]]


def test_one_and_two_jobs_give_the_same_metrics(tmp_path):
    exp = grid_of()
    s1 = study.run_experiment(exp, tmp_path / "j1", n_jobs=1, log=None)
    s2 = study.run_experiment(exp, tmp_path / "j2", n_jobs=2, log=None)
    assert s1.statuses == s2.statuses == {"completed": 6}
    pd.testing.assert_frame_equal(metrics(tmp_path / "j1"), metrics(tmp_path / "j2"))


def test_results_table_has_the_documented_columns(tmp_path):
    study.run_experiment(grid_of(seeds=(1,)), tmp_path, log=None)
    frame = results.load(tmp_path)
    for column in (*results.CONFIG_COLUMNS, "train_seconds", "eval_seconds"):
        assert column in frame.columns
    assert set(frame["label"]) == {"gd[learning_rate=0.5]", "adam", "cg[mb_maxiter=3]"}
    assert frame.groupby("run_id").size().tolist() == [4, 4, 4]  # iterations 0, 10, 20, 30
    runs = results.load_runs(tmp_path)
    assert len(runs) == 3 and runs["prov.numpy"].iloc[0] == np.__version__
    assert "openblas" in runs["prov.blas"].iloc[0].lower()
    assert set(runs["diag.n_bad_status"].dropna()) <= {0, 1, 2, 3}  # cg reports its own
    assert json.loads((tmp_path / "experiment.json").read_text())["name"] == "small"


def test_a_rerun_skips_finished_runs_and_force_reruns(tmp_path):
    exp = grid_of(seeds=(1,))
    study.run_experiment(exp, tmp_path, log=None)
    files = sorted((tmp_path / "runs").glob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = study.run_experiment(exp, tmp_path, log=None)
    assert again.n_skipped == 3 and again.n_done == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    forced = study.run_experiment(exp, tmp_path, log=None, force=True)
    assert forced.n_done == 3 and len(list((tmp_path / "runs").glob("*.parquet"))) == 3


def test_every_end_of_a_run_is_a_row_and_the_grid_goes_on(tmp_path):
    """In-process faults of a run, each with -j 1: the runner survives them all."""
    faults = ["raise", "sysexit", "keyboard", "generatorexit", "exit", "segfault", "lost"]
    exp = grid_of(optimizers=[{"name": "faulty", "fault": faults}, {"name": "adam"}], seeds=(1,))
    summary = study.run_experiment(exp, tmp_path, n_jobs=1, log=None)
    assert summary.statuses == {"failed": len(faults), "completed": 1}
    runs = results.load_runs(tmp_path).set_index("label")
    message = runs["message"].to_dict()
    assert message["faulty[fault=raise]"].startswith("RuntimeError: injected failure (at ")
    assert message["faulty[fault=sysexit]"].startswith("SystemExit: 3")
    assert "KeyboardInterrupt raised by the run itself" in message["faulty[fault=keyboard]"]
    assert message["faulty[fault=generatorexit]"].startswith("GeneratorExit")
    assert (
        message["faulty[fault=exit]"]
        == "the process running it exited with status 3 before finishing"
    )
    assert message["faulty[fault=segfault]"] == (
        "the process running it was killed by SIGSEGV (a crash in native code); tried again: twice"
    )
    # 255: the fork server lost the status (a race of a process that ends at once): a
    # crash of unknown kind, tried once more like a signal
    assert message["faulty[fault=lost]"] == (
        "the process running it ended and the fork server lost its exit status (255); "
        "tried again: twice"
    )
    failed = results.load(tmp_path).query("status == 'failed'")
    assert failed.groupby("run_id").size().max() >= 1  # never silently dropped
    # failed runs are tried again by the next run of the grid; finished ones are not
    assert study.run_experiment(exp, tmp_path, log=None).n_skipped == 1


def test_a_hung_run_is_stopped_and_recorded(tmp_path):
    raw = {
        "name": "hang",
        "data": {"dataset": "digits"},
        "grid": {"seeds": [1]},
        "budget": {"max_iter": 20, "hang_seconds": 1.0},
        "optimizer": [{"name": "faulty", "fault": "hang"}, {"name": "gd"}],
    }
    summary = study.run_experiment(experiment.validate(raw), tmp_path, n_jobs=2, log=None)
    assert summary.statuses == {"failed": 1, "completed": 1}
    message = results.load_runs(tmp_path).query("status == 'failed'")["message"].iloc[0]
    assert message.startswith("hung: no step for 1 s (after iteration 2)")


def test_a_diverging_run_is_recorded_as_diverged(tmp_path):
    exp = grid_of(optimizers=[{"name": "faulty", "fault": "nan"}], seeds=(1,))
    summary = study.run_experiment(exp, tmp_path, log=None)
    assert summary.statuses == {"diverged": 1}
    assert "minibatch loss became nan" in results.load(tmp_path)["message"].iloc[0]


def test_a_failed_rerun_never_replaces_a_final_result(tmp_path):
    exp = grid_of(seeds=(1,), optimizers=[{"name": "gd"}])
    study.run_experiment(exp, tmp_path, log=None)
    spec = exp.runs()[0]
    path = results.run_path(tmp_path, spec.run_id)
    before = path.read_bytes()
    stored = results.stored_runs(tmp_path)
    summary = runner.GridSummary(tmp_path, 1)
    recorder = runner._Recorder(tmp_path, stored, summary, lambda m: None, 1, False)
    recorder.record(spec, {"status": "failed", "message": "boom", "rows": []})
    assert path.read_bytes() == before and summary.n_kept == 1
    recorder.record(spec, {"status": None})  # stopped by Ctrl-C: nothing written at all
    assert path.read_bytes() == before


def test_a_second_runner_on_the_same_folder_is_refused(tmp_path):
    with runner.results_lock(tmp_path), pytest.raises(NnbenchError, match="another nnbench run"):
        study.run_experiment(grid_of(), tmp_path, log=None)
    # released afterwards
    assert study.run_experiment(grid_of(seeds=(1,)), tmp_path, log=None).n_done == 3


def test_a_results_folder_belongs_to_one_experiment(tmp_path):
    study.run_experiment(grid_of("first", seeds=(1,)), tmp_path, log=None)
    with pytest.raises(NnbenchError, match="holds the results of experiment 'first', not 'second'"):
        study.run_experiment(grid_of("second", seeds=(2,)), tmp_path, log=None)
    assert json.loads((tmp_path / "experiment.json").read_text())["name"] == "first"
    summary = study.run_experiment(grid_of("second", seeds=(2,)), tmp_path, log=None, merge=True)
    assert summary.n_done == 3
    assert json.loads((tmp_path / "experiment.json").read_text())["name"] == "first"
    assert (tmp_path / "experiment.second.json").exists()


@pytest.mark.parametrize("content", ["my notes", '{"title": "mine"}', "[1, 2]"])
def test_an_experiment_json_nnbench_did_not_write_is_never_replaced(tmp_path, content):
    (tmp_path / "experiment.json").write_text(content)
    with pytest.raises(NnbenchError, match="is not a description nnbench wrote"):
        study.run_experiment(grid_of(seeds=(1,)), tmp_path, log=None)
    assert (tmp_path / "experiment.json").read_text() == content


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_jobs": 0}, "-j/--jobs must be an integer from 1 to"),
        ({"n_jobs": 10_000}, "-j/--jobs must be an integer from 1 to"),
        ({"threads": 0}, "--threads must be an integer from 1 to"),
        ({"threads": (os.cpu_count() or 1) + 1}, "--threads must be an integer from 1 to"),
        ({"backend": "spark"}, "unknown backend 'spark'"),
        ({"backend": "multiprocessing"}, "every run already gets a process of its own"),
        ({"backend": "threading", "scheduler": "tcp://x:1"}, "--scheduler is for --backend dask"),
        ({"out_dir": " "}, "--out must name a folder"),
    ],
)
def test_bad_runner_settings_are_refused_before_anything_is_written(tmp_path, kwargs, match):
    kwargs.setdefault("out_dir", tmp_path / "out")
    with pytest.raises(ConfigError, match=match):
        study.run_experiment(grid_of(), log=None, **kwargs)
    assert not (tmp_path / "out").exists()


def test_every_backend_is_registered_behind_the_seam():
    assert backends.DEFAULT in backends.available()
    for name in backends.available():
        cls = backends.get(name)
        assert issubclass(cls, backends.Backend) and cls.name == name


def test_workers_memory_map_one_copy_of_the_data():
    shared = share_dataset("digits", "float32")
    first, second = shared.load(), shared.load()
    X1, X2 = first["train"][0], second["train"][0]
    assert isinstance(X1, np.memmap) and X1.filename == X2.filename
    assert str(X1.filename).startswith(shared.folder)
    assert X1.dtype == np.float32 and not X1.flags.writeable


def test_results_are_read_and_reported_without_the_plugin_that_made_them(tmp_path, monkeypatch):
    from nnbench import report

    exp = grid_of(optimizers=[{"name": "signsgd", "learning_rate": 0.02}], seeds=(1, 2))
    study.run_experiment(exp, tmp_path, log=None)
    # the plugin is gone: uninstalled, or another machine
    optimizers.available()
    monkeypatch.setattr(optimizers._REGISTRY, "_items", dict(optimizers._REGISTRY._items))
    optimizers._REGISTRY.unregister("signsgd")  # from the copy: back after the test
    with pytest.raises(ConfigError):
        optimizers.get("signsgd")
    frame = results.load(tmp_path)
    assert set(frame["label"]) == {"signsgd[learning_rate=0.02]"}
    assert len(results.load_runs(tmp_path)) == 2
    assert set(results.stored_runs(tmp_path)) == {s.run_id for s in exp.runs()}
    report.build_report(tmp_path, figures=["final-accuracy"])
    assert "signsgd[learning_rate=0.02]" in (tmp_path / "report.md").read_text()


def test_statuses_say_what_is_final_and_what_is_ok():
    assert {s.value for s in Status if s.is_final} == {
        "completed",
        "converged",
        "stopped",
        "diverged",
    }
    assert {s.value for s in Status if s.is_ok} == {"completed", "converged", "stopped"}


@pytest.mark.slow  # a real child process: seconds of start-up
def test_a_script_without_a_main_guard_runs_its_grid_once(tmp_path):
    """The run processes never re-run the caller's script: no `if __name__` needed."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(
        "from nnbench import experiment, study\n"
        "exp = experiment.validate({'name': 'ng', 'data': {'dataset': 'digits'},\n"
        "    'budget': {'max_iter': 10}, 'optimizer': [{'name': 'gd'}],\n"
        "    'grid': {'seeds': [1, 2]}})\n"
        f"out = {str(tmp_path / 'out')!r}\n"
        "print(study.run_experiment(exp, out, n_jobs=2, log=None).statuses)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Counter({<Status.COMPLETED: 'completed'>: 2})"


@pytest.mark.slow  # a real child process: seconds of start-up
def test_runs_import_the_nnbench_the_runner_imports(tmp_path):
    """Started from a folder holding another `nnbench` (a source tree, say), the
    run processes still use the runner's: Python 3.11's fork server would put
    that folder first on its path."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    impostor = tmp_path / "nnbench"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("raise ImportError('the wrong nnbench')\n")
    script = Path(sys.executable).parent / "nnbench"
    command = [str(script)] if script.exists() else [shutil.which("nnbench")]
    done = subprocess.run(
        [
            *command,
            "run",
            "--optimizers",
            "gd",
            "--dataset",
            "digits",
            "--max-iter",
            "5",
            "--out",
            str(tmp_path / "out"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert results.load_runs(tmp_path / "out")["status"].tolist() == ["completed"]


def test_float32_runs_of_the_scipy_optimizers_end_to_end(tmp_path):
    exp = experiment.validate(
        {
            "name": "f32",
            "data": {"dataset": "digits", "dtype": "float32"},
            "grid": {"seeds": [1, 2]},
            "budget": {"max_iter": 20},
            "optimizer": [{"name": "cg", "mb_maxiter": 3}, {"name": "lbfgsb", "mb_maxiter": 3}],
        }
    )
    summary = study.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    assert summary.statuses == {"completed": 4}
    last = results.final_rows(results.load(tmp_path))
    assert (last["dtype"] == "float32").all() and (last["val_accuracy"] > 0.3).all()
    assert last["train_cost"].map(np.isfinite).all()


def test_runs_of_an_earlier_version_of_the_experiment_are_kept_but_never_used(tmp_path):
    """A grid rerun with fewer seeds or another budget: the folder's tables use
    what the file defines now; the earlier runs stay on disk, named in one
    line, until --prune removes them (and nothing else)."""
    import shutil

    gd = [{"name": "gd"}]
    study.run_experiment(grid_of(seeds=(1, 2, 3), optimizers=gd), tmp_path, log=None)
    copy = tmp_path / "runs" / "mine.parquet"  # the user's copy of the seed-1 run
    shutil.copy(results.run_path(tmp_path, grid_of(seeds=(1,), optimizers=gd).runs()[0].run_id),
                copy)  # fmt: skip
    fewer = grid_of(seeds=(1, 2), optimizers=gd)
    with pytest.warns(study.OtherRunsWarning, match="1 run of an earlier version .* --prune"):
        assert study.run_experiment(fewer, tmp_path, log=None).n_skipped == 2
    with pytest.warns(results.EarlierRunsWarning, match="1 run of an earlier version"):
        frame = results.load(tmp_path)
    assert sorted(frame["seed"].unique()) == [1, 2]
    assert sorted(results.load_runs(tmp_path)["seed"]) == [1, 2]
    longer = grid_of(seeds=(1, 2), optimizers=gd, max_iter=40)
    with pytest.warns(study.OtherRunsWarning, match="3 runs of an earlier version"):
        study.run_experiment(longer, tmp_path, log=None)
    with pytest.warns(results.EarlierRunsWarning):
        last = results.final_rows(results.load(tmp_path))
    assert len(last) == 2 and set(last["max_iter"]) == {40}
    assert len(results.load(tmp_path, every_version=True).drop_duplicates("run_id")) == 5
    with pytest.warns(study.OtherRunsWarning, match="1 run.*mine.parquet.*by hand"):
        study.run_experiment(longer, tmp_path, log=None, prune=True)
    assert copy.exists() and len(list((tmp_path / "runs").glob("*.parquet"))) == 3


def test_a_finished_run_without_rows_is_run_again(tmp_path):
    """A file that says completed but holds no evaluation (emptied, or its
    iteration column gone) is not a finished run: resuming runs it again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    exp = grid_of(seeds=(1, 2), optimizers=[{"name": "gd"}])
    study.run_experiment(exp, tmp_path, log=None)
    for spec, change in zip(
        exp.runs(), (lambda f: f.iloc[:0], lambda f: f.drop(columns="iteration")), strict=True
    ):
        path = results.run_path(tmp_path, spec.run_id)
        table = pq.read_table(path)
        new = pa.Table.from_pandas(change(table.to_pandas()), preserve_index=False)
        pq.write_table(new.replace_schema_metadata(table.schema.metadata), path)
    assert results.stored_runs(tmp_path) == {}
    assert study.run_experiment(exp, tmp_path, log=None).n_done == 2
    assert len(results.stored_runs(tmp_path)) == 2


def test_force_never_deletes_a_copy_of_a_run_file_the_user_made(tmp_path):
    """A user's copy in runs/ (under a name nnbench never gives) is the user's:
    --force replaces the run's own file and leaves the copy alone; a file of
    the same run under the old id nnbench once named it is replaced."""
    import shutil
    from pathlib import Path

    exp = grid_of(seeds=(1,), optimizers=[{"name": "gd"}])
    study.run_experiment(exp, tmp_path, log=None)
    (spec,) = exp.runs()
    own = results.run_path(tmp_path, spec.run_id)
    backup = own.with_name("0-backup-before-force.parquet")  # sorts before the id
    shutil.copy(own, backup)
    assert study.run_experiment(exp, tmp_path, log=None, force=True).n_done == 1
    assert backup.exists() and own.exists()
    old = shutil.copy(
        Path(__file__).parent / "data" / "nnbench-0.1-run.parquet",
        tmp_path / "runs" / "02492eba9e0faf1b.parquet",
    )
    old_copy = shutil.copy(old, tmp_path / "runs" / "0000-mine.parquet")
    blog = experiment.load_experiment(Path(__file__).parents[1] / "experiments" / "blog.toml")
    (old_spec,) = [s for s in blog.runs() if s.run_id == "0121ef050b6e6418"]
    rec = runner._Recorder(tmp_path, results.stored_runs(tmp_path), runner.GridSummary(tmp_path, 1),
                           lambda _m: None, 1, False)  # fmt: skip
    rec.record(old_spec, {"status": "completed", "rows": [{"iteration": 0, "val_accuracy": 0.5}]})
    assert not Path(old).exists() and Path(old_copy).exists()
    assert results.run_path(tmp_path, "0121ef050b6e6418").exists()


def test_a_run_leaves_the_temporary_files_of_a_report_at_work_alone(tmp_path):
    """`report` and `run` on one folder: the report's temporary files are its own
    while it runs; a killed writer's are cleared."""
    from nnbench.fileio import temp_path
    from tests.test_fileio import dead_pid

    tmp_path.mkdir(exist_ok=True)
    building = temp_path(tmp_path / "report.html")  # this process is alive: a report at work
    building.write_text("half a report")
    killed = tmp_path / "runs" / f".x.parquet.{dead_pid()}.0123abcd.tmp"
    killed.parent.mkdir()
    killed.write_text("half a run")
    study.run_experiment(grid_of(seeds=(1,), optimizers=[{"name": "gd"}]), tmp_path, log=None)
    assert building.read_text() == "half a report" and not killed.exists()


@pytest.mark.parametrize("bug", ["rebind", "scale"])
def test_a_plugins_stacked_update_is_verified_and_a_wrong_one_runs_alone(tmp_path, bug):
    """Defect 12 of issue 27: a plugin's stack_step that rebinds its weights, or
    halves a shared option every step, is caught; its trials run alone, named."""
    space = {"log_uniform": [0.01, 1.0]}
    raw = {
        "name": "plugins",
        "data": {"dataset": "digits"},
        "model": {"hidden": [[8]]},
        "grid": {"batch_size": [32], "seeds": [1]},
        "budget": {"max_iter": 20},
        "eval": {"every": 10},
        "tune": {"trials": 3, "seed": 0, "final_seeds": [11]},
        "optimizer": [
            {"name": "badstack", "bug": bug, "learning_rate": space},
            {"name": "faulty", "learning_rate": space},
        ],
    }
    exp = experiment.validate(raw)
    said: list[str] = []
    study.run_experiment(exp, tmp_path / "stacked", n_jobs=1, log=said.append)
    study.run_experiment(exp, tmp_path / "alone", n_jobs=1, log=None, stack=False)
    warned = [m for m in said if m.startswith("warning:")]
    assert len(warned) == 1 and "'badstack'" in warned[0] and "stack_step" in warned[0]
    assert metrics(tmp_path / "stacked").equals(metrics(tmp_path / "alone"))
    sizes = {
        r.spec.optimizer: results.read_meta(r.path)["provenance"].get("stack_size")
        for r in results.stored_runs(tmp_path / "stacked").values()
        if r.spec.phase == "trial"
    }
    assert sizes == {"badstack": None, "faulty": 3}  # a right stacked update is trusted


def test_sigterm_while_a_stacks_results_are_recorded_keeps_every_member():
    """A caveat of issue 27: SIGTERM while a stack's members were being recorded
    discarded those not yet written; every member computed is written first."""
    import signal
    from concurrent.futures import Future
    from types import SimpleNamespace

    specs = grid_of(optimizers=[{"name": "gd"}], seeds=(1, 2, 3)).runs()
    members = [{"run_id": s.run_id, "status": "completed", "rows": []} for s in specs]
    futures: list[Future] = []

    def submit(fn, task, stop):
        future: Future = Future()
        future.set_result({"run_id": task.run_id, "status": "completed", "stack": members})
        futures.append(future)
        return future

    backend = SimpleNamespace(
        stop_check=lambda: None, capacity=lambda: 1, submit=submit, name="instant",
        completed=lambda timeout: [futures.pop()] if futures else [],
    )  # fmt: skip
    recorded: list[str] = []

    def record(spec, res):
        if not recorded:
            os.kill(os.getpid(), signal.SIGTERM)  # the runner is told to stop
        recorded.append(spec.run_id)

    recorder = SimpleNamespace(record=record, say=lambda message: None)
    tasks = {"stack": (SimpleNamespace(run_id="stack"), specs)}
    with runner.sigterm_stops(), pytest.raises(runner.Terminated):
        runner._dispatch(backend, tasks, recorder, make_task=None)
    assert recorded == [s.run_id for s in specs]


def test_runs_on_shared_data_changed_under_them_are_not_final(tmp_path):
    """A caveat of issue 27: a data cache file overwritten in place mid-run left
    runs trained on corrupted data recorded as final, never revisited."""
    exp = grid_of(optimizers=[{"name": "gd"}], seeds=(1, 2), max_iter=10)
    folder = share_dataset("digits", exp.runs()[0].dtype, tmp_path / "cache").folder
    said: list[str] = []

    def log(message):
        said.append(message)
        if message.startswith("[1/"):  # a run recorded: the cache is overwritten in place
            with open(os.path.join(folder, "train_X.npy"), "r+b") as fh:
                fh.seek(-8, os.SEEK_END)
                fh.write(b"\x7f" * 8)

    out = tmp_path / "out"
    kwargs = {"n_jobs": 1, "data_dir": tmp_path / "cache", "stack": False}
    summary = study.run_experiment(exp, out, log=log, **kwargs)
    assert summary.statuses == {"failed": 2}
    assert any("changed during the runs (train_X.npy does not match" in m for m in said)
    assert not any(r.status.is_final for r in results.stored_runs(out).values())
    again = study.run_experiment(exp, out, log=None, **kwargs)  # the data is shared anew
    assert again.statuses == {"completed": 2}
