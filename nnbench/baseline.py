"""Baselines: a results folder's trajectories, and how far rounding moves each configuration.

**A baseline** (``nnbench baseline RESULTS --out FILE``; JSON, version 3) holds,
per configuration (everything that determines a run but the seed, its
``config_id``), every seed's trajectory (the metrics at every evaluation
point) and work (gradient evaluations; for scipy's minimisers, the
minibatches whose line search failed). It then *measures* each
configuration's sensitivity to rounding by running every run again under
the variants of :mod:`nnbench.calibration`: perturbed start weights, and in
turn over the seeds 2 BLAS threads and each other BLAS kernel family this
CPU can run (what another CI runner computes). From the differences:

- the **floor** of each metric at each evaluation point: 10 times the largest
  difference rounding made there, plus 100 epsilons of the value;
- the **horizon**: the evaluation points where rounding moved every cost by
  less than :data:`HORIZON_RTOL` of it (1e-6 in float64, 1e-3 in float32)
  and no accuracy at all. A *rounding-stable* configuration (first-order
  methods, here) keeps its whole trajectory within it; a *chaotic* one (CG:
  scipy's line searches branch on cost comparisons, and rounding tips them)
  only its first points, after which its runs decorrelate;
- for a chaotic configuration, the **noise** of each judged quantity (final
  accuracies, gradient evaluations, line-search failures): the standard
  deviation of its paired difference under rounding. With it, the check
  knows how many seeds a paired test needs to see a given change
  (:data:`EFFECTS`) and what change the seeds it has can resolve.

Reading a baseline checks it whole: a hand-edited file whose floors exceed
what a horizon allows, or whose accuracies or noise leave [0, 1], is refused
with one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnbench import calibration, results, stats
from nnbench.errors import NnbenchError
from nnbench.experiment import RunSpec
from nnbench.fileio import atomic_write, is_regular_file
from nnbench.naming import config_name
from nnbench.train import HIGHER_IS_BETTER

FORMAT = "nnbench-baseline"
VERSION = 3
# Rounding moved the costs by less than this, relative: still deterministic.
HORIZON_RTOL = {"float64": 1e-6, "float32": 1e-3}
SAFETY = 10.0  # floors are this many times the largest difference rounding made
EPSILONS = 100.0  # ... plus this many machine epsilons of the value
ALPHA = 0.01  # family-wise significance of the chaotic configurations' tests
POWER = 0.8
EFFECT = 0.02  # the accuracy change a chaotic configuration's seeds must be able to show
# The change each judged quantity's test must find with power POWER: an
# accuracy difference (--effect); gradient evaluations relative to their
# mean; the rate of line-search failures per minibatch, absolute.
RELATIVE_EFFECTS = {"grad_evals": 0.05}
FAILURE_RATE_EFFECT = 0.05
# Every score a run's rows hold (train.HIGHER_IS_BETTER), but the training accuracy,
# which rows evaluated on the running minibatch loss leave empty.
TRACKED = tuple(m for m in HIGHER_IS_BETTER if m != "train_accuracy")
COSTS = ("train_cost", "val_cost", "test_cost")
ACCURACIES = ("val_accuracy", "test_accuracy")  # what the check may judge on
WORK = ("grad_evals", "line_search_failures")
JUDGED = (*ACCURACIES, *WORK)  # the quantities a chaotic configuration is tested on
SCHEDULE = ("iteration", "epoch", "samples")
ROW_KEYS = (*SCHEDULE, "grad_evals", *TRACKED)


def entry_name(c: Mapping[str, Any]) -> str:
    """A baseline entry's configuration, named as :func:`config_name` names a run's."""
    try:
        workload = RunSpec.from_dict(c["spec"]).workload
    except (KeyError, TypeError, ValueError):
        workload = str(c.get("dataset", "?"))
    return config_name(
        c.get("name", c["label"]), workload, c.get("hidden", "?"), c.get("batch_size", "?")
    )


def _finite(value: Any) -> float | None:
    """A float for JSON: None stands for NaN and infinity."""
    value = float(value)
    return value if math.isfinite(value) else None


def array(values: Sequence[Any]) -> np.ndarray:
    """JSON numbers as floats, None as NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def trajectory(frame: pd.DataFrame) -> dict[str, list]:
    """A run's rows as columns of plain numbers (evaluation order)."""
    frame = frame.dropna(subset=["iteration"]).sort_values("iteration")
    return {c: [_finite(v) for v in frame[c]] for c in ROW_KEYS}


