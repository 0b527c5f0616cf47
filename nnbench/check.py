"""The regression check: a results folder against its baseline, seed by seed.

The baseline (:mod:`nnbench.baseline`) knows how far rounding moves each
configuration; the check asks, configuration by configuration:

- the configurations and seeds must be the baseline's: anything else is a
  clear error, never a silent comparison; a seed that failed or diverged where
  it had not fails the check;
- a rounding-stable configuration fails when its final metric (validation
  accuracy by default) dropped by more than the floor, on the mean of the
  paired differences;
- a chaotic configuration whose final values are the baseline's passes
  (identical results always do); otherwise a one-sided paired t-test looks
  for a drop of its metric. All the chaotic configurations' tests share
  ``alpha`` (0.01), by Holm's correction. A test needs the seeds that let it
  find the baseline's ``effect`` with power 0.8 under the noise rounding
  makes; with fewer, the configuration is *unresolved*: reported, and failed
  only with ``--strict`` or ``--fail-unresolved``;
- ``--strict`` (nnbench's own CI): any change beyond the floors fails, up or
  down: every metric at every point within the horizon, the evaluation
  schedule, the final metric of stable configurations, and for chaotic ones
  two-sided tests of both final accuracies and of their work (gradient
  evaluations, line-search failures). An unintended change of a
  deterministic computation is a bug even when accuracy happens to rise.

The check names the environment it ran in when it is not the baseline's
(library versions, BLAS kernel family), and says whether the baseline's
calibration measured that kernel family.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from nnbench import results, stats
from nnbench.baseline import (
    ACCURACIES,
    ALPHA,
    EFFECT,
    EPSILONS,
    SCHEDULE,
    TRACKED,
    array,
    entry_name,
    final_values,
    judged,
    read_baseline,
    rows_of,
    runs_by_config,
    seeds_needed,
    work_of,
)
from nnbench.errors import NnbenchError
from nnbench.naming import config_name

VERDICTS_OK = ("ok", "identical", "unresolved")


@dataclass
class CheckResult:
    table: pd.DataFrame  # one row per configuration
    problems: list[str] = field(default_factory=list)  # one line each, failing the check
    notes: list[str] = field(default_factory=list)  # one line each, reported only
    strict: bool = False
    fail_unresolved: bool = False

    @property
    def ok(self) -> bool:
        passing = ("ok", "identical") if self.fail_unresolved else VERDICTS_OK
        return not self.problems and bool(self.table["verdict"].isin(passing).all())


@dataclass
class _Test:
    """One paired test of a chaotic configuration's quantity."""

    row: dict[str, Any]
    name: str
    quantity: str
    diff: np.ndarray
    alternative: str  # "two-sided", or "less" for a drop
    shown: bool  # the table's row shows this test's p-value (the metric's)
    p: float = math.nan


def check(
    results_dir: str | Path,
    baseline_path: str | Path,
    strict: bool = False,
    alpha: float = ALPHA,
    metric: str = "val_accuracy",
    fail_unresolved: bool = False,
) -> CheckResult:
    """Compare a results folder with a baseline, seed by seed (see the module's doc)."""
    if metric not in ACCURACIES:
        raise NnbenchError(f"--metric must be one of {', '.join(ACCURACIES)}; got {metric!r}")
    if not 0 < alpha < 1:
        raise NnbenchError(f"--alpha must be in (0, 1); got {alpha!r}")
    baseline = read_baseline(baseline_path)
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise NnbenchError(f"{results_dir}: no such results folder; run the experiment first")
    by_config, rows = runs_by_config(results_dir)
    configs = baseline["configurations"]
    chaotic = [c for c in configs if c["kind"] == "chaotic"]
    n_tests = max(1, sum(len(judged(c, strict, metric)) for c in chaotic))
    context = _Context(
        rows, strict, metric, alpha, n_tests, float(baseline["calibration"].get("effect", EFFECT))
    )
    result = CheckResult(pd.DataFrame(), strict=strict, fail_unresolved=fail_unresolved or strict)
    result.notes += environment_notes(baseline, by_config)
    table, tests = [], []
    for c in configs:
        row, lines, config_tests = _check_config(c, by_config.pop(c["config_id"], {}), context)
        table.append(row)
        result.problems += lines
        tests += config_tests
    result.problems += _decide(tests, alpha, strict)
    for row in table:
        for note in row.pop("notes"):
            (result.problems if result.fail_unresolved else result.notes).append(note)
    for config_id, seeds in sorted(by_config.items()):
        spec = next(iter(seeds.values())).spec
        name = config_name(spec.label, spec.workload, spec.arch, spec.batch_size)
        result.problems.append(
            f"{name}: not in the baseline (configuration {config_id}); take a new baseline to "
            "check it"
        )
    result.table = pd.DataFrame(table)
    return result


