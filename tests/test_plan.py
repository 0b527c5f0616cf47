"""nnbench run --plan: what the planned seeds can show, before any run."""

import math
from pathlib import Path

import pytest

from nnbench import experiment, plan, stats
from nnbench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_the_blog_plan_gives_the_posts_pairs_a_verdict_with_all_of_alpha():
    exp = experiment.load_experiment(ROOT / "experiments" / "blog.toml")
    lines = plan.plan(exp, ROOT / "results" / "blog")
    pairs, comparison = lines
    # six optimizers, one cell: 15 pairs in one family at 5%; 5 seeds cannot reach
    # 0.05 / 15 by sign flips (2 / 2^5), so the floored t-test decides
    assert (pairs.family, pairs.level, pairs.n) == (15, pytest.approx(0.05 / 15), 5)
    assert pairs.method == "t (floored)" and pairs.possible
    assert pairs.detectable == pytest.approx(stats.resolution(pairs.noise, 5, 0.05 / 15, 0.8, 2))
    assert 0 < pairs.noise < 0.1 and comparison.family == 6


def test_the_extended_plan_splits_alpha_between_the_study_and_its_cells():
    exp = experiment.load_experiment(ROOT / "experiments" / "extended.toml")
    study, cells, comparison = plan.plan(exp, None)
    assert (study.family, cells.family, comparison.family) == (28, 168, 48)
    assert study.level == pytest.approx(0.025 / 28) and study.n == 3
    assert math.isnan(study.detectable)  # no pilot: no noise to plan with


def test_sign_flips_where_they_can_decide_and_no_verdict_from_one_seed():
    many = plan._line("x", family=10, alpha=0.05, n=16, noise=0.01)
    assert many.method == "sign-flip" and many.smallest_p == pytest.approx(2 / 2**16)
    assert many.possible
    one = plan._line("x", family=10, alpha=0.05, n=1, noise=0.01)
    assert not one.possible and math.isnan(one.detectable)


def test_run_plan_runs_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "never"
    assert main(["run", "experiments/blog.toml", "--plan", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "a verdict is possible" in text and "80% power" in text and not out.exists()
    assert main(["run", "experiments/blog.toml", "--plan", "--pilot", str(tmp_path)]) == 2
    assert "no results folder" in capsys.readouterr().err
