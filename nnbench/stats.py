"""The statistics behind nnbench's verdicts, each named for what it computes.

- :func:`t_interval`: Student's t interval of a mean over seeds, clipped to
  the metric's range (and saying so); it covers the mean 95% of the time at
  3, 5 and 10 normal values (``tests/test_stats.py`` simulates it), where a
  percentile bootstrap of 3 values is their range and covers 75%.
- :func:`paired_test`: seed-paired differences between two sets of runs:
  the mean difference, its Student's t interval and two-sided p-value
  (``scipy.stats.ttest_1samp``), and the exact sign-flip permutation p-value.
- :func:`holm`: Holm's step-down adjustment of p-values, for a command that
  runs many tests; :func:`seeds_needed` and :func:`resolution`: the power of
  a paired t-test (how many seeds find a given change, and what change a
  given number of seeds finds).
- :func:`decide`: ``nnbench compare``'s verdicts over many configurations:
  identical within rounding, equivalent within a margin, better, worse or
  inconclusive, with Holm's correction over the configurations.
- :func:`expected_max`: the expected best validation score after ``k``
  random trials, and its standard deviation (Dodge et al. 2019, "Show Your
  Work", eq. 1, sampling with replacement from the observed trials).
- :func:`time_to_target`: when a run first reaches a target, interpolated
  linearly between the two evaluations around the crossing.
- :func:`algoperf_times`, :func:`algoperf_profile` and
  :func:`algoperf_score`: MLCommons AlgoPerf's performance profiles and
  leaderboard score, as its ``scoring/performance_profile.py`` and
  ``scoring/score_submissions.py`` compute them (tau from 1 to 4 on 100
  points, the trapezoid over that range, divided by 3);
  :func:`algoperf_bootstrap`: the score's spread when seeds are resampled
  within each workload.
- :func:`iqm` and :func:`probability_of_improvement`: rliable's aggregates
  over tasks (Agarwal et al. 2021), with :func:`stratified_bootstrap`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

BOOTSTRAP_RESAMPLES = 20_000  # Monte Carlo sign flips beyond 20 pairs
# AlgoPerf: a submission slower than this many times the fastest on a
# workload is counted as not reaching the target there, and the score
# integrates the profile over tau in [1, ALGOPERF_MAX_TAU] on this many points.
ALGOPERF_MAX_RATIO = 4.0
ALGOPERF_MAX_TAU = 4.0
ALGOPERF_POINTS = 100


# -- intervals ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A mean over seeds with its interval; ``clipped`` when the interval was cut
    to the metric's range (an accuracy's to [0, 1])."""

    mean: float
    low: float
    high: float
    n: int
    clipped: bool = False


def t_interval(
    values: Sequence[float],
    level: float = 0.95,
    bounds: tuple[float | None, float | None] = (None, None),
) -> Interval:
    """Student's t interval of the mean of ``values`` (NaN dropped), clipped to
    ``bounds``: ``mean +- t(1 - (1 - level) / 2, n - 1) * sd / sqrt(n)``.

    Exact for normal values; NaN bounds for fewer than two values (one seed
    says nothing about spread).
    """
    x = np.asarray([v for v in values if v == v], dtype=float)
    n = len(x)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Interval(mean, math.nan, math.nan, n)
    half = float(special.stdtrit(n - 1, 0.5 + level / 2)) * float(x.std(ddof=1)) / math.sqrt(n)
    low, high = mean - half, mean + half
    lo_bound, hi_bound = bounds
    clipped = False
    if lo_bound is not None and low < lo_bound:
        low, clipped = float(lo_bound), True
    if hi_bound is not None and high > hi_bound:
        high, clipped = float(hi_bound), True
    return Interval(mean, low, high, n, clipped)


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


