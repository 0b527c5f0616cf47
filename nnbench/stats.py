"""The statistics behind nnbench's verdicts, each named for what it computes.

- :func:`bootstrap_interval`: a percentile bootstrap interval of a mean over
  seeds (exact, by enumerating every resample, for up to 10 values). It
  stays inside the range of the values, so an accuracy's interval never
  leaves [0, 1].
- :func:`paired_test`: seed-paired differences between two sets of runs:
  the mean difference, its Student's t interval and two-sided p-value
  (``scipy.stats.ttest_1samp``), and the exact sign-flip permutation p-value.
- :func:`expected_max`: the expected best validation score after ``k``
  random trials, and its standard deviation (Dodge et al. 2019, "Show Your
  Work", eq. 1, sampling with replacement from the observed trials).
- :func:`time_to_target`: when a run first reaches a target, interpolated
  linearly between the two evaluations around the crossing.
- :func:`algoperf_times` and :func:`algoperf_profile`: MLCommons AlgoPerf's
  performance profiles, as its ``scoring/performance_profile.py`` computes
  them (see those functions for the rule, step by step).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

# Up to this many values, the bootstrap enumerates every resample (there are
# C(2n - 1, n): 92,378 for n = 10); beyond it, Monte Carlo with a fixed seed.
EXACT_BOOTSTRAP_MAX_N = 10
BOOTSTRAP_RESAMPLES = 20_000
# AlgoPerf: a submission slower than this many times the fastest on a
# workload is counted as not reaching the target there.
ALGOPERF_MAX_RATIO = 4.0


# -- intervals ---------------------------------------------------------------------------


def _bootstrap_means(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct bootstrap mean of ``values`` with its probability (exact),
    or Monte Carlo means with equal weights."""
    n = len(values)
    if n <= EXACT_BOOTSTRAP_MAX_N:
        means, weights = [], []
        log_n_fact = math.lgamma(n + 1)
        for combo in itertools.combinations_with_replacement(range(n), n):
            counts = np.bincount(combo, minlength=n)
            # multinomial probability of this multiset among the n^n resamples
            log_p = log_n_fact - sum(math.lgamma(c + 1) for c in counts) - n * math.log(n)
            means.append(float(counts @ values) / n)
            weights.append(math.exp(log_p))
        return np.array(means), np.array(weights)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    return values[idx].mean(axis=1), np.full(BOOTSTRAP_RESAMPLES, 1.0 / BOOTSTRAP_RESAMPLES)


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    """The smallest x whose cumulative weight reaches q (the inverse CDF)."""
    order = np.argsort(x, kind="stable")
    cumulative = np.cumsum(w[order])
    i = int(np.searchsorted(cumulative, q * cumulative[-1] - 1e-12))
    return float(x[order][min(i, len(x) - 1)])


