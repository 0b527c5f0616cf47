"""The regression gate: a baseline that knows how far rounding moves each
configuration, and a seed-paired check against it.

**The baseline** (``nnbench baseline RESULTS -o FILE``; JSON, version 2)
holds, per configuration (everything that determines a run but the seed, its
``config_id``), every seed's trajectory: the metrics at every evaluation
point. It then *measures* each configuration's sensitivity to rounding: every
run is repeated with its start weights multiplied by ``1 + e u`` (``e`` about
450 times the dtype's machine epsilon, ``u`` uniform in [-1, 1]), and again
with 2 BLAS threads (another summation order) when the machine has two
cores. From the differences:

- the **floor** of each metric at each evaluation point: 10 times the largest
  difference rounding made there, plus 100 epsilons of the value;
- the **horizon**: the evaluation points where rounding moved the training
  cost by less than 1e-6 of it and no accuracy at all. A *rounding-stable*
  configuration (first-order methods, here) keeps its whole trajectory within
  it; a *chaotic* one (CG on the CI grid: scipy's line searches branch on
  cost comparisons, and there rounding tips them) only its first points, after
  which its runs decorrelate;
- for a chaotic configuration, the spread of its final metric under rounding,
  and from it the **number of seeds** a paired test needs to see a given drop
  (``--effect``, 0.02 of accuracy by default) with power 0.8.

**The check** compares a results folder with the baseline seed by seed:

- the configurations and seeds must be the baseline's: anything else is a
  clear error, never a silent comparison; a seed that failed or diverged where
  it had not fails the check;
- a rounding-stable configuration fails when its final metric (validation
  accuracy by default) dropped by more than the floor, on the mean of the
  paired differences; a chaotic one when a one-sided paired t-test finds a
  drop, at ``alpha`` (0.01) shared among the chaotic configurations
  (Bonferroni), with at least the seeds the baseline asks for;
- ``--strict`` (nnbench's own CI): any change beyond the floors fails, up or
  down: every metric at every point within the horizon, the evaluation
  schedule itself, the final metric of stable configurations, and, for
  chaotic ones, a two-sided test. An unintended change of a deterministic
  computation is a bug even when accuracy happens to rise.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from nnbench import results, stats
from nnbench.errors import NnbenchError
from nnbench.fileio import atomic_write, is_regular_file
from nnbench.grid import RunSpec

FORMAT = "nnbench-baseline"
VERSION = 2
# Relative size of the start-weight perturbation, about 450 epsilons of each dtype.
PERTURBATION = {"float64": 1e-13, "float32": 5e-5}
HORIZON_RTOL = 1e-6  # rounding moved the cost less than this (relative): still deterministic
SAFETY = 10.0  # floors are this many times the largest difference rounding made
EPSILONS = 100.0  # ... plus this many machine epsilons of the value
ALPHA = 0.01  # family-wise significance of the chaotic configurations' tests
EFFECT = 0.02  # the drop in accuracy a chaotic configuration's seeds must be able to show
POWER = 0.8
TRACKED = ("train_cost", "val_accuracy", "val_cost", "test_accuracy")
ACCURACIES = ("val_accuracy", "test_accuracy")  # what the check may judge on
SCHEDULE = ("iteration", "epoch", "samples")


def _finite(value: Any) -> float | None:
    """A float for JSON: None stands for NaN and infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def _array(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _trajectory(frame: pd.DataFrame) -> dict[str, list]:
    """A run's rows as columns of plain numbers (evaluation order)."""
    frame = frame.dropna(subset=["iteration"]).sort_values("iteration")
    return {c: [_finite(v) for v in frame[c]] for c in (*SCHEDULE, "grad_evals", *TRACKED)}


def _runs_by_config(
    results_dir: Path,
) -> tuple[dict[str, dict[int, results.StoredRun]], dict[str, pd.DataFrame]]:
    stored = results.stored_runs(results_dir)
    frame = results.load(results_dir) if stored else pd.DataFrame()
    by_config: dict[str, dict[int, results.StoredRun]] = {}
    for run in stored.values():
        by_config.setdefault(run.spec.config_id, {})[run.spec.seed] = run
    rows = {rid: g for rid, g in frame.groupby("run_id")} if not frame.empty else {}
    return by_config, rows


def _rows_of(rows: Mapping[str, pd.DataFrame], run: results.StoredRun) -> dict[str, list]:
    """The trajectory of a stored run: by its recomputed id, or by its file's name."""
    frame = rows.get(run.spec.run_id)
    if frame is None:
        frame = rows.get(run.path.stem, pd.DataFrame(columns=[*SCHEDULE, "grad_evals", *TRACKED]))
    return _trajectory(frame)


# -- the baseline --------------------------------------------------------------------------


def make_baseline(
    results_dir: str | Path,
    n_jobs: int = 1,
    backend: str = "threading",
    scheduler: str | None = None,
    data_dir: str | Path | None = None,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
    effect: float = EFFECT,
) -> dict[str, Any]:
    """The baseline of a results folder, its rounding measured (runs every run twice more)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise NnbenchError(f"{results_dir}: no such results folder; run an experiment first")
    by_config, rows = _runs_by_config(results_dir)
    if not by_config:
        raise NnbenchError(f"{results_dir}: no runs; run the experiment before taking a baseline")
    if not 0 < effect < 1:
        raise NnbenchError(f"--effect must be an accuracy difference in (0, 1); got {effect!r}")
    for seeds in by_config.values():
        for run in seeds.values():
            if not run.status.is_final:
                raise NnbenchError(
                    f"{run.path}: {run.spec.label} seed {run.spec.seed} {run.status}; a baseline "
                    "needs every run finished: run the experiment again to retry it"
                )
    runs = [run for seeds in by_config.values() for run in seeds.values()]
    folder = results_dir / "calibration" / _calibrated(runs, rows, threads)
    variants = _calibration_runs(
        [run.spec for run in runs], folder, n_jobs, backend, scheduler, data_dir, threads, log
    )
    configurations = []
    for config_id, seeds in sorted(by_config.items(), key=lambda kv: _sort_key(kv[1])):
        configurations.append(_configuration(config_id, seeds, rows, variants))
    n_chaotic = sum(c["kind"] == "chaotic" for c in configurations)
    for c in configurations:  # the seeds a test needs depend on how many tests share alpha
        if c["kind"] == "chaotic":
            c["min_seeds"] = {
                m: min_seeds(c["noise"][m], effect, ALPHA / n_chaotic) for m in ACCURACIES
            }
    first = next(iter(next(iter(by_config.values())).values()))
    meta = results.read_meta(first.path)
    return {
        "format": FORMAT,
        "version": VERSION,
        "metric": "val_accuracy",
        "source": str(results_dir),
        "environment": meta.get("provenance", {}),
        "calibration": {
            "perturbation": PERTURBATION,
            "threads": 2 if (os.cpu_count() or 1) >= 2 else None,
            "horizon_rtol": HORIZON_RTOL,
            "safety": SAFETY,
            "epsilons": EPSILONS,
            "effect": effect,
            "alpha": ALPHA,
            "power": POWER,
        },
        "configurations": configurations,
    }


def _sort_key(seeds: Mapping[int, results.StoredRun]) -> tuple:
    spec = next(iter(seeds.values())).spec
    return (spec.label, spec.arch, str(spec.batch_size), spec.dtype)


def _calibrated(
    runs: list[results.StoredRun], rows: Mapping[str, pd.DataFrame], threads: int
) -> str:
    """A digest of what the calibration measures: every run's trajectory (and the
    threads). Calibration runs are reused only for the very results they were
    made for; after the code changed them, they are made again, by that code."""
    digest = hashlib.sha256(f"threads={threads}".encode())
    for run in sorted(runs, key=lambda r: r.spec.run_id):
        digest.update(run.spec.run_id.encode())
        digest.update(json.dumps(_rows_of(rows, run), sort_keys=True, default=float).encode())
    return digest.hexdigest()[:16]


def _calibration_runs(
    specs: list[RunSpec],
    folder: Path,
    n_jobs: int,
    backend: str,
    scheduler: str | None,
    data_dir: str | Path | None,
    threads: int,
    log: Callable[[str], None] | None,
) -> dict[str, dict[str, dict[str, list]]]:
    """Every run again, perturbed and (with 2 cores) with 2 BLAS threads: the
    variants' trajectories, ``{variant: {base run_id: rows}}``, from ``folder``,
    where they stay (a baseline of the same results, after Ctrl-C say, reuses them)."""
    from nnbench import runner

    perturbed = [
        RunSpec(
            **{**s.__dict__, "values": {**s.values, "init_perturbation": PERTURBATION[s.dtype]}}
        )
        for s in specs
    ]
    plans = {"perturbed": (perturbed, threads)}
    cores = os.cpu_count() or 1
    if cores >= 2:
        plans["threads"] = (specs, 2)
    out: dict[str, dict[str, dict[str, list]]] = {}
    for name, (variant_specs, n_threads) in plans.items():
        jobs = max(1, min(n_jobs, cores // n_threads))
        summary = runner.run_spec_list(
            variant_specs,
            folder / name,
            {"name": f"calibration-{name}"},
            n_jobs=jobs,
            backend=backend,
            scheduler=scheduler,
            data_dir=data_dir,
            log=log,
            threads=n_threads,
        )
        if summary.interrupted:
            raise KeyboardInterrupt
        stored = results.stored_runs(folder / name)
        frame = results.load(folder / name)
        rows = {rid: g for rid, g in frame.groupby("run_id")}
        out[name] = {}
        for base, variant in zip(specs, variant_specs):
            run = stored.get(variant.run_id)
            if run is None or not run.status.is_final:
                raise NnbenchError(
                    f"the rounding calibration of {base.label} seed {base.seed} did not finish "
                    f"({run.status if run else 'missing'}); run `nnbench baseline` again"
                )
            out[name][base.run_id] = _rows_of(rows, run)
    return out


def _configuration(
    config_id: str,
    seeds: Mapping[int, results.StoredRun],
    rows: Mapping[str, pd.DataFrame],
    variants: Mapping[str, Mapping[str, Mapping[str, list]]],
) -> dict[str, Any]:
    """A configuration's entry: its seeds' trajectories and what rounding does to them."""
    spec = next(iter(seeds.values())).spec
    eps = float(np.finfo(spec.dtype).eps)
    trajectories = {s: _rows_of(rows, run) for s, run in sorted(seeds.items())}
    n_rows = min(len(t["iteration"]) for t in trajectories.values())
    shifts, final_shifts = _shifts(seeds, trajectories, variants, n_rows)
    # the largest value over seeds at each point (fmax: NaN only where all are NaN)
    scale = {
        m: np.fmax.reduce(
            np.abs(np.vstack([_array(t[m])[:n_rows] for t in trajectories.values()])), axis=0
        )
        for m in TRACKED
    }
    horizon = -1
    for i in range(n_rows):
        cost_ok = shifts["train_cost"][i] <= HORIZON_RTOL * max(scale["train_cost"][i], 1e-300)
        acc_ok = shifts["val_accuracy"][i] == 0 and shifts["test_accuracy"][i] == 0
        if not (cost_ok and acc_ok):
            break
        horizon = i
    floors = {
        m: [
            _finite(SAFETY * shifts[m][i] + EPSILONS * eps * np.nan_to_num(scale[m][i]))
            for i in range(n_rows)
        ]
        for m in TRACKED
    }
    return {
        "config_id": config_id,
        "label": spec.label,
        "optimizer": spec.optimizer,
        "options": dict(spec.options),
        "dataset": spec.dataset,
        "hidden": spec.arch,
        "batch_size": spec.batch_size,
        "dtype": spec.dtype,
        "spec": spec.to_dict(),
        "kind": "stable" if horizon == n_rows - 1 else "chaotic",
        "horizon": horizon,
        "noise": {
            m: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for m, v in final_shifts.items()
        },
        "min_seeds": None,
        "seeds": {
            str(seed): {"status": str(run.status), "rows": trajectories[seed]}
            for seed, run in sorted(seeds.items())
        },
        "floors": floors,
    }


def _shifts(
    seeds: Mapping[int, results.StoredRun],
    trajectories: Mapping[int, Mapping[str, list]],
    variants: Mapping[str, Mapping[str, Mapping[str, list]]],
    n_rows: int,
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """How far rounding moved each metric: the largest difference at each point,
    over seeds and variants; and every (signed) difference of the final accuracies."""
    shifts = {m: np.zeros(n_rows) for m in TRACKED}
    final_shifts: dict[str, list[float]] = {m: [] for m in ACCURACIES}
    for seed, run in sorted(seeds.items()):
        base = trajectories[seed]
        for variant in variants.values():
            other = variant[run.spec.run_id]
            for m in TRACKED:
                a, b = _array(base[m])[:n_rows], _array(other[m])
                b = np.pad(b, (0, max(0, n_rows - len(b))), constant_values=np.nan)[:n_rows]
                d = np.abs(b - a)
                d[np.isnan(a) & np.isnan(b)] = 0.0  # both unevaluated: no difference
                d[np.isnan(d)] = np.inf  # one evaluated, the other not: no bound
                shifts[m] = np.maximum(shifts[m], d)
            for m in ACCURACIES:
                a, b = _array(base[m]), _array(other[m])
                if len(a) and len(b) and np.isfinite(a[-1]) and np.isfinite(b[-1]):
                    final_shifts[m].append(float(b[-1] - a[-1]))
    return shifts, final_shifts


def min_seeds(noise: float, effect: float, alpha: float, power: float = POWER) -> int:
    """The fewest seeds with which a one-sided paired t-test at ``alpha`` finds a
    mean drop of ``effect`` with probability ``power``, when rounding alone
    spreads the paired differences by ``noise`` (the standard deviation)."""
    if noise <= 0:
        return 2
    for n in range(2, 10_000):
        df = n - 1
        need = (scipy_stats.t.ppf(1 - alpha, df) + scipy_stats.t.ppf(power, df)) * noise
        if need / math.sqrt(n) <= effect:
            return n
    return 10_000


def write_baseline(results_dir: str | Path, path: str | Path, **kwargs: Any) -> Path:
    """Make the baseline of ``results_dir`` (see :func:`make_baseline`) and write it."""
    from nnbench.fileio import check_writable_target

    path = check_writable_target(path)  # before the calibration runs, not after
    baseline = make_baseline(results_dir, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(baseline, indent=1, allow_nan=False) + "\n")


def read_baseline(path: str | Path) -> dict[str, Any]:
    """A baseline file, checked; anything else is a clear error."""
    path = Path(path)
    remake = "make one with `nnbench baseline RESULTS_DIR -o FILE`"
    if path.exists() and not is_regular_file(path):
        raise NnbenchError(f"{path}: not a baseline file (not a regular file); {remake}")
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise NnbenchError(f"{path}: no such baseline file; {remake}") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NnbenchError(f"{path}: not a baseline file (not JSON: {exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise NnbenchError(f'{path}: not an nnbench baseline (no "format": "{FORMAT}"); {remake}')
    if raw.get("version") != VERSION:
        raise NnbenchError(
            f"{path}: a baseline of version {raw.get('version')!r}, and this nnbench reads "
            f"version {VERSION}, which measures each configuration's rounding; {remake}"
        )
    configs = raw.get("configurations")
    if not isinstance(configs, list) or not configs:
        raise NnbenchError(f"{path}: malformed baseline: no configurations; {remake}")
    for i, c in enumerate(configs):
        problem = _malformed(c)
        if problem:
            raise NnbenchError(f"{path}: malformed baseline: configuration {i + 1} {problem}")
    return raw


def _number(value: Any) -> bool:
    """A finite JSON number (an integer too large for a float is not one)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number_or_null(value: Any) -> bool:
    return value is None or _number(value)