def runs_by_config(
    results_dir: Path,
) -> tuple[dict[str, dict[int, results.StoredRun]], dict[str, pd.DataFrame]]:
    """The folder's runs by configuration and seed, and their rows by run id."""
    stored = results.stored_runs(results_dir, current_only=True)
    frame = results.load(results_dir) if stored else pd.DataFrame()
    by_config: dict[str, dict[int, results.StoredRun]] = {}
    for run in stored.values():
        by_config.setdefault(run.spec.config_id, {})[run.spec.seed] = run
    rows = {rid: g for rid, g in frame.groupby("run_id")} if not frame.empty else {}
    return by_config, rows


def rows_of(rows: Mapping[str, pd.DataFrame], run: results.StoredRun) -> dict[str, list]:
    """The trajectory of a stored run: by its recomputed id, or by its file's name."""
    frame = rows.get(run.spec.run_id)
    if frame is None:
        frame = rows.get(run.path.stem, pd.DataFrame(columns=list(ROW_KEYS)))
    return trajectory(frame)


def work_of(run: results.StoredRun, rows: Mapping[str, list]) -> dict[str, float | None]:
    """A run's work: its gradient evaluations, and (for scipy's minimisers) the
    share of its minibatch minimisations whose line search failed."""
    meta = results.read_meta(run.path)
    failures = (meta.get("diagnostics") or {}).get("n_bad_status")
    steps = rows["iteration"][-1] if rows["iteration"] else None
    rate = None
    if isinstance(failures, (int, float)) and steps:
        rate = float(failures) / float(steps)
    evals = rows["grad_evals"][-1] if rows["grad_evals"] else None
    return {"grad_evals": evals, "line_search_failures": rate}


# -- making one ------------------------------------------------------------------------------


def make_baseline(
    results_dir: str | Path,
    n_jobs: int = 1,
    backend: str = "threading",
    scheduler: str | None = None,
    data_dir: str | Path | None = None,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
    effect: float = EFFECT,
    stack: bool = True,
) -> dict[str, Any]:
    """The baseline of a results folder, its rounding measured by recomputing every
    run twice: perturbed, and under one environment variant. Holds the folder's
    lock meanwhile, so no runner writes to it."""
    from nnbench.runner import results_lock

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise NnbenchError(f"{results_dir}: no such results folder; run an experiment first")
    if not 0 < effect < 1:
        raise NnbenchError(f"--effect must be an accuracy difference in (0, 1); got {effect!r}")
    with results_lock(results_dir):
        by_config, rows = _finished_runs(results_dir)
        ordered = sorted(by_config.items(), key=lambda kv: _sort_key(kv[1]))
        runs = [run for _, seeds in ordered for _, run in sorted(seeds.items())]
        folder = results_dir / "calibration" / _calibrated(runs, rows, threads)
        env_variants, notes = calibration.variants()
        measured, used = _calibration_runs(
            runs, folder, env_variants, n_jobs, backend, scheduler, data_dir, threads, log, notes,
            stack,
        )  # fmt: skip
        configurations = [
            _configuration(config_id, seeds, rows, measured) for config_id, seeds in ordered
        ]
    library, family, _ = calibration.kernel_families()
    meta = results.read_meta(runs[0].path)
    return {
        "format": FORMAT,
        "version": VERSION,
        "metric": "val_accuracy",
        "source": str(results_dir),
        "environment": meta.get("provenance", {}),
        "calibration": {
            "perturbation": calibration.PERTURBATION,
            "variants": ["perturbed", *used],
            "blas": {
                "library": library,
                "family": family,
                "calibrated": [v.family for v in env_variants if v.family and v.name in used],
            },
            "notes": notes,
            "horizon_rtol": HORIZON_RTOL,
            "safety": SAFETY,
            "epsilons": EPSILONS,
            "effect": effect,
            "alpha": ALPHA,
            "power": POWER,
        },
        "configurations": configurations,
    }