def bootstrap_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (NaN dropped).

    ``(nan, nan)`` for fewer than two values: one seed says nothing about spread.
    """
    x = np.asarray([v for v in values if v == v], dtype=float)
    if len(x) < 2:
        return math.nan, math.nan
    means, weights = _bootstrap_means(x)
    alpha = (1 - level) / 2
    return _weighted_quantile(means, weights, alpha), _weighted_quantile(means, weights, 1 - alpha)


# -- paired comparisons -------------------------------------------------------------------


@dataclass(frozen=True)
class PairedResult:
    """Seed-paired differences ``b - a``."""

    n: int
    mean: float  # mean difference
    low: float  # Student's t interval of the mean difference
    high: float
    p_t: float  # two-sided paired t-test
    p_sign_flip: float  # two-sided exact sign-flip permutation test
    identical: bool  # every difference is exactly 0


def paired_test(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedResult:
    """Compare ``b`` with ``a``, value by value (the same seeds, in the same order).

    The t interval and p-value assume roughly normal differences; the
    sign-flip test assumes only that, with no real difference, a difference
    is as likely to be positive as negative (exact: all ``2^n`` sign
    patterns, for up to 16 pairs; Monte Carlo with a fixed seed beyond).
    """
    d = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if d.shape != (len(a),) or len(a) != len(b):
        raise ValueError("paired values need the same length")
    n = len(d)
    if n == 0:
        return PairedResult(0, math.nan, math.nan, math.nan, math.nan, math.nan, False)
    mean = float(d.mean())
    identical = bool(np.all(d == 0))
    if n < 2 or identical or float(d.std(ddof=1)) == 0.0:
        same = 1.0 if identical else 0.0
        p = 1.0 if identical else (math.nan if n < 2 else 0.0)
        return PairedResult(n, mean, mean, mean, p, same if n >= 2 else math.nan, identical)
    sem = float(d.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem
    p_t = float(stats.ttest_1samp(d, 0.0).pvalue)
    return PairedResult(n, mean, mean - half, mean + half, p_t, sign_flip_p(d), False)


def sign_flip_p(d: np.ndarray) -> float:
    """Two-sided p-value of the mean of ``d`` under random sign flips."""
    d = np.asarray(d, dtype=float)
    n = len(d)
    observed = abs(d.mean())
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(BOOTSTRAP_RESAMPLES, n))
    flipped = np.abs(signs @ d) / n
    return float(np.mean(flipped >= observed - 1e-12))


# -- tuning curves --------------------------------------------------------------------------


def expected_max(values: Sequence[float], k_max: int | None = None) -> pd.DataFrame:
    """Expected best of ``k`` trials drawn with replacement from ``values``, k = 1..n.

    Dodge et al. 2019, eq. 1: with the values sorted, ``v_(1) <= ... <= v_(n)``,
    ``E[max_k] = sum_i v_(i) [(i/n)^k - ((i-1)/n)^k]``; the standard deviation
    is from the second moment the same way. Columns: ``k``, ``mean``, ``std``.
    """
    v = np.sort(np.asarray([x for x in values if x == x], dtype=float))
    n = len(v)
    if n == 0:
        return pd.DataFrame(columns=["k", "mean", "std"])
    i = np.arange(1, n + 1)
    rows = []
    for k in range(1, (k_max or n) + 1):
        p = (i / n) ** k - ((i - 1) / n) ** k
        mean = float(p @ v)
        var = max(float(p @ v**2) - mean**2, 0.0)
        rows.append({"k": k, "mean": mean, "std": math.sqrt(var)})
    return pd.DataFrame(rows)


# -- time to target -----------------------------------------------------------------------


def time_to_target(
    x: Sequence[float], score: Sequence[float], target: float, interpolate: bool = True
) -> tuple[float, int]:
    """When ``score`` first reaches ``target``, on the axis ``x``; and at which evaluation.

    Interpolated linearly between the last evaluation below the target and
    the first at or above it (``interpolate=False``: the first one's x). NaN
    and -1 when the target is never reached.
    """
    x = np.asarray(x, dtype=float)
    s = np.asarray(score, dtype=float)
    hit = np.flatnonzero(s >= target)
    if not len(hit):
        return math.nan, -1
    j = int(hit[0])
    if j == 0 or not interpolate or not np.isfinite(s[j - 1]):
        return float(x[j]), j
    frac = (target - s[j - 1]) / (s[j] - s[j - 1])
    return float(x[j - 1] + frac * (x[j] - x[j - 1])), j


# -- AlgoPerf's performance profiles ---------------------------------------------------------


def algoperf_times(
    trials: pd.DataFrame, target: pd.Series | float, time_col: str = "train_seconds"
) -> pd.DataFrame:
    """Time to target per (submission, workload), by AlgoPerf's rule.

    ``trials`` has one row per evaluation, with columns ``submission``,
    ``workload``, ``study``, ``trial``, ``eval_index``, ``score`` and
    ``time_col``. ``target`` is a number or a Series indexed by workload.

    The rule of ``get_workloads_time_to_target`` and ``get_best_trial_index``:
    in each study, among the trials that reach the target, take the one that
    reaches it at the earliest *evaluation index* (the first such trial on a
    tie), and its ``time_col`` at that evaluation; a study where no trial
    reaches the target counts as infinite. The workload's time is the median
    over studies, infinities included. Returns a table of submissions (rows)
    by workloads (columns).
    """
    records = []
    for (sub, work), group in trials.groupby(["submission", "workload"], sort=True):
        tgt = target[work] if isinstance(target, pd.Series) else target
        times = []
        for _, study in group.groupby("study", sort=True):
            best = None  # (eval index, trial order, time)
            for order, (_, trial) in enumerate(study.groupby("trial", sort=True)):
                trial = trial.sort_values("eval_index")
                reached = trial[trial["score"] >= tgt]
                if reached.empty:
                    continue
                first = reached.iloc[0]
                key = (int(first["eval_index"]), order)
                if best is None or key < best[:2]:
                    best = (*key, float(first[time_col]))
            times.append(best[2] if best is not None else math.inf)
        records.append({"submission": sub, "workload": work, "time": float(np.median(times))})
    frame = pd.DataFrame(records, columns=["submission", "workload", "time"])
    return frame.pivot(index="submission", columns="workload", values="time")


def algoperf_profile(
    times: pd.DataFrame,
    taus: Sequence[float] | None = None,
    max_ratio: float = ALGOPERF_MAX_RATIO,
    n_workloads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Performance profiles from a submissions x workloads table of times to target.

    The rule of ``compute_performance_profiles``: a time more than
    ``max_ratio`` times the workload's fastest becomes infinite; every time
    is divided by the workload's fastest; ``rho(tau)`` is the fraction of the
    ``n_workloads`` workloads (all columns by default) whose ratio is at most
    ``tau``. Returns the ratios and the profile (submissions x taus, tau
    from 1 to the largest finite ratio by default, 100 points).
    """
    times = times.astype(float)
    best = times.min(axis=0)
    times = times.mask(times.gt(max_ratio * best, axis=1), math.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = times.div(times.min(axis=0), axis=1)
    if taus is None:
        finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
        top = float(finite.max()) if finite.size else 1.0
        taus = np.linspace(1.0, max(top, 1.0 + 1e-9), 100)
    n = n_workloads or times.shape[1]
    rho = pd.DataFrame({tau: (ratios <= tau).sum(axis=1) / n for tau in taus}, index=ratios.index)
    return ratios, rho


def algoperf_score(rho: pd.DataFrame) -> pd.Series:
    """AlgoPerf's leaderboard score: the integral of the profile over tau,
    divided by the range of tau (``compute_leaderboard_score(normalize=True)``)."""
    taus = np.asarray(rho.columns, dtype=float)
    if len(taus) < 2:
        return pd.Series(rho.iloc[:, 0].to_numpy(), index=rho.index)
    area = np.trapezoid(rho.to_numpy(), x=taus, axis=1)
    return pd.Series(area / (taus.max() - taus.min()), index=rho.index)
