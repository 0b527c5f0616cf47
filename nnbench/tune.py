"""The tuning protocol: sampled trials, a choice on validation, final reruns.

An experiment with a ``[tune]`` section compares *tuned* optimizers, as the
literature on comparing optimizers asks (Choi et al. 2019; Sivaprasad et
al. 2020; Schmidt et al. 2021; Dodge et al. 2019)::

    [tune]
    trials = 16            # sampled settings per optimizer, per architecture x batch cell
    seed = 0               # draws the trial points; independent of the run seeds
    final_seeds = [101, 102, 103, 104, 105]

    [[optimizer]]
    name = "adam"
    learning_rate = { log_uniform = [1e-5, 1e-1] }

1. **Trials.** Per optimizer, ``trials`` points are drawn from its search
   space with a scrambled Halton sequence (``scipy.stats.qmc``; quasi-random,
   so even 16 points cover the space evenly), seeded by ``[tune] seed`` and
   the optimizer's name. An option given a search space is searched; one
   given a value is fixed; one given neither is searched over the
   optimizer's default space when it declares one (``nnbench list`` shows
   them). Every trial runs in every cell with the ``[grid]`` seeds
   (``phase = "trial"``). An optimizer with nothing to search (CG with its
   ``mb_maxiter`` given, say) has no trials: its one setting is the choice.
2. **The choice.** Per optimizer and cell, the trial with the best mean
   final *validation* accuracy over its seeds (a run that failed counts as
   accuracy 0; the lower trial index wins a tie). Test accuracy is never
   looked at.
3. **Finals.** The chosen trial reruns over ``final_seeds``
   (``phase = "final"``): the numbers a report gives for the optimizer.

A choice in the outer tenth of its space (in log scale for log-uniform
spaces) is flagged "edge": the best setting may lie beyond the space. The
protocol resumes like a grid: finished trials and finals are skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnbench import optimizers
from nnbench.experiment import EDGE_FRACTION, Experiment, spaces_of, trial_points, trial_runs
from nnbench.space import is_edge

TUNE_FILE = "tune.json"

__all__ = ["EDGE_FRACTION", "TUNE_FILE", "choose", "final_runs", "read_choices", "reported"]


def choose(experiment: Experiment, stored: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The best trial per optimizer and cell, from the stored trial runs; and how
    many trial runs are missing (then nothing is chosen). A trial run that
    failed counts as accuracy 0: a setting that crashes is a bad setting."""
    from nnbench.results import read_last_row

    trials = trial_runs(experiment)
    missing = [s for s in trials if s.run_id not in stored]
    if missing:
        return [], len(missing)
    scores: dict[tuple, dict[int, list[float]]] = {}
    options: dict[tuple, dict[int, dict]] = {}
    for spec in trials:
        key = (spec.optimizer, spec.workload, spec.hidden, spec.batch_size)
        last = read_last_row(stored[spec.run_id].path)
        ok = stored[spec.run_id].status.is_final
        acc = last.get("val_accuracy", math.nan) if last and ok else math.nan
        scores.setdefault(key, {}).setdefault(spec.trial, []).append(
            float(acc) if np.isfinite(acc) else 0.0
        )
        options.setdefault(key, {})[spec.trial] = dict(spec.options)
    chosen = []
    spaces = {opt.name: spaces_of(opt) for opt in experiment.optimizers}
    for opt in experiment.optimizers:  # nothing searched: the one setting, trial 0
        if not spaces[opt.name]:
            fixed = trial_points(opt, 1, 0)[0]
            for workload, hidden, batch in experiment.cells():
                key = (opt.name, workload.name, tuple(hidden), batch)
                scores[key], options[key] = {0: [math.nan]}, {0: fixed}
    for key, by_trial in scores.items():
        means = {t: float(np.mean(v)) for t, v in by_trial.items()}
        best = min(means, key=lambda t: (-means[t], t))
        opts = options[key][best]
        full = {**_defaults(key[0]), **opts}
        edges = [k for k, space in spaces[key[0]].items() if is_edge(space, full[k], EDGE_FRACTION)]
        chosen.append(
            {
                "optimizer": key[0],
                "workload": key[1],
                "hidden": list(key[2]),
                "batch_size": key[3],
                "trial": best,
                "options": opts,
                "searched": {k: full[k] for k in spaces[key[0]]},
                "val_accuracy": means[best] if np.isfinite(means[best]) else None,
                "edge": edges,
            }
        )
    return chosen, 0