@dataclass(frozen=True)
class _Context:
    rows: Mapping[str, pd.DataFrame]
    strict: bool
    metric: str
    alpha: float
    n_tests: int  # chaotic tests sharing alpha: the seeds each needs are for alpha / n_tests
    effect: float


def _check_config(
    c: Mapping[str, Any], now: Mapping[int, results.StoredRun], ctx: _Context
) -> tuple[dict[str, Any], list[str], list[_Test]]:
    """One configuration's row of the table, its problems (one line each) and its tests."""
    name = entry_name(c)
    row: dict[str, Any] = {
        "configuration": name,
        "kind": c["kind"],
        "seeds": "",
        "diff": np.nan,
        "low": np.nan,
        "high": np.nan,
        "p": np.nan,
        "allowed": np.nan,
        "verdict": "ok",
        "notes": [],
    }
    if not now:
        row["verdict"] = "missing"
        return row, [f"{name}: missing from the results (the baseline has it)"], []
    base_seeds = {int(s) for s in c["seeds"]}
    common = sorted(base_seeds & set(now))
    row["seeds"] = f"{len(common)}/{len(base_seeds)}"
    problems = _seed_problems(c, now, name)
    if problems:
        row["verdict"] = "failed"
        return row, problems, []
    trajectories = {s: rows_of(ctx.rows, now[s]) for s in common}
    if ctx.strict:
        problems += _strict_rows(c, trajectories, name)
    base = np.array([final_values(c["seeds"][str(s)], ctx.metric) for s in common])
    current = np.array([array(trajectories[s][ctx.metric])[-1] for s in common])
    unmeasured = _unmeasured(common, base, current, ctx.metric, name)
    if unmeasured:  # a NaN would compare as no drop at all
        row["verdict"] = "failed"
        return row, problems + unmeasured, []
    row["diff"] = float(np.mean(current - base)) if common else np.nan  # > 0: better
    if c["kind"] == "stable":
        problems += _judge_stable(c, common, base, current, ctx, name, row)
        tests: list[_Test] = []
    else:
        tests = _chaotic_tests(c, common, now, trajectories, ctx, name, row)
    if problems and row["verdict"] == "ok":
        row["verdict"] = "changed"
    return row, problems, tests


def _unmeasured(
    seeds: list[int], base: np.ndarray, now: np.ndarray, metric: str, name: str
) -> list[str]:
    """Seeds whose final ``metric`` is missing, in the baseline or in the results."""
    problems = []
    gone = [s for s, v in zip(seeds, base, strict=True) if not np.isfinite(v)]
    if gone:
        problems.append(
            f"{name}: the baseline has no final {metric} for seeds {','.join(map(str, gone))}; "
            "check another --metric, or re-baseline"
        )
    lost = [s for s, b, v in zip(seeds, base, now, strict=True) if np.isfinite(b) and np.isnan(v)]
    if lost:
        problems.append(
            f"{name}: seeds {','.join(map(str, lost))} have no final {metric} in the results "
            "(the baseline has one): their runs recorded no evaluation of it"
        )
    return problems


def _seed_problems(c: Mapping[str, Any], now: Mapping[int, results.StoredRun], name: str) -> list:
    """The baseline's seeds and only them, each ending as it did."""
    base_seeds = {int(s) for s in c["seeds"]}
    extra, missing = sorted(set(now) - base_seeds), sorted(base_seeds - set(now))
    problems = []
    if extra:
        problems.append(
            f"{name}: seeds {','.join(map(str, extra))} are not in the baseline "
            f"(it has {','.join(map(str, sorted(base_seeds)))}); run those seeds, or re-baseline"
        )
    if missing:
        problems.append(f"{name}: seeds {','.join(map(str, missing))} are missing from the results")
    for seed in sorted(base_seeds & set(now)):
        run = now[seed]
        was = c["seeds"][str(seed)]["status"]
        if str(run.status) != was:
            message = results.read_meta(run.path).get("message", "")
            problems.append(
                f"{name}: seed {seed} {run.status} (was {was})"
                + (f": {message}" if message else "")
            )
    return problems


