"""``nnbench compare A B``: did B (a changed optimizer, another machine) get better or worse than A?

Configurations are paired across the two folders by their identity without
the seed (``--ignore-options`` leaves the optimizer's options out of it, to
compare settings; a tuned study is paired by each optimizer's current final
runs per cell, whatever setting each side chose), and runs by seed.

One metric decides (final validation accuracy, or ``--metric``); the others
are reported beside it and decide nothing unless ``--all-metrics``. For each
metric, over the configurations (:func:`nnbench.stats.decide`):

- *identical*: every seed's difference within rounding (relative 1e-9 of
  the value, or the floors a baseline measured, with ``--baseline``); never
  tested, however few the seeds;
- otherwise a t-test of the difference: paired by seed, or Welch's over the
  runs of each side where the folders share fewer than two seeds. Its spread
  is never below a noise floor the data cannot drive to zero: the metric's
  step (one example of an accuracy), or a baseline's floors, whichever is
  larger; so equal moves of every seed are not certainty, and one example
  more in one seed never turns "can't tell" into "certain";
- *better* / *worse*: "no difference" rejected, with a mean difference of at
  least the margin; *equivalent*: "a difference of at least the margin"
  rejected (two one-sided tests). Holm's correction (with Shaffer's bound)
  over both hypotheses of every configuration: the chance of any false
  better, worse or equivalent among them is at most ``--alpha``;
- *inconclusive*: the seeds cannot tell.

The margin (``--margin``) is what counts as mattering, given, never
estimated from the values tested: by default 0.002 of an accuracy (20 of
MNIST's 10,000 validation images), 1% of a cost, 5% of a count of gradient
evaluations and 25% of a time (identical reruns at different times on a
shared machine moved by up to 17%, ``results/timing-reruns.md``); a
number, ``N%`` of A's mean, or ``spread``: the standard deviation of each
configuration's seeds in a separate ``--calibration`` folder (a
reproduction is *equivalent* when it differs by less than one seed-to-seed
standard deviation of the calibration).

A seed that failed in B where it ended normally in A makes that
configuration worse; seeds and configurations of one side only are listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnbench import results, stats, tune
from nnbench.errors import NnbenchError
from nnbench.naming import config_name
from nnbench.report.tables import with_time_to_target
from nnbench.train import HIGHER_IS_BETTER

# The scores compare judges, each with whether higher is better (train.HIGHER_IS_BETTER).
COMPARED = {m: HIGHER_IS_BETTER[m] for m in ("val_accuracy", "test_accuracy", "train_cost")}
TARGET_METRICS = {"grad_evals_to_target": False, "train_cpu_seconds_to_target": False}
# What counts as mattering, per metric: an absolute number, or a string "N%" of A's mean.
MARGINS = {
    "val_accuracy": 0.002,
    "test_accuracy": 0.002,
    "train_cost": "1%",
    "grad_evals_to_target": "5%",
    # Identical reruns at different times moved by up to 17% (results/timing-reruns.md)
    "train_cpu_seconds_to_target": "25%",
}
CLOCKS = {  # which clock decides a time metric
    "train_cpu_seconds_to_target": "CPU seconds of the training process, evaluation excluded",
}
ROUNDING_RTOL = 1e-9  # differences within this of the value are rounding
ALPHA = 0.05
FAIL_ON = ("worse", "different", "never")
SETTLED = ("identical", "equivalent")


@dataclass
class Comparison:
    """The verdicts (one row per configuration and metric) and what could not be paired."""

    table: pd.DataFrame
    metric: str
    alpha: float
    only: dict[str, list[str]] = field(default_factory=dict)  # side -> configurations
    all_metrics: bool = False


def parse_margin(text: str | float | None, metric: str) -> float | str:
    """A margin as given: a number >= 0, ``N%``, or ``spread``; the metric's default for None."""
    if text is None:
        return MARGINS.get(metric, "1%")
    if isinstance(text, (int, float)):
        value: Any = float(text)
    elif text == "spread" or (isinstance(text, str) and text.endswith("%")):
        value = text
        if text != "spread":
            try:
                number = float(text[:-1])
            except ValueError:
                number = math.nan
            if not (math.isfinite(number) and number >= 0):
                raise NnbenchError(f"--margin {text!r}: a percentage is a number >= 0, e.g. 1%")
    else:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
    if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
        raise NnbenchError(
            f"--margin must be a number >= 0, a percentage (1%) or spread; got {text!r}"
        )
    return value