_SEED = re.compile(r"-?(0|[1-9][0-9]*)")  # as str(int) writes it: no "01", no other digits


def _malformed(c: Any) -> str | None:
    if not isinstance(c, dict):
        return "is not a table"
    for key, kind in (
        ("config_id", str),
        ("label", str),
        ("kind", str),
        ("seeds", dict),
        ("floors", dict),
        ("horizon", int),
    ):
        if not isinstance(c.get(key), kind) or isinstance(c.get(key), bool):
            return f"has no {key} of the right kind"
    if c["kind"] not in ("stable", "chaotic"):
        return f"has kind {c['kind']!r}"
    for m in ACCURACIES:
        noise = c.get("noise")
        if not isinstance(noise, dict) or not _number(noise.get(m)) or noise[m] < 0:
            return "has no finite noise"
        need = c.get("min_seeds")
        if c["kind"] == "chaotic" and not (
            isinstance(need, dict) and isinstance(need.get(m), int) and need[m] >= 2
        ):
            return "has no min_seeds"
    spec = c.get("spec", {})
    if not (isinstance(spec, dict) and isinstance(spec.get("values", {}), dict)):
        return "has a malformed spec"
    if not c["seeds"]:
        return "has no seeds"
    for seed, entry in c["seeds"].items():
        if not (_SEED.fullmatch(seed) and isinstance(entry, dict)):
            return f"has a malformed seed {seed!r}"
        rows = entry.get("rows")
        if entry.get("status") not in ("completed", "converged", "stopped", "diverged") or not (
            isinstance(rows, dict)
            and all(isinstance(rows.get(k), list) for k in (*SCHEDULE, "grad_evals", *TRACKED))
        ):
            return f"has a malformed seed {seed}"
        if not all(_number_or_null(v) for k in rows for v in rows[k]):
            return f"has a non-number in seed {seed}"
    # floors cover the evaluations every seed has (seeds stopped by tol or a
    # divergence end at different points): as many as the shortest seed's
    n_rows = min(len(e["rows"]["iteration"]) for e in c["seeds"].values())
    for m in TRACKED:
        floor = c["floors"].get(m)
        if not (
            isinstance(floor, list)
            and len(floor) == n_rows
            and all(v is None or (_number(v) and v >= 0) for v in floor)
        ):
            return f"has no floors for {m}, one per evaluation"
    if not -1 <= c["horizon"] < n_rows:
        return f"has a horizon {c['horizon']} beyond its {n_rows} evaluations"
    return None