def _judge_stable(
    c: Mapping[str, Any],
    common: list[int],
    base: np.ndarray,
    now: np.ndarray,
    ctx: _Context,
    name: str,
    row: dict[str, Any],
) -> list[str]:
    """A rounding-stable configuration: its final metric within the floor."""
    floor = max((f for f in c["floors"][ctx.metric][-1:] if f is not None), default=0.0)
    row["allowed"] = floor
    d = now - base
    if ctx.strict and np.any(np.abs(d) > floor):
        row["verdict"] = "changed"
        return [
            f"{name}: final {ctx.metric} changed by {_fmt_diffs(common, d)} (allowed "
            f"{floor:.3g}); changed: re-baseline if intended"
        ]
    if not ctx.strict and row["diff"] < -floor:
        row["verdict"] = "dropped"
        return [
            f"{name}: final {ctx.metric} dropped by {-row['diff']:.4g} on average over "
            f"{len(d)} seeds (allowed {floor:.3g})"
        ]
    return []


def _chaotic_tests(
    c: Mapping[str, Any],
    common: list[int],
    now: Mapping[int, results.StoredRun],
    trajectories: Mapping[int, Mapping[str, list]],
    ctx: _Context,
    name: str,
    row: dict[str, Any],
) -> list[_Test]:
    """A chaotic configuration's paired tests, one per judged quantity that moved and
    that its seeds can resolve; the others are identical, or unresolved (a note)."""
    eps = float(np.finfo(c.get("dtype", "float64")).eps)
    sides = 2 if ctx.strict else 1
    tests, identical = [], True
    work = {s: work_of(now[s], trajectories[s]) for s in common}
    for q in judged(c, ctx.strict, ctx.metric):
        current = np.array(
            [
                array(trajectories[s][q])[-1]
                if q in ACCURACIES
                else (math.nan if work[s][q] is None else work[s][q])
                for s in common
            ]
        )
        base = np.array([final_values(c["seeds"][str(s)], q) for s in common])
        d = current - base
        if np.all(np.abs(d) <= EPSILONS * eps * np.fmax(np.abs(base), np.abs(current))):
            continue  # the baseline's values: nothing to test
        identical = False
        if not np.all(np.isfinite(d)):
            row["notes"].append(f"{name}: {q} is missing for some seeds; not tested")
            continue
        need = seeds_needed(c, q, ctx.effect, ctx.alpha / ctx.n_tests, sides)
        if len(common) < need:
            row["verdict"] = "unresolved"
            row["notes"].append(
                f"{name}: unresolved: {q} moved (mean {float(np.mean(d)):+.4g}), and a paired test "
                f"that tells rounding (noise {c['noise'].get(q, 0.0):.3g}) from a change needs "
                f"{need} seeds; the results have {len(common)}: run more seeds and re-baseline"
            )
            continue
        alternative = "two-sided" if ctx.strict else "less"
        tests.append(_Test(row, name, q, d, alternative, shown=q == ctx.metric))
        if q == ctx.metric:
            result = stats.paired_test(base, current)
            row.update(low=result.low, high=result.high)
    if identical:
        row["verdict"] = "identical"
    return tests


def _decide(tests: list[_Test], alpha: float, strict: bool) -> list[str]:
    """Holm's correction over every chaotic test of the check; a problem per rejection."""
    if not tests:
        return []
    for t in tests:
        if np.all(t.diff == t.diff[0]):  # no spread: any shift is a change
            t.p = 0.0 if t.diff[0] and (t.alternative == "two-sided" or t.diff[0] < 0) else 1.0
            continue
        t.p = float(scipy_stats.ttest_1samp(t.diff, 0.0, alternative=t.alternative).pvalue)
    adjusted = stats.holm([t.p for t in tests])
    problems = []
    for t, p in zip(tests, adjusted):
        if t.shown:
            t.row["p"] = p
        if p >= alpha:
            continue
        verdict = "changed" if strict else "dropped"
        t.row["verdict"] = verdict
        problems.append(
            f"{t.name}: final {t.quantity} {verdict} (mean paired difference "
            f"{float(np.mean(t.diff)):+.4g}, Holm-adjusted p = {p:.2g} < {alpha:.2g})"
            + ("; changed: re-baseline if intended" if strict else "")
        )
    return problems


