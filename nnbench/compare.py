"""``nnbench compare A B``: did B (a changed optimizer, say) get better than A?

Configurations are paired across the two folders by their identity without
the seed (``--ignore-options`` leaves the optimizer's options out of it, to
compare settings), and runs by seed. Per configuration and metric: the mean
of the paired differences ``B - A`` with its 95% Student's t interval, the
two-sided paired t-test's p-value and the exact sign-flip p-value, and a
verdict: *identical* (every difference exactly 0), *better* or *worse* (the
t-test rejects no difference at ``alpha``; the sign says which, a lower cost
or time being better), or *indistinguishable*.

Metrics: final validation and test accuracy and final training cost; with
``--target``, the gradient evaluations and training seconds to reach it,
interpolated, over the seeds where both sides reached it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnbench import results, stats
from nnbench.errors import NnbenchError
from nnbench.report.tables import with_time_to_target

METRICS = {  # name: True when higher is better
    "val_accuracy": True,
    "test_accuracy": True,
    "train_cost": False,
}
TARGET_METRICS = {"grad_evals_to_target": False, "train_seconds_to_target": False}


def _key(spec: Any, ignore_options: bool) -> str:
    identity = spec.identity(with_seed=False)
    if ignore_options:
        identity.pop("options", None)
    return str(sorted(identity.items()))


def _finals(folder: Path, ignore_options: bool, target: float | None) -> pd.DataFrame:
    if not Path(folder).is_dir():
        raise NnbenchError(f"{folder}: no such results folder")
    stored = results.stored_runs(folder)
    if not stored:
        raise NnbenchError(f"{folder}: no runs to compare")
    frame = results.load(folder)
    last = results.final_rows(frame)
    ids = {run.path.stem: rid for rid, run in stored.items()}  # older files: by file name
    last["run_id"] = last["run_id"].map(lambda r: ids.get(r, r))
    if target is not None:
        ttt = with_time_to_target(frame, target)
        ttt["run_id"] = ttt["run_id"].map(lambda r: ids.get(r, r))
        last = last.merge(ttt, on="run_id", how="left")
    rows = []
    for rid, run in stored.items():
        match = last[last["run_id"] == rid]
        if match.empty:
            continue
        row = match.iloc[0].to_dict()
        row.update(
            key=_key(run.spec, ignore_options),
            seed=run.spec.seed,
            ok=run.status.is_ok,
            name=f"{run.spec.label} | hidden {run.spec.arch} | batch {run.spec.batch_size}",
        )
        rows.append(row)
    return pd.DataFrame(rows)


def compare(
    a: str | Path,
    b: str | Path,
    target: float | None = None,
    alpha: float = 0.05,
    ignore_options: bool = False,
) -> pd.DataFrame:
    """One row per (configuration, metric) found in both folders."""
    fa, fb = _finals(Path(a), ignore_options, target), _finals(Path(b), ignore_options, target)
    common = sorted(set(fa["key"]) & set(fb["key"]))
    if not common:
        raise NnbenchError(
            f"{a} and {b} share no configuration (the same settings but the seed); "
            "--ignore-options pairs configurations that differ only in the optimizer's options"
        )
    metrics = dict(METRICS, **(TARGET_METRICS if target is not None else {}))
    out = []
    for side, frame, other in (("A", fa, fb), ("B", fb, fa)):
        for key in sorted(set(frame["key"]) - set(other["key"])):
            name = frame.loc[frame["key"] == key, "name"].iloc[0]
            out.append({"configuration": name, "metric": "", "n": 0, "verdict": f"only in {side}"})
    for key in common:
        ga = fa[fa["key"] == key].set_index("seed")
        gb = fb[fb["key"] == key].set_index("seed")
        seeds = sorted(set(ga.index) & set(gb.index))
        name = gb["name"].iloc[0] if len(ga["name"].unique()) == 1 else ga["name"].iloc[0]
        if ignore_options and ga["name"].iloc[0] != gb["name"].iloc[0]:
            name = f"{ga['name'].iloc[0]} -> {gb['name'].iloc[0].split(' | ')[0]}"
        ended = _ended_normally(ga, gb, seeds, name)
        if ended is not None:
            out.append(ended)
        for metric, higher_better in metrics.items():
            pairs = [
                (ga.at[s, metric], gb.at[s, metric])
                for s in seeds
                if ga.at[s, "ok"] and gb.at[s, "ok"]
            ]
            pairs = [(x, y) for x, y in pairs if np.isfinite(x) and np.isfinite(y)]
            row: dict[str, Any] = {"configuration": name, "metric": metric, "n": len(pairs)}
            if not pairs:
                out.append({**row, "verdict": "no pairs"})
                continue
            xa, xb = np.array(pairs).T
            test = stats.paired_test(xa, xb)
            verdict = "identical" if test.identical else "indistinguishable"
            if not test.identical and np.isfinite(test.p_t) and test.p_t < alpha:
                verdict = "better" if (test.mean > 0) == higher_better else "worse"
            out.append(
                {
                    **row,
                    "a": float(xa.mean()),
                    "b": float(xb.mean()),
                    "diff": test.mean,
                    "low": test.low,
                    "high": test.high,
                    "p": test.p_t,
                    "p_sign_flip": test.p_sign_flip,
                    "verdict": verdict,
                    "unpaired": len(set(ga.index) ^ set(gb.index)),
                }
            )
    return pd.DataFrame(out)


def _ended_normally(ga: pd.DataFrame, gb: pd.DataFrame, seeds: list, name: str) -> dict | None:
    """A row when the paired seeds did not all end normally on both sides: a seed
    that failed in B where it ended normally in A makes B worse (and the reverse
    better), whatever the metrics of the other seeds say."""
    lost = [s for s in seeds if ga.at[s, "ok"] and not gb.at[s, "ok"]]
    gained = [s for s in seeds if gb.at[s, "ok"] and not ga.at[s, "ok"]]
    if not lost and not gained and all(ga.at[s, "ok"] for s in seeds):
        return None
    verdict = "worse" if lost else "better" if gained else "identical"
    return {
        "configuration": name,
        "metric": "ended normally",
        "n": len(seeds),
        "a": float(sum(bool(ga.at[s, "ok"]) for s in seeds)),
        "b": float(sum(bool(gb.at[s, "ok"]) for s in seeds)),
        "verdict": verdict,
        "seeds": f"failed only in B: {_seeds(lost)}; only in A: {_seeds(gained)}",
    }


def _seeds(seeds: list) -> str:
    return ",".join(map(str, seeds)) or "none"


def format_table(table: pd.DataFrame) -> str:
    lines = [
        f"{'configuration':<50}{'metric':>24} {'n':>3} {'A':>10} {'B':>10} {'B - A':>10} "
        f"{'95% CI':>22} {'p':>8} {'p sign':>7}  verdict"
    ]
    for r in table.to_dict("records"):
        if r["verdict"] == "no pairs":
            lines.append(
                f"{r['configuration'][:49]:<50}{r['metric']:>24} {0:>3}  no seed of both "
                "ended normally"
            )
            continue
        if r["verdict"].startswith("only in"):
            lines.append(f"{r['configuration'][:49]:<50}{'':>24} {0:>3}  {r['verdict']}")
            continue
        if r["metric"] == "ended normally":
            lines.append(
                f"{r['configuration'][:49]:<50}{r['metric']:>24} {r['n']:>3} {r['a']:>10.0f} "
                f"{r['b']:>10.0f}  {r['seeds']}  {r['verdict']}"
            )
            continue
        ci = f"[{r['low']:+.4g}, {r['high']:+.4g}]" if np.isfinite(r["low"]) else ""
        lines.append(
            f"{r['configuration'][:49]:<50}{r['metric']:>24} {r['n']:>3} {r['a']:>10.4g} "
            f"{r['b']:>10.4g} {r['diff']:>+10.3g} {ci:>22} {r['p']:>8.2g} "
            f"{r['p_sign_flip']:>7.2g}  {r['verdict']}"
        )
    counts = table["verdict"].value_counts().to_dict()
    lines.append(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    return "\n".join(lines)


def exit_code(table: pd.DataFrame, fail_on: str) -> int:
    """1 when a metric got worse or a seed failed only in B (``worse``), or when
    anything differs, a configuration of one side only included (``different``)."""
    if fail_on == "never":
        return 0
    bad = {"worse"}
    if fail_on != "worse":
        # ("no pairs" alone is no difference: a target neither side reached, say;
        # seeds that ended normally on one side only have their own row)
        bad |= {"better", "indistinguishable", "only in A", "only in B"}
    return 1 if table["verdict"].isin(bad).any() else 0
