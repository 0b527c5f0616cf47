"""The rules behind the verdicts, each on a case whose answer is known: the
default margin, the bootstrap intervals' level, the interquartile mean's
quartiles, Holm's step-down, how alpha is shared between the report's tables
and which test the report uses, the noise the plan gives ``nnbench compare``,
and a difference of exactly the margin."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from nnbench import compare, experiment, plan, results, stats
from nnbench.report import tables

EXP = experiment.validate(
    {
        "name": "rules",
        "data": {"dataset": "digits"},
        "model": {"hidden": [[16]]},
        "grid": {"batch_size": [32], "seeds": [1, 2, 3]},
        "budget": {"max_epochs": 3},
        "eval": {"every": 10},
        "optimizer": [{"name": "gd"}, {"name": "adam"}],
    }
)


def write(folder, accuracies, optimizer="gd"):
    """One completed run per seed (1, 2, ...) ending at these accuracies (validation and test)."""
    for seed, acc in enumerate(accuracies, start=1):
        spec = EXP.spec(optimizer, {}, hidden=(16,), batch_size=32, seed=seed)
        row = dict.fromkeys(results.METRICS, 1.0)
        row |= {"iteration": 10, "val_accuracy": acc, "test_accuracy": acc}
        results.write_run(folder, spec, [row], "completed", "", {})


def S(a, b):
    return stats.Sample(np.asarray(a, float), np.asarray(b, float), paired=True)


def test_fifty_images_lower_in_every_seed_is_worse_under_the_default_accuracy_margin(tmp_path):
    """The default margin of an accuracy is 0.002 (20 of 10,000 images): every
    seed 49 to 52 images lower is worse; every seed 9 to 11 lower is equivalent."""
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    base = np.array([0.8000, 0.8200, 0.8100, 0.8300, 0.7900])
    write(a, base)
    write(b, base - [0.0050, 0.0049, 0.0051, 0.0050, 0.0052])
    write(c, base - [0.0010, 0.0009, 0.0011, 0.0010, 0.0010])
    worse = compare.compare(a, b).table.set_index("metric").loc["val_accuracy"]
    assert worse["margin"] == pytest.approx(0.002)
    assert worse["diff"] == pytest.approx(-0.00504) and worse["verdict"] == "worse"
    close = compare.compare(a, c).table.set_index("metric").loc["val_accuracy"]
    assert close["verdict"] == "equivalent"


def test_the_iqm_interval_is_the_middle_95_percent_of_its_bootstrap(final_frame):
    """One cell, 40 runs of ``a``: 20 at chance (score 0) and 20 perfect (score 1).
    A resample with K perfect runs has the 20 middle values' mean, clip(K - 10,
    0, 20) / 20, and K is binomial(40, 1/2): P(K <= 13) = 0.019 and P(K <= 14) =
    0.040, so the 2.5th percentile is K = 14 (0.2) and by symmetry the 97.5th
    K = 26 (0.8). A 90% interval would be K = 15 and 25: (0.25, 0.75)."""
    assert scipy_stats.binom.cdf(13, 40, 0.5) < 0.025 < scipy_stats.binom.cdf(14, 40, 0.5) < 0.05
    cell = ("16", 32.0)
    frame = final_frame({("a", cell): [0.1] * 20 + [1.0] * 20, ("b", cell): [0.5] * 40})
    iqm, _ = tables.aggregates(frame, n_boot=20_000)
    row = iqm.set_index("optimizer").loc["a"]
    assert row["iqm"] == pytest.approx(0.5)
    assert (row["low"], row["high"]) == pytest.approx((0.2, 0.8))


def test_the_score_interval_is_the_middle_95_percent_of_the_bootstrap_medians():
    """B's 9 studies take 1.0, 1.3, ..., 3.4 times A's (always 1.0): a resample's
    time is the median of 9 draws, at most the j-th smallest with probability
    P(binomial(9, j/9) >= 5): 0.0014 for j = 1, 0.030 for j = 2, 0.145 for j = 3.
    So the 2.5th percentile of the time is the 2nd smallest (1.3) and the
    97.5th the 8th (3.1): the score's interval is the scores of 3.1 and 1.3
    times the fastest (a 90% one would be those of 2.8 and 1.6)."""
    cdf = [scipy_stats.binom.sf(4, 9, j / 9) for j in (1, 2, 3)]
    assert cdf[0] < 0.025 < cdf[1] < 0.05 < cdf[2]
    b_times = 1.0 + 0.3 * np.arange(9)
    study = pd.DataFrame(
        [("A", "w", k, 1.0) for k in range(9)] + [("B", "w", k, t) for k, t in enumerate(b_times)],
        columns=["submission", "workload", "study", "time"],
    )
    times = study.groupby(["submission", "workload"])["time"].median().unstack()
    ratios, rho = stats.algoperf_profile(times)
    profile = tables.Profile(times, ratios, rho, stats.algoperf_score(rho), study, "time")

    def score_at(ratio):
        one = pd.DataFrame({"w": [1.0, ratio]}, index=["A", "B"])
        return float(stats.algoperf_score(stats.algoperf_profile(one)[1])["B"])

    got = tables.score_uncertainty(profile, n_boot=20_000)
    assert got.loc["B", "score"] == pytest.approx(score_at(b_times[4]))  # the median, 2.2
    assert got.loc["B", "low"] == pytest.approx(score_at(3.1))
    assert got.loc["B", "high"] == pytest.approx(score_at(1.3))
    assert score_at(3.1) < score_at(2.8) and score_at(1.6) < score_at(1.3)
    assert got.loc["A", "low"] == got.loc["A", "high"] == 1.0


def test_the_iqm_trims_a_quarter_from_each_end_of_skewed_values():
    """On skewed values the trimmed fraction shows: the middle four of 8 values,
    (4 + 8 + 16 + 32) / 4 = 15 (a 20% trimmed mean gives 18); of 6 values the
    quartiles fall inside the 2nd and 5th, which count half: (1 + 4 + 8 + 8) / 3."""
    x = [1, 2, 4, 8, 16, 32, 64, 128]
    assert stats.iqm(x) == pytest.approx(15.0) == scipy_stats.trim_mean(x, 0.25)
    assert stats.iqm([32, 1, 16, 2, 8, 4]) == pytest.approx(7.0)
    assert stats.iqm_rows(np.array([x, x[::-1]], float)) == pytest.approx([15.0, 15.0])


def test_holm_never_rejects_a_hypothesis_while_keeping_one_with_a_smaller_p():
    """Holm's adjusted p-values are a running maximum: 0.02 and 0.024 of three
    give 3 x 0.02 = 0.06 and max(0.06, 2 x 0.024) = 0.06, so at 5% neither is
    rejected (the step-down stops at the first hypothesis it keeps)."""
    assert stats.holm([0.02, 0.024, 0.5]) == pytest.approx([0.06, 0.06, 0.5])
    assert stats.holm([0.5, 0.024, 0.02]) == pytest.approx([0.5, 0.06, 0.06])
    ps = np.random.default_rng(0).uniform(0, 0.1, 30)
    adjusted = stats.holm(ps)
    order = np.argsort(ps)
    assert np.all(np.diff(adjusted[order]) >= 0)  # monotone in the p-values


def test_with_two_tables_each_gets_half_of_alpha():
    """b above a by 0.0025, 0.004 and 0.0055 in each of two cells, for each of 3
    seeds: over the study the seeds' means are the same, t = 0.004 / (0.0015 /
    sqrt(3)) = 4.62 on 2 degrees of freedom, p = 0.044. The study table has
    alpha / 2 = 0.025 (the cell table the other half): no verdict. With one
    cell, the study is the only table and has all of alpha: b ends higher."""
    d = np.array([0.0025, 0.004, 0.0055])
    p = 2 * scipy_stats.t.sf(0.004 / (0.0015 / math.sqrt(3)), 2)
    assert 0.025 < p < 0.05
    cells = [("25", 50.0), ("128", 50.0)]
    finals = {}
    for cell in cells:
        finals[("a", cell)] = dict.fromkeys((1, 2, 3), 0.9)
        finals[("b", cell)] = dict(zip((1, 2, 3), (0.9 + d).tolist()))
    study, per_cell = tables.verdicts_of(finals)
    row = study.iloc[0]
    assert row["test"] == "t (floored)" and row["p_holm"] == pytest.approx(p, rel=1e-6)
    assert row["verdict"] == "" and (per_cell["verdict"] == "").all()
    one = {k: v for k, v in finals.items() if k[1] == cells[0]}
    study, per_cell = tables.verdicts_of(one)
    assert per_cell.empty and study.iloc[0]["verdict"] == "b"


def test_the_report_chooses_its_test_at_holms_first_level():
    """Three optimizers, one cell, 6 seeds: Holm's first level is 0.05 / 3 =
    0.0167, which no sign-flip test of 6 seeds reaches (2 / 2^6 = 0.031), so
    the floored t-test decides, and b, 0.02 above a in every seed (give or take
    one image), ends higher than a and c."""
    cell = ("25", 50.0)
    base = np.array([0.950, 0.952, 0.949, 0.951, 0.953, 0.948])
    finals = {
        ("a", cell): dict(enumerate(base.tolist(), start=1)),
        ("b", cell): dict(enumerate((base + 0.02 + 0.0001 * np.arange(6)).tolist(), start=1)),
        ("c", cell): dict(enumerate(base.tolist(), start=1)),
    }
    study, _ = tables.verdicts_of(finals)
    got = {(r["a"], r["b"]): r for r in study.to_dict("records")}
    assert got[("a", "b")]["test"] == "t (floored)" and got[("a", "b")]["verdict"] == "b"
    assert got[("b", "c")]["verdict"] == "b" and got[("a", "c")]["verdict"] == ""


def test_the_plan_gives_compare_the_noise_of_two_independent_draws(tmp_path):
    """A pilot where gd's three seeds spread by 0.02 and adam's by 0.01: one
    configuration's B - A in ``nnbench compare`` is the difference of two
    independent draws, whose spread is sqrt(2) times a seed's, the median
    0.015; the pair's paired differences (0.10, 0.09, 0.08) spread by 0.01."""
    write(tmp_path, [0.80, 0.82, 0.84], "gd")
    write(tmp_path, [0.90, 0.91, 0.92], "adam")
    pair, comparison = plan.plan(EXP, tmp_path)
    assert pair.noise == pytest.approx(0.01)
    assert comparison.noise == pytest.approx(0.015 * math.sqrt(2))
    assert comparison.detectable == pytest.approx(
        stats.resolution(0.015 * math.sqrt(2), 3, 0.05 / 2, 0.8, sides=2)
    )


def test_a_mean_difference_of_exactly_the_margin_is_enough():
    """Better or worse takes "no difference" rejected and a mean difference of
    at least the margin: differences 0.125, 0.25, 0.25, 0.375 (exact in binary,
    mean exactly 0.25, p = 0.016) with a margin of 0.25 are better, and worse
    the other way round."""
    a = np.full(4, 0.5)
    b = a + np.array([0.125, 0.25, 0.25, 0.375])
    up = stats.decide([S(a, b)], [0.25], [0.0], [0.0])[0]
    assert up.mean == 0.25 and up.p_holm < 0.05 and up.verdict == "better"
    down = stats.decide([S(b, a)], [0.25], [0.0], [0.0])[0]
    assert down.verdict == "worse"