def _finished_runs(
    results_dir: Path,
) -> tuple[dict[str, dict[int, results.StoredRun]], dict[str, pd.DataFrame]]:
    """The folder's runs by configuration and their rows; every run must be finished."""
    by_config, rows = runs_by_config(results_dir)
    if not by_config:
        raise NnbenchError(f"{results_dir}: no runs; run the experiment before taking a baseline")
    for seeds in by_config.values():
        for run in seeds.values():
            if not run.status.is_final:
                raise NnbenchError(
                    f"{run.path}: {run.spec.label} seed {run.spec.seed} {run.status}; a "
                    "baseline needs every run finished: run the experiment again to retry it"
                )
    return by_config, rows


def _sort_key(seeds: Mapping[int, results.StoredRun]) -> tuple:
    spec = next(iter(seeds.values())).spec
    return (spec.label, spec.arch, str(spec.batch_size), spec.dtype, spec.phase, spec.config_id)


def _calibrated(
    runs: list[results.StoredRun], rows: Mapping[str, pd.DataFrame], threads: int
) -> str:
    """A digest of what the calibration measures: every run's trajectory (and the
    threads and the variants). Calibration runs are reused only for the very
    results they were made for; after the code changed them, they are made
    again, by that code."""
    digest = hashlib.sha256(f"threads={threads};v{VERSION}".encode())
    for run in sorted(runs, key=lambda r: r.spec.run_id):
        digest.update(run.spec.run_id.encode())
        digest.update(json.dumps(rows_of(rows, run), sort_keys=True, default=float).encode())
    return digest.hexdigest()[:16]


def _perturbed(spec: RunSpec) -> RunSpec:
    size = calibration.PERTURBATION[spec.dtype]
    return RunSpec(**{**spec.__dict__, "values": {**spec.values, "init_perturbation": size}})