# -- the check --------------------------------------------------------------------------------


@dataclass
class CheckResult:
    table: pd.DataFrame  # one row per configuration
    problems: list[str] = field(default_factory=list)  # one line each, failing the check
    strict: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems and bool((self.table["verdict"] == "ok").all())


def check(
    results_dir: str | Path,
    baseline_path: str | Path,
    strict: bool = False,
    alpha: float = ALPHA,
    metric: str = "val_accuracy",
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
    by_config, rows = _runs_by_config(results_dir)
    configs = baseline["configurations"]
    n_chaotic = max(1, sum(c["kind"] == "chaotic" for c in configs))
    problems = []
    table = []
    for c in configs:
        row, lines = _check_config(
            c, by_config.pop(c["config_id"], {}), rows, strict, alpha / n_chaotic, metric
        )
        table.append(row)
        problems += lines
    for config_id, seeds in sorted(by_config.items()):
        spec = next(iter(seeds.values())).spec
        problems.append(
            f"{_name(spec.label, spec.arch, spec.batch_size)}: not in the baseline "
            f"(configuration {config_id}); take a new baseline to check it"
        )
    return CheckResult(pd.DataFrame(table), problems, strict)


def _name(label: str, hidden: str, batch: Any) -> str:
    return f"{label} | hidden {hidden} | batch {batch}"


def _check_config(
    c: Mapping[str, Any],
    now: Mapping[int, results.StoredRun],
    rows: Mapping[str, pd.DataFrame],
    strict: bool,
    alpha: float,
    metric: str,
) -> tuple[dict[str, Any], list[str]]:
    """One configuration's row of the table, and its problems (one line each)."""
    name = _name(c["label"], c.get("hidden", "?"), c.get("batch_size", "?"))
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
    }
    if not now:
        row["verdict"] = "missing"
        return row, [f"{name}: missing from the results (the baseline has it)"]
    base_seeds = {int(s) for s in c["seeds"]}
    common = sorted(base_seeds & set(now))
    row["seeds"] = f"{len(common)}/{len(base_seeds)}"
    problems = _seed_problems(c, now, name)
    if problems:
        row["verdict"] = "failed"
        return row, problems
    trajectories = {s: _rows_of(rows, now[s]) for s in common}
    if strict:
        problems += _strict_rows(c, trajectories, name)
    base_final = np.array([_last(c["seeds"][str(s)]["rows"][metric]) for s in common])
    now_final = np.array([_last(trajectories[s][metric]) for s in common])
    unmeasured = _unmeasured(common, base_final, now_final, metric, name)
    if unmeasured:  # a NaN would compare as no drop at all
        row["verdict"] = "failed"
        return row, problems + unmeasured
    row["diff"] = float(np.mean(now_final - base_final)) if common else np.nan  # > 0: better
    judge = _judge_stable if c["kind"] == "stable" else _judge_chaotic
    problems += judge(c, common, base_final, now_final, strict, alpha, metric, name, row)
    if problems and row["verdict"] == "ok":
        row["verdict"] = "changed"
    return row, problems


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
    strict: bool,
    alpha: float,
    metric: str,
    name: str,
    row: dict[str, Any],
) -> list[str]:
    """A rounding-stable configuration: its final metric within the floor."""
    floor = max((f for f in c["floors"][metric][-1:] if f is not None), default=0.0)
    row["allowed"] = floor
    d = now - base
    if strict and np.any(np.abs(d) > floor):
        row["verdict"] = "changed"
        return [
            f"{name}: final {metric} changed by {_fmt_diffs(common, d)} (allowed "
            f"{floor:.3g}); changed: re-baseline if intended"
        ]
    if not strict and row["diff"] < -floor:
        row["verdict"] = "dropped"
        return [
            f"{name}: final {metric} dropped by {-row['diff']:.4g} on average over "
            f"{len(d)} seeds (allowed {floor:.3g})"
        ]
    return []


