"""The grid runner: parallel equals serial, resume, failures as rows, locks, Dask.

Kills, Ctrl-C and other faults from outside are in test_faults.py."""

import numpy as np
import pandas as pd
import pytest

from nnbench import grid, results, runner
from nnbench.errors import NnbenchError

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


def experiment(
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
    return grid.validate(raw)


def metrics(out):
    frame = results.load(out)
    return frame.sort_values(["run_id", "iteration"], ignore_index=True)[["run_id", *TIMELESS]]


def test_one_and_two_jobs_give_the_same_metrics(tmp_path):
    exp = experiment()
    s1 = runner.run_experiment(exp, tmp_path / "j1", n_jobs=1, log=None)
    s2 = runner.run_experiment(exp, tmp_path / "j2", n_jobs=2, log=None)
    assert s1.statuses == s2.statuses == {"completed": 6}
    pd.testing.assert_frame_equal(metrics(tmp_path / "j1"), metrics(tmp_path / "j2"))


def test_results_table_has_the_documented_columns(tmp_path):
    runner.run_experiment(experiment(seeds=(1,)), tmp_path, log=None)
    frame = results.load(tmp_path)
    for column in (
        "run_id",
        "label",
        "optimizer",
        "hidden",
        "batch_size",
        "seed",
        "status",
        "iteration",
        "epoch",
        "grad_evals",
        "train_cost",
        "val_cost",
        "val_accuracy",
        "test_accuracy",
        "train_seconds",
        "eval_seconds",
    ):
        assert column in frame.columns
    assert set(frame["label"]) == {"gd[learning_rate=0.5]", "adam", "cg[mb_maxiter=3]"}
    assert frame.groupby("run_id").size().tolist() == [4, 4, 4]  # iterations 0, 10, 20, 30
    runs = results.load_runs(tmp_path)
    assert len(runs) == 3 and runs["prov.numpy"].iloc[0] == np.__version__
    assert "openblas" in runs["prov.blas"].iloc[0].lower() or runs["prov.blas"].iloc[0]
    assert (tmp_path / "experiment.json").exists()


def test_a_rerun_skips_finished_runs_and_force_reruns(tmp_path):
    exp = experiment(seeds=(1,))
    runner.run_experiment(exp, tmp_path, log=None)
    files = sorted((tmp_path / "runs").glob("*.parquet"))
    stamps = [f.stat().st_mtime_ns for f in files]
    again = runner.run_experiment(exp, tmp_path, log=None)
    assert again.n_skipped == 3 and again.n_done == 0
    assert [f.stat().st_mtime_ns for f in files] == stamps
    forced = runner.run_experiment(exp, tmp_path, log=None, force=True)
    assert forced.n_done == 3


def test_a_run_that_raises_is_a_failed_row_and_the_grid_goes_on(tmp_path):
    exp = experiment(optimizers=[{"name": "faulty", "fault": "raise"}, {"name": "adam"}])
    summary = runner.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    assert summary.statuses == {"failed": 2, "completed": 2}
    frame = results.load(tmp_path)
    failed = frame[frame["status"] == "failed"]
    assert set(failed["message"]) == {"RuntimeError: injected failure"}
    assert failed["iteration"].isna().all()  # one row per failed run, no metrics
    # a failed run is retried by the next run of the grid
    assert runner.run_experiment(exp, tmp_path, log=None).n_skipped == 2


def test_a_diverging_run_is_recorded_as_diverged(tmp_path):
    exp = experiment(optimizers=[{"name": "faulty", "fault": "nan"}], seeds=(1,))
    summary = runner.run_experiment(exp, tmp_path, log=None)
    assert summary.statuses == {"diverged": 1}
    assert "minibatch loss became nan" in results.load(tmp_path)["message"].iloc[0]


def test_a_worker_that_dies_leaves_a_failed_row_and_the_grid_finishes(tmp_path):
    exp = experiment(
        optimizers=[{"name": "faulty", "fault": "exit"}, {"name": "adam"}, {"name": "gd"}],
        seeds=(1, 2),
    )
    summary = runner.run_experiment(exp, tmp_path, n_jobs=2, log=None)
    assert summary.statuses == {"failed": 2, "completed": 4}
    runs = results.load_runs(tmp_path)
    died = runs[runs["status"] == "failed"]
    assert set(died["optimizer"]) == {"faulty"}
    assert all("died twice" in m for m in died["message"])


def test_a_second_runner_on_the_same_folder_is_refused(tmp_path):
    with runner.results_lock(tmp_path), pytest.raises(NnbenchError, match="another nnbench run"):
        runner.run_experiment(experiment(), tmp_path, log=None)
    # released afterwards
    assert runner.run_experiment(experiment(seeds=(1,)), tmp_path, log=None).n_done == 3


def test_bad_jobs_and_backend_are_config_errors(tmp_path):
    with pytest.raises(NnbenchError, match="jobs"):
        runner.run_experiment(experiment(), tmp_path, n_jobs=0, log=None)
    with pytest.raises(NnbenchError, match="unknown backend"):
        runner.run_experiment(experiment(), tmp_path, backend="spark", log=None)


def test_dask_local_cluster_gives_the_same_metrics(tmp_path):
    pytest.importorskip("distributed")
    exp = experiment(seeds=(1,))
    runner.run_experiment(exp, tmp_path / "local", n_jobs=2, log=None)
    summary = runner.run_experiment(exp, tmp_path / "dask", n_jobs=2, backend="dask", log=None)
    assert summary.statuses == {"completed": 3}
    pd.testing.assert_frame_equal(metrics(tmp_path / "local"), metrics(tmp_path / "dask"))
    assert set(results.load_runs(tmp_path / "dask")["prov.backend"]) == {"dask"}


def test_dask_scheduler_address_that_is_unreachable(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(runner, "SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(NnbenchError, match="cannot reach the Dask scheduler"):
        runner.run_experiment(
            experiment(seeds=(1,)),
            tmp_path,
            backend="dask",
            scheduler="tcp://127.0.0.1:9",
            log=None,
        )