def sign_flip_p(d: np.ndarray, weights: np.ndarray | None = None, exact_up_to: int = 20) -> float:
    """Two-sided p-value of the (weighted) sum of ``d`` under random sign flips.

    The null hypothesis: each difference is as likely to be positive as
    negative, independently (the two sides of every pair are exchangeable).
    Exact over all ``2^n`` sign patterns up to ``exact_up_to`` values (the
    smallest possible p-value is ``2 / 2^n``: 0.25 at 3 pairs); beyond, a
    Monte Carlo estimate with a fixed seed, ``(b + 1) / (B + 1)``, which never
    falls below what the patterns drawn can show. Ties count as extreme, so
    discrete values (accuracies in steps of one image) keep the test exact.
    """
    v = np.asarray(d, dtype=float) * (1.0 if weights is None else np.asarray(weights, float))
    n = len(v)
    if n == 0:
        return math.nan
    observed = abs(float(v.sum()))
    cut = observed - 1e-9 * max(observed, float(np.abs(v).sum())) - 1e-300
    if n > exact_up_to:
        signs = np.random.default_rng(0).choice((1.0, -1.0), size=(BOOTSTRAP_RESAMPLES, n))
        extreme = int(np.count_nonzero(np.abs(signs @ v) >= cut))
        return (extreme + 1) / (BOOTSTRAP_RESAMPLES + 1)
    head = min(n, 14)
    bits = (np.arange(2**head)[:, None] >> np.arange(head)) & 1
    base = (1.0 - 2.0 * bits) @ v[:head]  # every pattern of the first values
    tail = np.arange(n - head)
    extreme = 0
    for t in range(2 ** (n - head)):  # each pattern of the rest, added to all of those
        rest = float((1.0 - 2.0 * ((t >> tail) & 1)) @ v[head:]) if len(tail) else 0.0
        extreme += int(np.count_nonzero(np.abs(base + rest) >= cut))
    return extreme / 2**n


def _t_power_need(n: int, noise: float, alpha: float, power: float, sides: int) -> float:
    """The smallest mean difference a paired t-test with ``n`` pairs finds with
    probability ``power`` (normal approximation to the noncentral t)."""
    df = n - 1
    quantile = float(stats.t.ppf(1 - alpha / sides, df)) + float(stats.t.ppf(power, df))
    return quantile * noise / math.sqrt(n)


def seeds_needed(
    noise: float, effect: float, alpha: float, power: float = 0.8, sides: int = 1
) -> int:
    """The fewest seeds with which a paired t-test at ``alpha`` (one- or two-sided)
    finds a mean change of ``effect`` with probability ``power``, when the paired
    differences spread by ``noise`` (their standard deviation) without a change."""
    if noise <= 0:
        return 2
    for n in range(2, 10_000):
        if _t_power_need(n, noise, alpha, power, sides) <= effect:
            return n
    return 10_000


def resolution(noise: float, n: int, alpha: float, power: float = 0.8, sides: int = 1) -> float:
    """The smallest mean change ``n`` seeds find with probability ``power`` (see
    :func:`seeds_needed`); infinite below two seeds."""
    if n < 2:
        return math.inf
    return _t_power_need(n, noise, alpha, power, sides)


# -- verdicts over many configurations ---------------------------------------------------


def value_step(values: Sequence[float], largest: int = 1_000_000) -> float:
    """The step a metric moves in, when it counts whole examples: ``1 / n`` for
    accuracies over ``n`` examples (the least common multiple of the values'
    denominators, each found as the fraction with denominator at most
    ``largest`` nearest it); 0 for a metric with no such step (a cost, a time).

    A noise floor the data cannot drive to zero: two seeds that both moved by one
    image moved by this much, however alike they look in floating point.
    """
    from fractions import Fraction

    lcm = 1
    for v in values:
        if not math.isfinite(v):
            continue
        f = Fraction(float(v)).limit_denominator(largest)
        if abs(float(f) - v) > 1e-12 * max(1.0, abs(v)):
            return 0.0  # not a count over a fixed number of examples
        lcm = math.lcm(lcm, f.denominator)
        if lcm > largest:
            return 0.0
    return 1.0 / lcm if lcm > 1 else 0.0