def _judge_chaotic(
    c: Mapping[str, Any],
    common: list[int],
    base: np.ndarray,
    now: np.ndarray,
    strict: bool,
    alpha: float,
    metric: str,
    name: str,
    row: dict[str, Any],
) -> list[str]:
    """A chaotic configuration: a paired t-test, with the seeds it needs."""
    need = int(c["min_seeds"][metric])
    if len(common) < need:
        row["verdict"] = "too few seeds"
        return [
            f"{name}: chaotic under rounding (its final {metric} moves by "
            f"{c['noise'][metric]:.3g} when rounding does): a paired test needs {need} "
            f"seeds, the results have {len(common)}; run more seeds and re-baseline"
        ]
    test = stats.paired_test(base, now)
    row.update(low=test.low, high=test.high)
    p_two = test.p_t if np.isfinite(test.p_t) else 1.0
    # one-sided for a drop; two-sided in strict mode, where a rise fails too
    p = p_two if strict else (p_two / 2 if test.mean < 0 else 1 - p_two / 2)
    row["p"] = p
    if p >= alpha:
        return []
    row["verdict"] = "changed" if strict else "dropped"
    return [
        f"{name}: final {metric} {row['verdict']} (mean paired difference "
        f"{test.mean:+.4g}, p = {p:.2g} < {alpha:.2g})"
    ]


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
            a, b = _array(base[m][: horizon + 1]), _array(rows[m][: horizon + 1])
            floor = _array(c["floors"][m][: horizon + 1])
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