def _margin_of(margin: float | str, a_values: np.ndarray, spread: float | None) -> float:
    """The margin of one configuration: a number as given, ``N%`` of A's mean, or
    ``spread``: the standard deviation of the calibration folder's seeds."""
    if isinstance(margin, float):
        return margin
    if margin == "spread":
        return math.nan if spread is None else spread
    finite = a_values[np.isfinite(a_values)]
    if not len(finite):
        return math.nan
    return float(margin[:-1]) / 100 * abs(float(finite.mean()))


def _spreads(folder: Path, ignore_options: bool, target: float | None, metric: str
             ) -> dict[str, float]:  # fmt: skip
    """``{configuration key: sd of its seeds' final metric}`` of a calibration folder
    (runs that ended normally, at least two seeds)."""
    finals = _finals(folder, ignore_options, target, "the calibration")
    out = {}
    for key, group in finals[finals["ok"]].groupby("key"):
        values = group[metric].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) >= 2:
            out[key] = float(values.std(ddof=1))
    return out


# -- the runs of a folder ----------------------------------------------------------------------


def _key(spec: Any, ignore_options: bool, label: str) -> tuple[str, str]:
    """What pairs a run with the other folder's: its identity without the seed;
    a tuned study's final runs by optimizer and cell (each side chose its setting)."""
    identity = spec.identity(with_seed=False)
    tuned = spec.phase == "final"
    if ignore_options or tuned:
        identity.pop("options", None)
    if tuned:
        identity.pop("trial", None)
    name = config_name(
        f"{spec.optimizer} (tuned)" if tuned else label, spec.workload, spec.arch, spec.batch_size
    )
    return str(sorted(identity.items())), name


def _finals(
    folder: Path, ignore_options: bool, target: float | None, side: str = "A"
) -> pd.DataFrame:
    """One row per run shown for ``folder``: its final metrics, key and name."""
    if not Path(folder).is_dir():
        raise NnbenchError(f"{folder}: no such results folder")
    stored = results.stored_runs(folder)
    if not stored:
        raise NnbenchError(f"{folder}: no runs to compare")
    frame = tune.reported(results.load(folder), tune.read_choices(folder))
    if frame.empty:
        raise NnbenchError(
            f"{folder}: a tuned study without final runs yet; run it to the end to compare it"
        )
    last = results.final_rows(frame)
    ids = {run.path.stem: rid for rid, run in stored.items()}  # older files: by file name
    last["run_id"] = last["run_id"].map(lambda r: ids.get(r, r))
    if target is not None:
        ttt = with_time_to_target(frame, target)
        ttt["run_id"] = ttt["run_id"].map(lambda r: ids.get(r, r))
        last = last.merge(ttt, on="run_id", how="left")
    by_id = last.set_index("run_id")
    rows = []
    seen: dict[tuple[str, int], str] = {}
    for rid, run in stored.items():
        if rid not in by_id.index:
            continue
        row = by_id.loc[rid].to_dict()
        key, name = _key(run.spec, ignore_options, str(row["name"]))
        row.update(key=key, name=name, seed=run.spec.seed, ok=run.status.is_ok, run_id=rid)
        row["config_id"] = run.spec.config_id
        other = seen.setdefault((key, run.spec.seed), run.spec.label)
        if other != run.spec.label:
            settings = sum(1 for k, s in seen if k == key and s == run.spec.seed) + 1
            raise NnbenchError(
                f"--ignore-options pairs configurations that differ only in the optimizer's "
                f"options, but {side} holds {settings} settings of {run.spec.optimizer} in one "
                f"cell ({other} and {run.spec.label}): compare folders with one setting each"
            )
        rows.append(row)
    return pd.DataFrame(rows)


# -- the comparison ----------------------------------------------------------------------------