def _calibration_runs(
    runs: list[results.StoredRun],
    folder: Path,
    env_variants: list[calibration.Variant],
    n_jobs: int,
    backend: str,
    scheduler: str | None,
    data_dir: str | Path | None,
    threads: int,
    log: Callable[[str], None] | None,
    notes: list[str],
    stack: bool = True,
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Every run recomputed, perturbed and under its environment variant: per base
    run id, the variants' ``{"variant", "rows", "work"}``; and the variants used.
    The runs stay in ``folder`` (a baseline of the same results, after Ctrl-C
    say, reuses them)."""
    from nnbench import runner

    cores = os.cpu_count() or 1

    def run_here(specs: Sequence[RunSpec], out: Path, jobs: int, n_threads: int) -> None:
        execution = runner.Execution(
            jobs, backend, scheduler, n_threads, data_dir, log, stack=stack
        )
        summary = runner.run_specs(specs, out, {"name": f"calibration-{out.name}"}, execution)
        if summary.interrupted:
            raise KeyboardInterrupt

    plan: list[tuple[calibration.Variant, list[results.StoredRun]]] = [
        (calibration.Variant("perturbed", perturb=True), runs)
    ]
    assigned = calibration.assign([(r.spec.config_id, r.spec.seed) for r in runs], env_variants)
    for variant in env_variants:
        mine = [r for i, r in enumerate(runs) if assigned.get(i) is variant]
        if mine:
            plan.append((variant, mine))
    measured: dict[str, list[dict[str, Any]]] = {r.spec.run_id: [] for r in runs}
    used = []
    for variant, members in plan:
        specs = [_perturbed(r.spec) if variant.perturb else r.spec for r in members]
        n_threads = variant.threads or threads
        jobs = max(1, min(n_jobs, cores // n_threads))
        out = folder / variant.name
        if log:
            log(f"calibration: {len(specs)} runs {variant.name}")
        calibration.run_variant(variant, specs, out, jobs, threads, run_here)
        found, honoured = _measured(variant, members, specs, out)
        if not honoured:  # the library ignored the family: the runs measured nothing new
            notes.append(f"{variant.name}: the BLAS did not run that kernel family; left out")
            continue
        for run_id, entry in found.items():
            measured[run_id].append(entry)
        used.append(variant.name)
    return measured, [u for u in used if u != "perturbed"]


def _measured(
    variant: calibration.Variant,
    members: Sequence[results.StoredRun],
    specs: Sequence[RunSpec],
    out: Path,
) -> tuple[dict[str, dict[str, Any]], bool]:
    """One variant's recomputed runs, per base run id, and whether the BLAS ran
    the kernel family the variant asked for."""
    stored = results.stored_runs(out)
    frame = results.load(out) if stored else pd.DataFrame()
    by_id = {rid: g for rid, g in frame.groupby("run_id")} if not frame.empty else {}
    found: dict[str, dict[str, Any]] = {}
    honoured = True
    for base, spec in zip(members, specs):
        run = stored.get(spec.run_id)
        if run is None or not run.status.is_final:
            raise NnbenchError(
                f"the rounding calibration of {base.spec.label} seed {base.spec.seed} did not "
                f"finish ({run.status if run else 'missing'}); run `nnbench baseline` again"
            )
        blas = results.read_meta(run.path).get("provenance", {}).get("blas", [])
        honoured = honoured and calibration.honoured(variant, blas)
        rows = rows_of(by_id, run)
        found[base.spec.run_id] = {
            "variant": variant.name,
            "rows": rows,
            "work": work_of(run, rows),
        }
    return found, honoured


def _configuration(
    config_id: str,
    seeds: Mapping[int, results.StoredRun],
    rows: Mapping[str, pd.DataFrame],
    measured: Mapping[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """A configuration's entry: its seeds' trajectories and work, and what rounding does."""
    spec = next(iter(seeds.values())).spec
    eps = float(np.finfo(spec.dtype).eps)
    trajectories = {s: rows_of(rows, run) for s, run in sorted(seeds.items())}
    work = {s: work_of(run, trajectories[s]) for s, run in sorted(seeds.items())}
    n_rows = min(len(t["iteration"]) for t in trajectories.values())
    shifts, final_shifts = _shifts(seeds, trajectories, work, measured, n_rows)
    # the largest value over seeds at each point (fmax: NaN only where all are NaN)
    scale = {
        m: np.fmax.reduce(
            np.abs(np.vstack([array(t[m])[:n_rows] for t in trajectories.values()])), axis=0
        )
        for m in TRACKED
    }
    horizon = _horizon(shifts, scale, HORIZON_RTOL[spec.dtype], n_rows)
    floors = {
        m: [
            # an accuracy moves by at most 1: a floor of 1 already allows anything
            _finite(
                min(
                    SAFETY * shifts[m][i] + EPSILONS * eps * np.nan_to_num(scale[m][i]),
                    1.0 if m in ACCURACIES else math.inf,
                )
            )
            for i in range(n_rows)
        ]
        for m in TRACKED
    }
    first = rows.get(spec.run_id)
    name = str(first["name"].iloc[0]) if first is not None and "name" in first else spec.label
    return {
        "config_id": config_id,
        "label": spec.label,
        "name": name,
        "optimizer": spec.optimizer,
        "options": dict(spec.options),
        "dataset": spec.dataset,
        "hidden": spec.arch,
        "batch_size": spec.batch_size,
        "dtype": spec.dtype,
        "phase": spec.phase,
        "spec": spec.to_dict(),
        "kind": "stable" if horizon == n_rows - 1 else "chaotic",
        "horizon": horizon,
        "noise": {
            q: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0 for q, v in final_shifts.items()
        },
        "seeds": {
            str(seed): {"status": str(run.status), "rows": trajectories[seed], "work": work[seed]}
            for seed, run in sorted(seeds.items())
        },
        "floors": floors,
    }


def _horizon(
    shifts: Mapping[str, np.ndarray], scale: Mapping[str, np.ndarray], rtol: float, n_rows: int
) -> int:
    """The last row up to which rounding moves no accuracy and the costs only
    within ``rtol`` (relative): -1 when even the first row moves."""
    horizon = -1
    for i in range(n_rows):
        costs_ok = all(
            not shifts[m][i] > rtol * max(np.nan_to_num(scale[m][i]), 1e-300) for m in COSTS
        )
        if not (costs_ok and all(shifts[m][i] == 0 for m in ACCURACIES)):
            break
        horizon = i
    return horizon


def _shifts(
    seeds: Mapping[int, results.StoredRun],
    trajectories: Mapping[int, Mapping[str, list]],
    work: Mapping[int, Mapping[str, float | None]],
    measured: Mapping[str, list[dict[str, Any]]],
    n_rows: int,
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """How far rounding moved each metric: the largest difference at each point,
    over seeds and variants; and every signed difference of the judged quantities."""
    shifts = {m: np.zeros(n_rows) for m in TRACKED}
    final_shifts: dict[str, list[float]] = {q: [] for q in JUDGED}
    for seed, run in sorted(seeds.items()):
        base = trajectories[seed]
        for other in measured.get(run.spec.run_id, []):
            for m in TRACKED:
                a, b = array(base[m])[:n_rows], array(other["rows"][m])
                b = np.pad(b, (0, max(0, n_rows - len(b))), constant_values=np.nan)[:n_rows]
                d = np.abs(b - a)
                d[np.isnan(a) & np.isnan(b)] = 0.0  # both unevaluated: no difference
                d[np.isnan(d)] = np.inf  # one evaluated, the other not: no bound
                shifts[m] = np.maximum(shifts[m], d)
            finals = {m: (_last(base[m]), _last(other["rows"][m])) for m in ACCURACIES}
            finals.update({q: (work[seed][q], other["work"][q]) for q in WORK})
            for q, (a, b) in finals.items():
                if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
                    final_shifts[q].append(float(b - a))
    return shifts, final_shifts


def _last(values: Sequence[Any]) -> float:
    arr = array(values)
    return float(arr[-1]) if len(arr) else math.nan


def write_baseline(results_dir: str | Path, path: str | Path, **kwargs: Any) -> Path:
    """Make the baseline of ``results_dir`` (see :func:`make_baseline`) and write it."""
    from nnbench.fileio import check_writable_target

    path = check_writable_target(path)  # before the calibration runs, not after
    baseline = make_baseline(results_dir, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, json.dumps(baseline, indent=1, allow_nan=False) + "\n")


# -- what a baseline asks of a check ---------------------------------------------------------


def effect_of(config: Mapping[str, Any], quantity: str, effect: float) -> float:
    """The change of ``quantity`` a test on this configuration must find."""
    if quantity in ACCURACIES:
        return effect
    if quantity == "line_search_failures":
        return FAILURE_RATE_EFFECT
    values = [
        e["work"].get(quantity) for e in config["seeds"].values() if isinstance(e.get("work"), dict)
    ]
    values = [v for v in values if v is not None]
    return RELATIVE_EFFECTS[quantity] * (float(np.mean(values)) if values else 0.0)


def judged(config: Mapping[str, Any], strict: bool, metric: str) -> list[str]:
    """The quantities a chaotic configuration is tested on: the metric (a drop), or
    with ``strict`` every final accuracy and the work counts (any change)."""
    wanted = JUDGED if strict else (metric,)
    out = []
    for q in wanted:
        finite = [_final(e, q) for e in config["seeds"].values()]
        if any(v is not None and math.isfinite(v) for v in finite):
            out.append(q)
    return out


def _final(entry: Mapping[str, Any], quantity: str) -> float | None:
    if quantity in WORK:
        return (entry.get("work") or {}).get(quantity)
    return _last(entry["rows"][quantity])


def final_values(entry: Mapping[str, Any], quantity: str) -> float:
    """A seed's final value of a judged quantity (NaN when it has none)."""
    value = _final(entry, quantity)
    return math.nan if value is None else float(value)


def seeds_needed(
    config: Mapping[str, Any], quantity: str, effect: float, alpha: float, sides: int
) -> int:
    """The seeds a paired test of ``quantity`` needs on this configuration."""
    return stats.seeds_needed(
        float(config["noise"].get(quantity, 0.0)),
        effect_of(config, quantity, effect),
        alpha,
        POWER,
        sides,
    )


def describe_needs(baseline: Mapping[str, Any], strict: bool = False) -> list[str]:
    """One line per chaotic configuration whose seeds cannot resolve its tests."""
    configs = baseline["configurations"]
    chaotic = [c for c in configs if c["kind"] == "chaotic"]
    metric = baseline.get("metric", "val_accuracy")
    n_tests = sum(len(judged(c, strict, metric)) for c in chaotic) or 1
    alpha = float(baseline["calibration"].get("alpha", ALPHA)) / n_tests
    effect = float(baseline["calibration"].get("effect", EFFECT))
    lines = []
    for c in chaotic:
        have = len(c["seeds"])
        for q in judged(c, strict, metric):
            need = seeds_needed(c, q, effect, alpha, 2 if strict else 1)
            if need > have:
                lines.append(
                    f"{entry_name(c)}: chaotic; a "
                    f"paired test of {q} needs {need} seeds, the results have {have}: it stays "
                    "unresolved until you run more seeds and re-baseline"
                )
    return lines


# -- reading one --------------------------------------------------------------------------------


def read_baseline(path: str | Path) -> dict[str, Any]:
    """A baseline file, checked; anything else is a clear error."""
    path = Path(path)
    remake = "make one with `nnbench baseline RESULTS_DIR --out FILE`"
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
            f"version {VERSION}, which measures rounding under other BLAS kernels too; {remake}"
        )
    problem = _malformed_calibration(raw.get("calibration"))
    if problem:
        raise NnbenchError(f"{path}: malformed baseline: its calibration {problem}; {remake}")
    configs = raw.get("configurations")
    if not isinstance(configs, list) or not configs:
        raise NnbenchError(f"{path}: malformed baseline: no configurations; {remake}")
    for i, c in enumerate(configs):
        problem = _malformed(c)
        if problem:
            raise NnbenchError(
                f"{path}: malformed baseline: configuration {i + 1} {problem}; {remake}"
            )
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