def _defaults(name: str) -> dict[str, Any]:
    return {k: o.default for k, o in optimizers.get(name).options.items()}


def final_runs(experiment: Experiment, chosen: list[dict[str, Any]]) -> list[Any]:
    return [
        experiment.spec(
            c["optimizer"],
            c["options"],
            "final",
            c["trial"],
            experiment.workload(c["workload"]) if c.get("workload") else None,
            hidden=tuple(c["hidden"]),
            batch_size=c["batch_size"],
            seed=seed,
        )
        for c in chosen
        for seed in experiment.tune["final_seeds"]
    ]


def describe_choice(c: Mapping[str, Any]) -> str:
    """``adam, mnist, hidden 128, batch 50: learning_rate=0.0031 (trial 7, validation
    0.9701)`` with ``; edge: learning_rate`` when a choice lies at the edge of its space."""
    hidden = "-".join(map(str, c["hidden"])) or "none"
    cell = f"{c['optimizer']}, {c['workload']}, hidden {hidden}, batch {c['batch_size']}"
    if not c["searched"]:
        return f"{cell}: nothing to search"
    searched = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in c["searched"].items()
    )
    text = f"{cell}: {searched} (trial {c['trial']}, validation {c['val_accuracy']:.4f})"
    return text + (f"; edge: {', '.join(c['edge'])}" if c["edge"] else "")


def read_choices(results_dir: Any) -> list[dict[str, Any]] | None:
    """What a tuned study chose, from its ``tune.json`` (None before the choice)."""
    from pathlib import Path

    from nnbench.fileio import is_regular_file

    path = Path(results_dir) / TUNE_FILE
    if not is_regular_file(path):
        return None
    try:
        chosen = json.loads(path.read_text())["chosen"]
        return [c for c in chosen if isinstance(c, dict)]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def current_finals(frame: Any, chosen: list[dict[str, Any]] | None) -> Any:
    """``frame`` without the final runs of an earlier choice. A rerun can choose
    again (a trial that failed, retried, may win; a new ``[tune] seed`` or
    search space draws other trials): the finals of a setting no longer chosen
    stay on disk, but are not the optimizer's numbers any more. Finals are
    matched on the chosen *setting* (its options), not on a trial's index,
    which names another setting once the draws change."""
    if not chosen or "phase" not in frame or frame.empty:
        return frame
    from nnbench.experiment import _canonical_options
    from nnbench.results import batch_number

    keep = set()
    for c in chosen:
        try:
            hidden = "-".join(map(str, c["hidden"])) or "none"
            # canonical, as run files store them (a default spelled out is no option)
            options = json.dumps(_canonical_options(c["optimizer"], c["options"]), sort_keys=True)
            # a choice written before studies had workloads stands for any
            workload = c.get("workload")
            keep.add((workload, c["optimizer"], hidden, batch_number(c["batch_size"]), options))
        except (KeyError, TypeError, ValueError):
            continue
    keys = zip(*(frame[c] for c in ("workload", "optimizer", "hidden", "batch_size", "options")))
    current = np.array(
        [
            (w, o, h, float(b), opts) in keep or (None, o, h, float(b), opts) in keep
            for w, o, h, b, opts in keys
        ],
        dtype=bool,
    )
    return frame[(frame["phase"] != "final").to_numpy() | current]


def reported(frame: Any, chosen: list[dict[str, Any]] | None) -> Any:
    """The runs that stand for a results folder in its tables, figures, profile and
    comparisons: a tuned study's current finals (each optimizer's chosen
    setting, on seeds the choice never saw), else its grid runs. A tuned study
    whose finals are not run yet has none: its trials are for choosing."""
    if "phase" not in frame or frame.empty:
        return frame
    frame = current_finals(frame, chosen)
    finals = frame["phase"] == "final"
    if finals.any() or (frame["phase"] == "trial").any():
        return frame[finals]
    return frame