@dataclass(frozen=True)
class TTest:
    """A t-test of ``b - a`` (paired or Welch's) with a noise floor.

    The spread it used (``se`` times the square root of the runs) is the seeds'
    own, or the noise floor where that is larger (``floored``): a spread the
    data cannot drive to zero, so that
    equal moves of every seed are not certainty and one example more in one
    seed does not turn "can't tell" into "certain". ``p`` is the two-sided
    p-value of "no difference"; ``p_equiv`` that of "a difference of at least
    the margin" (two one-sided tests, Schuirmann 1987; NaN without a margin).
    """

    test: str  # "paired t" or "Welch t"
    n: int  # pairs, or the runs of both sides
    mean: float  # mean difference b - a
    low: float  # its 95% t interval, with the floored spread
    high: float
    se: float
    df: float
    p: float
    p_equiv: float
    floored: bool


def _t_result(
    test: str, n: int, mean: float, se: float, df: float, margin: float, floored: bool
) -> TTest:
    half = float(special.stdtrit(df, 0.975)) * se
    p = float(2 * special.stdtr(df, -abs(mean) / se))
    p_equiv = math.nan
    if margin > 0:
        above = float(special.stdtr(df, -(mean + margin) / se))  # H0: mean <= -margin
        below = float(special.stdtr(df, (mean - margin) / se))  # H0: mean >= margin
        p_equiv = max(above, below)
    return TTest(test, n, mean, mean - half, mean + half, se, df, p, p_equiv, floored)


def _no_spread(test: str, n: int, mean: float, df: float, margin: float) -> TTest:
    """Values with no spread and no floor (a metric with no step, repeated
    exactly): the difference is known, and so are both answers."""
    p_equiv = (0.0 if abs(mean) < margin else 1.0) if margin > 0 else math.nan
    return TTest(test, n, mean, mean, mean, 0.0, df, float(mean == 0), p_equiv, False)


def floored_t(d: Sequence[float], floor: float = 0.0, margin: float = 0.0) -> TTest | None:
    """Student's one-sample t-test of the paired differences ``d`` with the
    spread ``max(sd(d), floor)``; None below two differences.

    With the floor at most the true spread the test is exact for normal
    differences; a floor above it makes the test conservative, never
    anticonservative. ``tests/test_stats.py`` simulates its error rate for
    accuracies in steps of one example, where the unfloored test is not valid.
    """
    x = np.asarray(d, dtype=float)
    n = len(x)
    if n < 2:
        return None
    sd = float(x.std(ddof=1))
    floored = floor > sd
    se = max(sd, floor) / math.sqrt(n)
    mean = float(x.mean())
    if se == 0:  # every difference the same and no floor: the difference is known
        return _no_spread("paired t", n, mean, n - 1, margin)
    return _t_result("paired t", n, mean, se, n - 1, margin, floored)


def welch_t(
    a: Sequence[float], b: Sequence[float], floor: float = 0.0, margin: float = 0.0
) -> TTest | None:
    """Welch's unequal-variance t-test of ``mean(b) - mean(a)`` for runs with no
    seed in common, each side's spread at least ``floor``; None below two runs
    a side. Degrees of freedom by Welch-Satterthwaite."""
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(xa), len(xb)
    if na < 2 or nb < 2:
        return None
    va, vb = float(xa.var(ddof=1)), float(xb.var(ddof=1))
    floored = floor**2 > min(va, vb)
    va, vb = max(va, floor**2) / na, max(vb, floor**2) / nb
    se = math.sqrt(va + vb)
    mean = float(xb.mean() - xa.mean())
    if se == 0:
        return _no_spread("Welch t", na + nb, mean, na + nb - 2, margin)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return _t_result("Welch t", na + nb, mean, se, df, margin, floored)


def location_test(d: Sequence[float], floor: float, level: float) -> tuple[float, str]:
    """The two-sided p-value of "no difference" for differences ``d`` (independent
    units), and which test gave it.

    The exact sign-flip test (:func:`sign_flip_p`: no normality assumed) when its
    smallest possible p-value, ``2 / 2^n``, is at most ``level`` (the smallest
    level a multiple-test correction will ask of it); else, where no sign-flip
    test could ever decide, :func:`floored_t`. The choice depends on ``n`` and
    ``level`` only, never on the values, so either way the error rate holds.
    """
    x = np.asarray(d, dtype=float)
    if len(x) == 0:
        return math.nan, ""
    if choose_test(len(x), level) == "sign-flip":
        return (1.0 if np.all(x == 0) else sign_flip_p(x)), "sign-flip"
    result = floored_t(x, floor)
    if result is None:
        return math.nan, ""
    return result.p, "t (floored)"