def compare(
    a: str | Path,
    b: str | Path,
    metric: str = "val_accuracy",
    margin: float | str | None = None,
    alpha: float = ALPHA,
    target: float | None = None,
    ignore_options: bool = False,
    baseline: str | Path | None = None,
    all_metrics: bool = False,
    calibration: str | Path | None = None,
) -> Comparison:
    """One row per (configuration, metric) found in both folders, and what is on one side only.

    ``calibration``: the folder whose seeds' spread is the margin ``spread``.
    """
    metrics = dict(COMPARED, **(TARGET_METRICS if target is not None else {}))
    if metric not in metrics:
        hint = " (with --target)" if metric in TARGET_METRICS else ""
        raise NnbenchError(f"--metric must be one of {', '.join(metrics)}{hint}; got {metric!r}")
    if not 0 < alpha < 1:
        raise NnbenchError(f"--alpha must be in (0, 1); got {alpha!r}")
    chosen = parse_margin(margin, metric)
    if chosen == "spread" and calibration is None:
        raise NnbenchError(
            "--margin spread takes the spread of each configuration's seeds from a separate "
            "folder, never from the runs compared: add --calibration FOLDER (for example "
            "another run of A's experiment), or give the margin as a number or N%"
        )
    floors = _floors(baseline) if baseline is not None else {}
    fa = _finals(Path(a), ignore_options, target, "A")
    fb = _finals(Path(b), ignore_options, target, "B")
    spreads = _spreads(Path(calibration), ignore_options, target, metric) if calibration else {}
    common = sorted(set(fa["key"]) & set(fb["key"]))
    if not common:
        raise NnbenchError(
            f"{a} and {b} share no configuration (the same settings but the seed); "
            "--ignore-options pairs configurations that differ only in the optimizer's options"
        )
    only = {
        side: sorted(frame.loc[~frame["key"].isin(common), "name"].unique())
        for side, frame in (("A", fa), ("B", fb))
    }
    groups = [
        (fa[fa["key"] == k].set_index("seed"), fb[fb["key"] == k].set_index("seed")) for k in common
    ]
    out = []
    for ga, gb in groups:
        out.append(_ended_normally(ga, gb))
    for name, higher in metrics.items():
        mine = chosen if name == metric else None
        out += _metric_rows(groups, name, higher, mine, alpha, floors, spreads)
    table = pd.DataFrame([r for r in out if r is not None])
    table["decides"] = (table["metric"] == metric) | (
        all_metrics & table["metric"].isin(list(metrics))
    )
    table.loc[table["metric"] == "ended normally", "decides"] = True
    return Comparison(table, metric, alpha, only, all_metrics)


def _floors(path: str | Path) -> dict[tuple[str, str], float]:
    """``{(config_id, metric): final floor}`` from a baseline."""
    from nnbench.baseline import TRACKED, read_baseline

    out = {}
    for c in read_baseline(path)["configurations"]:
        for m in TRACKED:
            floor = c["floors"][m][-1] if c["floors"][m] else None
            if floor is not None:
                out[(c["config_id"], m)] = float(floor)
    return out


def _name(ga: pd.DataFrame, gb: pd.DataFrame) -> str:
    """The configuration's name, both options when --ignore-options paired two."""
    a, b = ga["name"].iloc[0], gb["name"].iloc[0]
    if a == b:
        return a
    return f"{a} -> {b.split(' | ')[0]}"


def _unpaired(ga: pd.DataFrame, gb: pd.DataFrame) -> str:
    only_a = sorted(set(ga.index) - set(gb.index))
    only_b = sorted(set(gb.index) - set(ga.index))
    parts = []
    if only_a:
        parts.append(f"seeds only in A: {','.join(map(str, only_a))}")
    if only_b:
        parts.append(f"seeds only in B: {','.join(map(str, only_b))}")
    return "; ".join(parts)