def _strict_rows(c: Mapping[str, Any], now: Mapping[int, dict], name: str) -> list[str]:
    """Every point within the horizon, and the evaluation schedule, as the baseline's."""
    horizon = int(c["horizon"])
    spec = c.get("spec", {}).get("values", {})
    timed = spec.get("max_seconds") is not None or spec.get("tol") is not None
    for seed, rows in now.items():
        base = c["seeds"][str(seed)]["rows"]
        for col in SCHEDULE:
            a, b = base[col], rows[col]
            upto = horizon + 1 if timed else None
            if a[:upto] != b[:upto]:
                return [
                    f"{name}: seed {seed}: the evaluation schedule changed ({col} "
                    f"{a[:6]}... -> {b[:6]}...); changed: re-baseline if intended"
                ]
        if base["grad_evals"][: horizon + 1] != rows["grad_evals"][: horizon + 1]:
            return [
                f"{name}: seed {seed}: gradient evaluations changed within the horizon; "
                "changed: re-baseline if intended"
            ]
        for m in TRACKED:
            a, b = array(base[m][: horizon + 1]), array(rows[m][: horizon + 1])
            floor = array(c["floors"][m][: horizon + 1])
            if len(a) != len(b):
                return [f"{name}: seed {seed}: {len(b)} evaluations, the baseline has {len(a)}"]
            bad = ~((np.abs(b - a) <= floor) | (np.isnan(a) & np.isnan(b)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                return [
                    f"{name}: seed {seed}: {m} at iteration {base['iteration'][i]:g} moved "
                    f"{a[i]:.10g} -> {b[i]:.10g} (allowed {floor[i]:.3g}); changed: re-baseline "
                    "if intended"
                ]
    return []


def _fmt_diffs(seeds: list[int], d: np.ndarray) -> str:
    return ", ".join(f"seed {s}: {v:+.4g}" for s, v in zip(seeds, d) if v)


# -- the environment ----------------------------------------------------------------------------

_VERSIONS = ("python", "numpy", "scipy", "nnbench")


def _family(blas: Any) -> str | None:
    for lib in blas if isinstance(blas, list) else []:
        if isinstance(lib, dict) and lib.get("architecture"):
            return str(lib["architecture"])
    return None


def environment_notes(
    baseline: Mapping[str, Any], by_config: Mapping[str, Mapping[int, results.StoredRun]]
) -> list[str]:
    """How the results' environment differs from the baseline's: library versions,
    the BLAS kernel family (and whether the baseline's calibration measured it)."""
    base = baseline.get("environment") or {}
    runs = [run for seeds in by_config.values() for run in seeds.values()]
    if not runs:
        return []
    prov = results.read_meta(runs[0].path).get("provenance", {})
    changes = [
        f"{k} {base.get(k)} -> {prov.get(k)}"
        for k in _VERSIONS
        if base.get(k) and prov.get(k) and base.get(k) != prov.get(k)
    ]
    was, now = _family(base.get("blas")), _family(prov.get("blas"))
    if was and now and was.lower() != now.lower():
        blas = baseline.get("calibration", {}).get("blas") or {}
        measured = {f.lower() for f in blas.get("calibrated") or []}
        covered = (
            "which the baseline's calibration measured"
            if now.lower() in measured
            else "which the baseline's calibration did not measure: its floors may not cover it"
        )
        changes.append(f"BLAS kernels {was} -> {now}, {covered}")
    if base.get("cpu") and prov.get("cpu") and base["cpu"] != prov["cpu"]:
        changes.append(f"CPU {base['cpu']} -> {prov['cpu']}")
    if not changes:
        return []
    return ["environment: not the baseline's: " + "; ".join(changes)]


# -- the verdict as text -----------------------------------------------------------------------


def format_check(result: CheckResult) -> str:
    """The table per configuration, the problems, the notes, and the verdict line."""
    view = result.table.copy()
    width = max([len("configuration"), *(len(c) for c in view.get("configuration", []))]) + 2
    lines = [
        "configuration".ljust(width) + f"{'kind':>8} {'seeds':>6} {'diff':>9} {'95% CI':>20} "
        f"{'p':>7} {'allowed':>9}  verdict"
    ]
    for r in view.itertuples(index=False):
        ci = f"[{r.low:+.4f}, {r.high:+.4f}]" if np.isfinite(r.low) else ""
        lines.append(
            f"{r.configuration:<{width}}{r.kind:>8} {r.seeds:>6} "
            f"{_num(r.diff, '+.4f'):>9} {ci:>20} {_num(r.p, '.2g'):>7} "
            f"{_num(r.allowed, '.2g'):>9}  {r.verdict}"
        )
    lines += [f"  {p}" for p in result.problems]
    lines += [f"  note: {n}" for n in result.notes]
    n = len(view)
    mode = "strict" if result.strict else "drops"
    verdict = "OK" if result.ok else "FAILED"
    n_ok = int(view["verdict"].isin(VERDICTS_OK).sum()) if n else 0
    n_unresolved = int((view["verdict"] == "unresolved").sum()) if n else 0
    lines.append(
        f"{verdict} ({mode}): {n_ok} of {n} configuration(s) pass"
        + (f", {n_unresolved} of them unresolved" if n_unresolved else "")
        + (f"; {len(result.problems)} problem(s)" if result.problems else "")
        + ("; in another environment than the baseline" if any(
            x.startswith("environment:") for x in result.notes) else "")
    )  # fmt: skip
    return "\n".join(lines)


def _num(value: float, spec: str) -> str:
    return "" if value is None or not np.isfinite(value) else format(value, spec)
