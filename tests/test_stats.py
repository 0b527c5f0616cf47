"""Every statistic on a case whose answer is worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from nnbench import stats


def test_bootstrap_interval_exact_for_small_samples():
    # two values: resample means 0 (prob 1/4), 0.5 (1/2), 1 (1/4)
    assert stats.bootstrap_interval([0.0, 1.0]) == (0.0, 1.0)
    assert stats.bootstrap_interval([0.0, 1.0], level=0.5) == (0.0, 0.5)
    # three values: 0.7 and 0.9 each have probability 1/27 > 2.5%
    assert stats.bootstrap_interval([0.8, 0.9, 0.7]) == pytest.approx((0.7, 0.9))
    assert all(math.isnan(v) for v in stats.bootstrap_interval([0.5]))
    assert stats.bootstrap_interval([0.5, float("nan"), 0.5]) == (0.5, 0.5)


def test_bootstrap_interval_by_sampling_beyond_ten_values():
    values = np.linspace(0.8, 0.9, 12)
    low, high = stats.bootstrap_interval(values)
    assert 0.8 < low < values.mean() < high < 0.9
    assert stats.bootstrap_interval(values) == (low, high)  # a fixed seed: reproducible


def test_paired_test_against_scipy_and_by_hand():
    a = [0.5, 0.6, 0.7]
    b = [1.5, 2.6, 3.7]  # differences 1, 2, 3
    r = stats.paired_test(a, b)
    assert r.n == 3 and r.mean == pytest.approx(2.0)
    assert r.p_t == pytest.approx(scipy_stats.ttest_rel(b, a).pvalue)
    half = scipy_stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd of (1, 2, 3) is 1
    assert (r.low, r.high) == pytest.approx((2 - half, 2 + half))
    # sign flips: of the 8 patterns only +++ and --- reach |mean| >= 2
    assert r.p_sign_flip == pytest.approx(2 / 8)
    same = stats.paired_test(a, a)
    assert same.identical and same.p_t == 1.0 and same.mean == 0.0
    shift = stats.paired_test(a, [x + 0.01 for x in a])  # every seed exactly 0.01 higher
    assert not shift.identical and shift.mean == pytest.approx(0.01) and shift.p_t == 0.0


def test_expected_max_of_k_trials_by_hand():
    curve = stats.expected_max([3.0, 1.0, 2.0]).set_index("k")
    # k = 1: the mean, 2; its variance: E[v^2] - 4 = 14/3 - 4 = 2/3
    assert curve.loc[1, "mean"] == pytest.approx(2.0)
    assert curve.loc[1, "std"] == pytest.approx(math.sqrt(2 / 3))
    # k = 2: 1 (1/9) + 2 (4/9 - 1/9) + 3 (1 - 4/9) = 22/9
    assert curve.loc[2, "mean"] == pytest.approx(22 / 9)
    assert list(curve.index) == [1, 2, 3]
    assert curve["mean"].is_monotonic_increasing


def test_time_to_target_is_interpolated_between_evaluations():
    x, s = [0, 10, 20], [0.1, 0.5, 0.9]
    assert stats.time_to_target(x, s, 0.7) == (15.0, 2)  # 10 + 10 * (0.2 / 0.4)
    assert stats.time_to_target(x, s, 0.7, interpolate=False) == (20.0, 2)
    assert stats.time_to_target(x, s, 0.05) == (0.0, 0)
    value, index = stats.time_to_target(x, s, 0.95)
    assert math.isnan(value) and index == -1


def evaluations(sub, work, study, trial, scores, times):
    return [
        {
            "submission": sub,
            "workload": work,
            "study": study,
            "trial": trial,
            "eval_index": i,
            "score": s,
            "train_seconds": t,
        }
        for i, (s, t) in enumerate(zip(scores, times))
    ]


def crafted_trials() -> pd.DataFrame:
    """A hand-made table, traced through AlgoPerf's scoring/performance_profile.py.

    Target 0.8. A on w1:
      study 0: trial 0 reaches it at evaluation 2 (30 s), trial 1 at evaluation 1
        (25 s): the earliest *index* wins, trial 1: 25 s;
      study 1: both trials reach it at evaluation 1, trial 0 at 20 s, trial 1 at
        2 s: on a tie of indices the first trial wins (idxmin), 20 s, not 2 s;
      study 2: no trial reaches it: inf.
      median(25, 20, inf) = 25.
    B on w1: one trial per study, at 50, 60 and 40 s: median 50.
    A on w2: 20 s in every study: 20. B on w2: 100, 90, 110: median 100, more than
    4 x 20, so inf.
    """
    t = [10, 20, 30, 40]
    rows = []
    rows += evaluations("A", "w1", 0, 0, [0.1, 0.5, 0.9, 0.9], t)
    rows += evaluations("A", "w1", 0, 1, [0.1, 0.85, 0.9, 0.9], [5, 25, 45, 65])
    rows += evaluations("A", "w1", 1, 0, [0.1, 0.85, 0.9, 0.9], t)
    rows += evaluations("A", "w1", 1, 1, [0.1, 0.85, 0.9, 0.9], [1, 2, 3, 4])
    rows += evaluations("A", "w1", 2, 0, [0.1, 0.2, 0.3, 0.4], t)
    rows += evaluations("A", "w1", 2, 1, [0.1, 0.2, 0.3, 0.79], t)
    for study, time in enumerate((50, 60, 40)):
        rows += evaluations("B", "w1", study, 0, [0.1, 0.9], [0, time])
    for study in range(3):
        rows += evaluations("A", "w2", study, 0, [0.1, 0.9], [0, 20])
    for study, time in enumerate((100, 90, 110)):
        rows += evaluations("B", "w2", study, 0, [0.1, 0.9], [0, time])
    return pd.DataFrame(rows)


def test_algoperf_times_follow_its_rule():
    times = stats.algoperf_times(crafted_trials(), 0.8)
    assert times.loc["A", "w1"] == 25.0
    assert times.loc["B", "w1"] == 50.0
    assert times.loc["A", "w2"] == 20.0 and times.loc["B", "w2"] == 100.0
    # a median over studies that counts a failure as infinite, as AlgoPerf's np.median
    two = crafted_trials().query("submission == 'B' and workload == 'w1' and study < 2")
    two.loc[two["study"] == 1, "score"] = 0.0
    assert math.isinf(stats.algoperf_times(two, 0.8).loc["B", "w1"])


def test_algoperf_profile_cut_off_ratios_and_score():
    times = stats.algoperf_times(crafted_trials(), 0.8)
    ratios, rho = stats.algoperf_profile(times)
    # w1: A is the fastest (25), B takes 50: ratio 2. w2: B's 100 > 4 x 20 is cut to inf.
    assert ratios.loc["A", "w1"] == 1.0 and ratios.loc["B", "w1"] == 2.0
    assert ratios.loc["A", "w2"] == 1.0 and math.isinf(ratios.loc["B", "w2"])
    taus = np.asarray(rho.columns)
    assert taus[0] == 1.0 and taus[-1] == 2.0 and len(taus) == 100  # up to the largest ratio
    assert (rho.loc["A"] == 1.0).all()  # every workload within tau = 1
    assert (rho.loc["B"].iloc[:-1] == 0.0).all() and rho.loc["B"].iloc[-1] == 0.5
    score = stats.algoperf_score(rho)
    assert score["A"] == pytest.approx(1.0)
    # B: 0 until the last step of the grid, where it climbs to 0.5: a triangle
    assert score["B"] == pytest.approx(0.5 * 0.5 / 99)
    # a workload no one solved divides 0 by 0: it counts for no one
    none = pd.DataFrame({"w1": [1.0, 2.0], "w3": [math.inf, math.inf]}, index=["A", "B"])
    _, rho = stats.algoperf_profile(none)
    assert rho.loc["A"].iloc[-1] == 0.5