def _malformed_calibration(cal: Any) -> str | None:
    if not isinstance(cal, dict):
        return "is missing"
    effect, alpha = cal.get("effect"), cal.get("alpha")
    if not (_number(effect) and 0 < effect < 1):
        return f"has an effect {effect!r} outside (0, 1)"
    if not (_number(alpha) and 0 < alpha < 1):
        return f"has an alpha {alpha!r} outside (0, 1)"
    return None


_SEED = re.compile(r"-?(0|[1-9][0-9]*)")  # as str(int) writes it: no "01", no other digits


def _malformed(c: Any) -> str | None:
    """What is wrong with one configuration of a baseline, or None."""
    if not isinstance(c, dict):
        return "is not a table"
    for key, kind in (
        ("config_id", str),
        ("label", str),
        ("kind", str),
        ("seeds", dict),
        ("floors", dict),
        ("horizon", int),
        ("noise", dict),
    ):
        if not isinstance(c.get(key), kind) or isinstance(c.get(key), bool):
            return f"has no {key} of the right kind"
    if c["kind"] not in ("stable", "chaotic"):
        return f"has kind {c['kind']!r}"
    if c.get("dtype", "float64") not in HORIZON_RTOL:
        return f"has dtype {c.get('dtype')!r}"
    for q, noise in c["noise"].items():
        bound = 1.0 if q in ACCURACIES or q == "line_search_failures" else math.inf
        if q not in JUDGED or not _number(noise) or not 0 <= noise <= bound:
            return f"has a noise for {q!r} of {noise!r}, not a spread rounding can make"
    spec = c.get("spec", {})
    if not (isinstance(spec, dict) and isinstance(spec.get("values", {}), dict)):
        return "has a malformed spec"
    problem = _malformed_seeds(c["seeds"])
    if problem:
        return problem
    return _malformed_floors(c)