def choose_test(n: int, level: float) -> str:
    """Which test :func:`location_test` uses for ``n`` differences at ``level``: the
    sign-flip test when its smallest p-value, ``2 / 2^n``, reaches ``level``, else
    the floored t-test."""
    return "sign-flip" if 2.0 / 2**n <= level else "t (floored)"


def smallest_p(n: int, test: str) -> float:
    """The smallest p-value ``test`` can give with ``n`` independent differences:
    ``2 / 2^n`` for the sign-flip test, 0 (in the limit) for a t-test of 2 or more."""
    if test == "sign-flip":
        return 2.0 / 2**n if n else 1.0
    return 0.0 if n >= 2 else 1.0


def holm(pvalues: Sequence[float], most_true: int | None = None) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, "A simple sequentially
    rejective multiple test procedure").

    Rejecting every test whose adjusted p-value is below ``alpha`` keeps the
    probability of any false rejection among them at most ``alpha``, whatever
    the dependence between the tests. NaN p-values (no test) stay NaN and do
    not count. ``most_true``: at most this many of the hypotheses can be true
    together (logically related ones, such as "no difference" and "a difference
    beyond the margin" of one configuration), so no step multiplies by more
    (Shaffer 1986's refinement of Holm's method, with this bound at every step).
    """
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.full(p.shape, math.nan)
    tested = np.flatnonzero(np.isfinite(p))
    m = len(tested)
    cap = m if most_true is None else max(1, min(m, most_true))
    running = 0.0
    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):
        running = max(running, min(1.0, min(m - rank, cap) * float(p[i])))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Decision:
    """A verdict on one configuration's values ``a`` and ``b``."""

    verdict: str
    test: str  # "paired t", "Welch t", or "" (not tested)
    n: int
    mean: float  # mean difference b - a
    low: float  # its 95% t interval (the floored spread)
    high: float
    p: float  # two-sided, "no difference" (NaN when not tested)
    p_holm: float  # adjusted over the family
    p_equiv: float  # two one-sided tests of "within the margin"
    p_equiv_holm: float
    margin: float
    floor: float  # the noise floor the test used


@dataclass(frozen=True)
class Sample:
    """One configuration's values: ``a`` and ``b`` paired by seed (``paired``), or
    the runs of each side with no seed in common."""

    a: Sequence[float]
    b: Sequence[float]
    paired: bool = True


def decide(
    samples: Sequence[Sample],
    margins: Sequence[float],
    floors: Sequence[float],
    tolerances: Sequence[float | Sequence[float]],
    alpha: float = 0.05,
    higher_better: bool = True,
) -> list[Decision]:
    """``nnbench compare``'s verdicts on many configurations, as one family.

    1. *identical* (paired only): every ``|b - a|`` within its tolerance (what
       rounding does); never tested, whatever the number of seeds.
    2. The others get a t-test (:func:`floored_t` on the paired differences,
       :func:`welch_t` for runs with no seed in common), the spread floored at
       the configuration's noise floor: two hypotheses each, "no difference"
       (two-sided) and "a difference of at least the margin" (two one-sided
       tests). Holm's correction over all of them, with Shaffer's bound: the two
       of one configuration cannot both be true, so at most one per
       configuration is; the probability of any false *better*, *worse* or
       *equivalent* in the whole family is at most ``alpha``.
    3. *better* / *worse*: "no difference" rejected and a mean difference of at
       least the margin, by its sign; *equivalent*: "beyond the margin"
       rejected; else *inconclusive*: the seeds cannot tell.

    The margin is never estimated from the values tested: it is given.
    """
    decisions: list[Decision] = []
    tests: list[tuple[int, TTest]] = []
    for i, s in enumerate(samples):
        margin, floor = float(margins[i]), float(floors[i])
        a, b = np.asarray(s.a, dtype=float), np.asarray(s.b, dtype=float)
        nan = math.nan
        base = Decision("inconclusive", "", 0, nan, nan, nan, nan, nan, nan, nan, margin, floor)
        if s.paired:
            d = b - a
            base = _replace(base, n=len(d), mean=float(d.mean()) if len(d) else nan)
            tol = np.broadcast_to(np.asarray(tolerances[i], dtype=float), d.shape)
            if len(d) and np.all(np.abs(d) <= tol):
                decisions.append(_replace(base, verdict="identical"))
                continue
            result = floored_t(d, floor, margin)
        else:
            base = _replace(base, n=len(a) + len(b))
            if len(a) and len(b):
                base = _replace(base, mean=float(b.mean() - a.mean()))
            result = welch_t(a, b, floor, margin)
        if result is not None:
            tests.append((i, result))
            base = _replace(base, test=result.test, n=result.n, mean=result.mean,
                            low=result.low, high=result.high, p=result.p,
                            p_equiv=result.p_equiv)  # fmt: skip
        decisions.append(base)
    ps = [t.p for _, t in tests] + [t.p_equiv for _, t in tests]
    adjusted = holm(ps, most_true=len(tests)) if tests else np.array([])
    for k, (i, _) in enumerate(tests):
        d = decisions[i]
        p_holm, p_equiv_holm = float(adjusted[k]), float(adjusted[len(tests) + k])
        verdict = "inconclusive"
        if p_holm < alpha and abs(d.mean) >= d.margin:
            verdict = "better" if (d.mean > 0) == higher_better else "worse"
        elif p_equiv_holm < alpha:
            verdict = "equivalent"
        decisions[i] = _replace(d, verdict=verdict, p_holm=p_holm, p_equiv_holm=p_equiv_holm)
    return decisions


def _replace(decision: Decision, **changes: object) -> Decision:
    return Decision(**{**decision.__dict__, **changes})


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


def algoperf_study_times(
    trials: pd.DataFrame, target: pd.Series | float, time_col: str = "train_seconds"
) -> pd.DataFrame:
    """Time to target per (submission, workload, study), by AlgoPerf's rule.

    ``trials`` has one row per evaluation, with columns ``submission``,
    ``workload``, ``study``, ``trial``, ``eval_index``, ``score`` and
    ``time_col``. ``target`` is a number or a Series indexed by workload.

    The rule of ``get_workloads_time_to_target`` and ``get_best_trial_index``:
    in each study, among the trials that reach the target, take the one that
    reaches it at the earliest *evaluation index* (the first such trial on a
    tie), and its ``time_col`` at that evaluation; a study where no trial
    reaches the target counts as infinite. Columns ``submission``,
    ``workload``, ``study``, ``time``.
    """
    columns = ["submission", "workload", "study", "time"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    if isinstance(target, pd.Series):
        goals = {work: float(target[work]) for work in trials["workload"].unique()}
        goal = trials["workload"].map(goals).to_numpy(dtype=float)
    else:
        goal = np.full(len(trials), float(target))
    keys = ["submission", "workload", "study"]
    reached = trials[trials["score"].to_numpy(dtype=float) >= goal]
    # per study, the trial that reached the target at the earliest evaluation index
    # (the first trial in order on a tie), and its time then
    best = (
        reached.sort_values(["eval_index", "trial"], kind="stable")
        .groupby(keys, sort=False, observed=True)
        .head(1)
        .set_index(keys)[time_col]
        .astype(float)
    )
    studies = trials.drop_duplicates(keys)[keys]
    times = [best.get(tuple(k), math.inf) for k in studies.itertuples(index=False)]
    out = studies.assign(time=times).sort_values(keys, kind="stable", ignore_index=True)
    return out[columns]


def algoperf_times(
    trials: pd.DataFrame, target: pd.Series | float, time_col: str = "train_seconds"
) -> pd.DataFrame:
    """Time to target per (submission, workload): the median over studies of
    :func:`algoperf_study_times`, infinities included. A table of submissions
    (rows) by workloads (columns)."""
    return median_times(algoperf_study_times(trials, target, time_col))


def median_times(study: pd.DataFrame) -> pd.DataFrame:
    """Submissions x workloads: the median over studies of each (submission,
    workload)'s ``time`` (infinities included), from per-study times."""
    medians: dict[tuple[Any, Any], list[float]] = {}
    for sub, work, time in zip(study["submission"], study["workload"], study["time"]):
        medians.setdefault((sub, work), []).append(time)
    records = [
        {"submission": sub, "workload": work, "time": float(np.median(times))}
        for (sub, work), times in medians.items()
    ]
    frame = pd.DataFrame(records, columns=["submission", "workload", "time"])
    return frame.pivot(index="submission", columns="workload", values="time")


def algoperf_profile(
    times: pd.DataFrame,
    taus: Sequence[float] | None = None,
    max_ratio: float = ALGOPERF_MAX_RATIO,
    n_workloads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Performance profiles from a submissions x workloads table of times to target.

    The rule of ``compute_performance_profiles`` as ``score_submissions.py``
    calls it: a time more than ``max_ratio`` times the workload's fastest
    becomes infinite; every time is divided by the workload's fastest;
    ``rho(tau)`` is the fraction of the ``n_workloads`` workloads (all
    columns by default) whose ratio is at most ``tau``, on 100 points of tau
    from 1 to 4 (``min_tau=1.0, max_tau=4.0, num_points=100``), fixed
    whatever the data. Returns the ratios and the profile (submissions x taus).
    """
    times = times.astype(float)
    best = times.min(axis=0)
    times = times.mask(times.gt(max_ratio * best, axis=1), math.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = times.div(times.min(axis=0), axis=1)
    if taus is None:
        taus = np.linspace(1.0, ALGOPERF_MAX_TAU, ALGOPERF_POINTS)
    n = n_workloads or times.shape[1]
    rho = pd.DataFrame({tau: (ratios <= tau).sum(axis=1) / n for tau in taus}, index=ratios.index)
    return ratios, rho


def algoperf_score(rho: pd.DataFrame) -> pd.Series:
    """AlgoPerf's leaderboard score: the trapezoid integral of the profile over
    tau, divided by the range of tau (``compute_leaderboard_score(normalize=True)``):
    1 for a submission fastest everywhere, 0 for one that reaches no target
    within 4 times the fastest."""
    taus = np.asarray(rho.columns, dtype=float)
    if len(taus) < 2:
        return pd.Series(rho.iloc[:, 0].to_numpy(), index=rho.index)
    area = np.trapezoid(rho.to_numpy(), x=taus, axis=1)
    return pd.Series(area / (taus.max() - taus.min()), index=rho.index)


def _scores_of(times: np.ndarray) -> np.ndarray:
    """AlgoPerf scores of a stack of times tables, ``(replicates, submissions,
    workloads)`` -> ``(replicates, submissions)``: :func:`algoperf_profile` and
    :func:`algoperf_score`, vectorised."""
    best = np.min(times, axis=1, keepdims=True)
    times = np.where(times > ALGOPERF_MAX_RATIO * best, np.inf, times)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = times / np.min(times, axis=1, keepdims=True)
    taus = np.linspace(1.0, ALGOPERF_MAX_TAU, ALGOPERF_POINTS)
    rho = (ratios[..., None] <= taus).sum(axis=2) / times.shape[2]
    return np.trapezoid(rho, x=taus, axis=2) / (taus[-1] - taus[0])


def algoperf_bootstrap(
    study_times: pd.DataFrame, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """AlgoPerf scores recomputed with the studies (seeds) resampled with
    replacement within each submission and workload (rliable's stratified
    bootstrap): a frame of ``n_boot`` replicates (rows) by submissions."""
    subs = sorted(study_times["submission"].unique())
    works = sorted(study_times["workload"].unique(), key=str)
    rng = np.random.default_rng(seed)
    times = np.full((n_boot, len(subs), len(works)), np.inf)
    groups = study_times.groupby(["submission", "workload"])["time"]
    for (sub, work), t in groups:
        values = t.to_numpy(dtype=float)
        draws = values[rng.integers(0, len(values), size=(n_boot, len(values)))]
        times[:, subs.index(sub), works.index(work)] = np.median(draws, axis=1)
    return pd.DataFrame(_scores_of(times), columns=subs)


def beats(replicates: pd.DataFrame) -> pd.DataFrame:
    """``P[a, b]``: the share of bootstrap replicates in which ``a``'s score is
    above ``b``'s (ties count half)."""
    names = list(replicates.columns)
    values = replicates.to_numpy()
    out = np.full((len(names), len(names)), np.nan)
    for i, j in itertools.permutations(range(len(names)), 2):
        out[i, j] = np.mean(values[:, i] > values[:, j]) + 0.5 * np.mean(
            values[:, i] == values[:, j]
        )
    return pd.DataFrame(out, index=names, columns=names)


# -- aggregates over tasks (rliable) -----------------------------------------------------


def _iqm_weights(n: int) -> np.ndarray:
    """Each sorted value's share of the quantile function over (0.25, 0.75), / 0.5."""
    edges = np.arange(n + 1) / n
    return np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None) / 0.5


def iqm(values: Sequence[float]) -> float:
    """The interquartile mean: the mean of the middle 50% of the values, a
    fractional weight for the values on the quartiles (rliable's
    ``aggregate_iqm``, ``scipy.stats.trim_mean(x, 0.25)`` for whole quarters)."""
    x = np.sort(np.asarray(values, dtype=float))
    if len(x) == 0:
        return math.nan
    return float(_iqm_weights(len(x)) @ x)


def iqm_rows(x: np.ndarray) -> np.ndarray:
    """:func:`iqm` of each row of ``x``, ``(replicates, n)`` -> ``(replicates,)``."""
    return np.sort(x, axis=1) @ _iqm_weights(x.shape[1])


def probability_of_improvement(x: Sequence[float], y: Sequence[float]) -> float:
    """``P(X > Y)`` of one task: the Mann-Whitney U statistic over all pairs
    of runs divided by their number, ties counting half."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if not len(x) or not len(y):
        return math.nan
    return float(improvement_rows(x[None, :], y[None, :])[0])


def improvement_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """:func:`probability_of_improvement` of each row pair, ``(replicates, m)`` and
    ``(replicates, n)`` -> ``(replicates,)``."""
    greater = (x[:, :, None] > y[:, None, :]).mean(axis=(1, 2))
    ties = (x[:, :, None] == y[:, None, :]).mean(axis=(1, 2))
    return greater + 0.5 * ties


def stratified_resamples(
    tasks: Mapping[object, Mapping[str, Sequence[float]]], n_boot: int = 2000, seed: int = 0
) -> dict[object, dict[str, np.ndarray]]:
    """Every algorithm's runs of every task resampled with replacement, ``n_boot``
    times, within the task (rliable's stratified bootstrap: runs move within a
    task, never across): ``{task: {algorithm: (n_boot, n_runs) array}}``."""
    rng = np.random.default_rng(seed)
    out: dict[object, dict[str, np.ndarray]] = {}
    for task, runs in tasks.items():
        out[task] = {}
        for name, values in runs.items():
            v = np.asarray(values, dtype=float)
            out[task][name] = v[rng.integers(0, len(v), size=(n_boot, len(v)))]
    return out


def stratified_bootstrap(
    tasks: Mapping[object, Mapping[str, Sequence[float]]],
    statistic: Callable[[Mapping[object, Mapping[str, np.ndarray]]], float],
    n_boot: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """``statistic`` of each of ``n_boot`` stratified resamples (see
    :func:`stratified_resamples`), for a statistic not vectorised."""
    resampled = stratified_resamples(tasks, n_boot, seed)
    return np.array(
        [
            statistic({t: {a: v[k] for a, v in runs.items()} for t, runs in resampled.items()})
            for k in range(n_boot)
        ]
    )