def _metric_rows(
    groups: list[tuple[pd.DataFrame, pd.DataFrame]],
    metric: str,
    higher: bool,
    margin: float | str | None,
    alpha: float,
    floors: dict[tuple[str, str], float],
    spreads: dict[str, float],
) -> list[dict[str, Any]]:
    """One family: the metric over every configuration of both folders, Holm-corrected."""
    margin = parse_margin(margin, metric) if margin is None else margin
    samples, margins, noise, tolerances, info = [], [], [], [], []
    for ga, gb in groups:
        sample, tol, note = _sample(ga, gb, metric)
        config_id = ga["config_id"].iloc[0]
        floor = floors.get((config_id, metric))
        values = np.concatenate([ga[metric].to_numpy(float), gb[metric].to_numpy(float)])
        noise.append(max(stats.value_step(values), floor or 0.0))
        if floor is not None:
            tol = np.fmax(tol, floor)
        key = ga["key"].iloc[0]
        if margin == "spread" and key not in spreads:
            raise NnbenchError(
                f"--calibration has no two seeds of {_name(ga, gb)} that ended normally: "
                "it cannot give that configuration's spread"
            )
        samples.append(sample)
        margins.append(_margin_of(margin, ga[metric].to_numpy(dtype=float), spreads.get(key)))
        tolerances.append(tol)
        info.append((_name(ga, gb), note))
    decisions = stats.decide(samples, margins, noise, tolerances, alpha, higher)
    rows = []
    for sample, d, (name, note) in zip(samples, decisions, info):
        xa, xb = np.asarray(sample.a, float), np.asarray(sample.b, float)
        verdict = d.verdict
        lost = note.get("lost", [])
        if lost:  # a seed with a value in A and none in B: as a failure, worse
            verdict = "worse"
        elif note.get("gained"):
            verdict = "better"
        elif not d.n:
            verdict = "no pairs"
        rows.append(
            {
                "configuration": name,
                "metric": metric,
                "n": d.n,
                "a": float(xa.mean()) if len(xa) else math.nan,
                "b": float(xb.mean()) if len(xb) else math.nan,
                "diff": d.mean,
                "low": d.low,
                "high": d.high,
                "test": d.test,
                "p": d.p,
                "p_holm": d.p_holm,
                "p_equiv_holm": d.p_equiv_holm,
                "margin": d.margin,
                "floor": d.floor,
                "verdict": verdict,
                "unpaired": note["text"],
            }
        )
    return rows


def _sample(ga: pd.DataFrame, gb: pd.DataFrame, metric: str
            ) -> tuple[stats.Sample, np.ndarray, dict[str, Any]]:  # fmt: skip
    """The values to test: paired by seed where both sides ended two or more of the
    same seeds normally (those with a finite value on both); else every finite
    value of each side (Welch).
    A seed that ended normally on both sides with a finite value on one only is
    kept out of the test and named: it decides the verdict (``lost``, ``gained``)."""
    both = sorted(set(ga.index) & set(gb.index))
    ok = [s for s in both if ga.at[s, "ok"] and gb.at[s, "ok"]]
    va = {s: float(ga.at[s, metric]) for s in ok}
    vb = {s: float(gb.at[s, metric]) for s in ok}
    lost = [s for s in ok if math.isfinite(va[s]) and not math.isfinite(vb[s])]
    gained = [s for s in ok if math.isfinite(vb[s]) and not math.isfinite(va[s])]
    seeds = [s for s in ok if math.isfinite(va[s]) and math.isfinite(vb[s])]
    parts = [text for text in [_unpaired(ga, gb)] if text]
    if lost:
        parts.append(f"no finite {metric} only in B: seeds {_seeds(lost)}")
    if gained:
        parts.append(f"no finite {metric} only in A: seeds {_seeds(gained)}")
    note: dict[str, Any] = {"lost": lost, "gained": gained}
    if len(ok) >= 2 or set(ga.index) == set(gb.index):  # the seeds are shared: paired
        xa = np.array([va[s] for s in seeds])
        xb = np.array([vb[s] for s in seeds])
        tol = ROUNDING_RTOL * np.fmax(np.abs(xa), np.abs(xb))
        note["text"] = "; ".join(parts)
        return stats.Sample(xa, xb, paired=True), tol, note
    a = _finite(ga, metric)
    b = _finite(gb, metric)
    parts.append(f"unpaired (Welch): {len(a)} runs of A, {len(b)} of B")
    note["text"] = "; ".join(parts)
    return stats.Sample(a, b, paired=False), np.zeros(0), note


def _finite(group: pd.DataFrame, metric: str) -> np.ndarray:
    values = group.loc[group["ok"].astype(bool), metric].to_numpy(dtype=float)
    return values[np.isfinite(values)]