def _malformed_seeds(seeds: Mapping[str, Any]) -> str | None:
    if not seeds:
        return "has no seeds"
    for seed, entry in seeds.items():
        if not (_SEED.fullmatch(seed) and isinstance(entry, dict)):
            return f"has a malformed seed {seed!r}"
        rows, work = entry.get("rows"), entry.get("work")
        if entry.get("status") not in ("completed", "converged", "stopped", "diverged") or not (
            isinstance(rows, dict)
            and all(isinstance(rows.get(k), list) for k in ROW_KEYS)
            and isinstance(work, dict)
        ):
            return f"has a malformed seed {seed}"
        if not all(_number_or_null(v) for k in ROW_KEYS for v in rows[k]):
            return f"has a non-number in seed {seed}"
        if not all(_number_or_null(work.get(q)) for q in WORK):
            return f"has a non-number in the work of seed {seed}"
        for m in ACCURACIES:
            if any(v is not None and not 0 <= v <= 1 for v in rows[m]):
                return f"has an accuracy outside [0, 1] in seed {seed}"
    return None


def _malformed_floors(c: Mapping[str, Any]) -> str | None:
    """Floors that rounding could have made: one per evaluation every seed has,
    none above 1 for an accuracy, and within the horizon none beyond what the
    horizon's definition allows (a floor there wider than that would accept
    any change)."""
    # floors cover the evaluations every seed has (seeds stopped by tol or a
    # divergence end at different points): as many as the shortest seed's
    n_rows = min(len(e["rows"]["iteration"]) for e in c["seeds"].values())
    if not -1 <= c["horizon"] < n_rows:
        return f"has a horizon {c['horizon']} beyond its {n_rows} evaluations"
    if (c["kind"] == "stable") != (c["horizon"] == n_rows - 1):
        return f"is {c['kind']} with a horizon of {c['horizon'] + 1} of {n_rows} evaluations"
    dtype = c.get("dtype", "float64")
    eps = float(np.finfo(dtype).eps)
    for m in TRACKED:
        floor = c["floors"].get(m)
        if not (
            isinstance(floor, list)
            and len(floor) == n_rows
            and all(v is None or (_number(v) and v >= 0) for v in floor)
        ):
            return f"has no floors for {m}, one per evaluation"
        values = np.vstack([array(e["rows"][m])[:n_rows] for e in c["seeds"].values()])
        scale = np.nan_to_num(np.fmax.reduce(np.abs(values), axis=0))
        rounding = (0.0 if m in ACCURACIES else SAFETY * HORIZON_RTOL[dtype]) + EPSILONS * eps
        for i, v in enumerate(floor):
            if v is None:
                continue
            if m in ACCURACIES and v > 1:
                return f"has a floor {v:g} for {m}: an accuracy moves by at most 1"
            if i <= c["horizon"] and v > rounding * scale[i] * (1 + 1e-9) + 1e-300:
                return (
                    f"has a floor {v:g} for {m} at evaluation {i + 1}, within its horizon, "
                    f"where rounding allows at most {rounding * scale[i]:.3g}"
                )
    return None
