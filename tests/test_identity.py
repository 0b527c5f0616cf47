"""Run identity is pinned: the post's experiment has these run ids, the committed
results are recognised by them, and run files of an older nnbench still are."""

import shutil
from pathlib import Path

from nnbench import experiment, results, study

ROOT = Path(__file__).parent.parent
BLOG = ROOT / "experiments" / "blog.toml"
# The ids of experiments/blog.toml. A change to how identity is computed, or a
# new setting whose default enters it, changes them and orphans every result
# anyone has: this list must never need editing.
BLOG_IDS = [
    "0121ef050b6e6418",
    "0975679197a6517f",
    "10d76529b6d9467f",
    "16f7cd718b639062",
    "18a18f4c987b7d1b",
    "19bc6bd53bae4421",
    "1a1a91636bc17cba",
    "29d33e7af8f05653",
    "2bfaa573a6834431",
    "2fa5a96118e09f10",
    "3d4b0602fef5d11f",
    "472ae6c87026bdd1",
    "4b8247a30108d1f8",
    "5535f743ff28bc2b",
    "66a66bd594845e75",
    "685493eee8f62605",
    "84f47977b1959c0c",
    "8b9a16e26c893b75",
    "b35c2697e322609e",
    "bbf523489bd79b70",
    "cc31f1b8b9fd58a3",
    "d0c2ec54edee88c3",
    "d403f17b7b070a09",
    "d6685d1f0dfe7bd2",
    "d86a5f2848b3bd64",
    "daf7c0a0fd187252",
    "e44dd801314da7fd",
    "e897d89b3480ae6d",
    "fa3652687b321b88",
    "fc4afe26c9f0b8d2",
]


def test_the_posts_experiment_has_its_pinned_run_ids():
    assert sorted(s.run_id for s in experiment.load_experiment(BLOG).runs()) == BLOG_IDS


def test_the_committed_results_are_recognised_and_a_rerun_runs_nothing(tmp_path):
    stored = results.stored_runs(ROOT / "results" / "blog")
    assert sorted(stored) == BLOG_IDS
    assert all(run.status.is_final for run in stored.values())
    copy = tmp_path / "blog"
    shutil.copytree(ROOT / "results" / "blog" / "runs", copy / "runs")
    shutil.copy(ROOT / "results" / "blog" / "experiment.json", copy)
    summary = study.run_experiment(experiment.load_experiment(BLOG), copy, log=None)
    assert summary.n_skipped == 30 and summary.n_done == 0


def test_a_run_file_of_nnbench_0_1_is_read_and_recognised(tmp_path):
    """A file written before the settings schema: a flat spec, no format, every
    option spelled out, its name the old id."""
    (tmp_path / "runs").mkdir()
    old = shutil.copy(
        Path(__file__).parent / "data" / "nnbench-0.1-run.parquet",
        tmp_path / "runs" / "02492eba9e0faf1b.parquet",
    )
    assert "format" not in results.read_meta(old)
    ((run_id, run),) = results.stored_runs(tmp_path).items()
    assert run_id == "0121ef050b6e6418" and run_id in BLOG_IDS and run.spec.label == "cg"
    frame = results.load(tmp_path)
    assert set(frame["run_id"]) == {run_id} and set(frame["label"]) == {"cg"}
    assert (frame["phase"] == "grid").all() and frame["val_accuracy"].iloc[-1] > 0.8