def _last(values: list) -> float:
    arr = _array(values)
    return float(arr[-1]) if len(arr) else math.nan


def _fmt_diffs(seeds: list[int], d: np.ndarray) -> str:
    return ", ".join(f"seed {s}: {v:+.4g}" for s, v in zip(seeds, d) if v)


def format_check(result: CheckResult) -> str:
    """The table per configuration, the problems, and the verdict line."""
    view = result.table.copy()
    lines = [
        "configuration".ljust(58) + f"{'kind':>8} {'seeds':>6} {'diff':>9} {'95% CI':>20} "
        f"{'p':>7} {'allowed':>9}  verdict"
    ]
    for r in view.itertuples(index=False):
        ci = f"[{r.low:+.4f}, {r.high:+.4f}]" if np.isfinite(r.low) else ""
        lines.append(
            f"{r.configuration[:57]:<58}{r.kind:>8} {r.seeds:>6} "
            f"{_num(r.diff, '+.4f'):>9} {ci:>20} {_num(r.p, '.2g'):>7} "
            f"{_num(r.allowed, '.2g'):>9}  {r.verdict}"
        )
    lines += [f"  {p}" for p in result.problems]
    n = len(view)
    mode = "strict" if result.strict else "drops"
    verdict = "OK" if result.ok else "FAILED"
    n_ok = int((view["verdict"] == "ok").sum()) if n else 0
    lines.append(
        f"{verdict} ({mode}): {n_ok} of {n} configuration(s) pass"
        + (f"; {len(result.problems)} problem(s)" if result.problems else "")
    )
    return "\n".join(lines)


def _num(value: float, spec: str) -> str:
    return "" if value is None or not np.isfinite(value) else format(value, spec)