def _ended_normally(ga: pd.DataFrame, gb: pd.DataFrame) -> dict | None:
    """A row when the paired seeds did not all end normally on both sides: a seed
    that failed in B where it ended normally in A makes B worse (and the reverse
    better), whatever the metrics of the other seeds say."""
    seeds = sorted(set(ga.index) & set(gb.index))
    lost = [s for s in seeds if ga.at[s, "ok"] and not gb.at[s, "ok"]]
    gained = [s for s in seeds if gb.at[s, "ok"] and not ga.at[s, "ok"]]
    if not lost and not gained and all(ga.at[s, "ok"] for s in seeds):
        return None
    verdict = "worse" if lost else "better" if gained else "identical"
    return {
        "configuration": _name(ga, gb),
        "metric": "ended normally",
        "n": len(seeds),
        "a": float(sum(bool(ga.at[s, "ok"]) for s in seeds)),
        "b": float(sum(bool(gb.at[s, "ok"]) for s in seeds)),
        "verdict": verdict,
        "unpaired": f"failed only in B: {_seeds(lost)}; only in A: {_seeds(gained)}",
    }


def _seeds(seeds: list) -> str:
    return ",".join(map(str, seeds)) or "none"


# -- the verdict as text and exit status -------------------------------------------------------


def exit_code(comparison: Comparison, fail_on: str) -> int:
    """1 when a deciding metric got worse or a seed failed only in B (``worse``); with
    ``different``, when a deciding metric is anything but identical or equivalent,
    or a configuration or a seed is on one side only."""
    if fail_on == "never":
        return 0
    table = comparison.table
    deciding = table[table["decides"]]
    if (deciding["verdict"] == "worse").any():
        return 1
    if fail_on == "different":
        seeds = table.loc[table["metric"] != "ended normally", "unpaired"].fillna("")
        if any(comparison.only.values()) or (seeds != "").any():
            return 1
        if (~deciding["verdict"].isin(SETTLED)).any():
            return 1
    return 0


def format_comparison(comparison: Comparison) -> str:
    """The deciding rows, then the reported ones, then what is on one side only."""
    table = comparison.table
    width = max(len("configuration"), *(len(c) for c in table["configuration"])) + 2
    head = (
        f"{'configuration':<{width}}{'metric':<28}{'n':>3} {'A':>10} {'B':>10} {'B - A':>10} "
        f"{'95% CI':>22} {'margin':>8} {'floor':>8} {'test':>9} {'p Holm':>7}  verdict"
    )
    clock = CLOCKS.get(comparison.metric)
    lines = [
        f"{comparison.metric} decides"
        + (f" (the clock: {clock})" if clock else "")
        + f"; Holm's correction over every better, worse and equivalent test at alpha "
        f"{comparison.alpha:g}; B - A > 0 means B is higher",
        head,
    ]
    deciding = table[table["decides"]]
    lines += [_line(r, width) for r in deciding.to_dict("records")]
    rest = table[~table["decides"]]
    if not rest.empty:
        lines.append("reported, deciding nothing (--all-metrics to let them):")
        lines += [_line(r, width) for r in rest.to_dict("records")]
    for side, names in comparison.only.items():
        lines += [f"{name}: only in {side}" for name in names]
    counts = deciding.loc[deciding["metric"] != "ended normally", "verdict"].value_counts()
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    lines.append(f"{comparison.metric}: {summary or 'nothing compared'}")
    return "\n".join(lines)


def _line(r: dict[str, Any], width: int) -> str:
    start = f"{r['configuration']:<{width}}{r['metric']:<28}{r['n']:>3} "
    text = r.get("unpaired")
    unpaired = f"  ({text})" if isinstance(text, str) and text else ""
    if r["metric"] == "ended normally":
        return start + f"{r['a']:>10.0f} {r['b']:>10.0f}  {r['unpaired']}  {r['verdict']}"
    if r["verdict"] == "no pairs":
        return start + "too few runs ended normally with a value (a test needs 2 a side)" + unpaired
    ci = f"[{r['low']:+.4g}, {r['high']:+.4g}]" if np.isfinite(r["low"]) else ""
    return (
        start
        + f"{r['a']:>10.4g} {r['b']:>10.4g} {r['diff']:>+10.3g} {ci:>22} "
        + f"{_num(r['margin'], '.3g'):>8} {_num(r['floor'], '.2g'):>8} {r['test'] or '':>9} "
        + f"{_num(r['p_holm'], '.2g'):>7}  {r['verdict']}"
        + unpaired
    )


def _num(value: float, spec: str) -> str:
    return "" if value is None or not np.isfinite(value) else format(value, spec)
