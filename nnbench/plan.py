"""``nnbench run --plan``: what an experiment's seeds can and cannot show, before any run.

For each test the report and ``nnbench compare`` will make of the experiment
(which optimizer ends higher over the study and cell by cell; a regression
check against its results), on the seeds the experiment plans:

- the family: how many tests share the error rate, and the level Holm's
  first step asks of the smallest p-value;
- the test that will decide (:func:`nnbench.stats.location_test`'s rule: the
  exact sign-flip test where its smallest p-value reaches that level, else
  the floored t-test), and the smallest p-value it can give;
- whether a verdict is possible at all;
- with a pilot folder (a committed run of the same experiment, or one given):
  the noise of the paired differences there and the smallest difference the
  test finds with 80% power (:func:`nnbench.stats.resolution`, two-sided, at
  Holm's first level: a normal approximation to the noncentral t).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnbench import stats
from nnbench.experiment import Experiment

POWER = 0.8
ALPHA = 0.05
METRIC = "test_accuracy"  # the report's verdicts are on final test accuracy


@dataclass(frozen=True)
class Line:
    """One test's plan."""

    test: str  # what is tested, in words
    family: int  # tests sharing the error rate
    level: float  # Holm's first level: alpha of the family / family
    n: int  # independent units (seeds)
    method: str  # the test that will decide
    smallest_p: float
    possible: bool
    noise: float  # sd of one unit's difference in the pilot (NaN without one)
    detectable: float  # smallest difference found with 80% power (NaN without a pilot)


def planned_seeds(experiment: Experiment) -> list[int]:
    """The seeds the report's verdicts use: a tuned study's final seeds, else the grid's."""
    if experiment.tune is not None:
        return list(experiment.tune["final_seeds"])
    return list(experiment.axes["seed"])


def plan(experiment: Experiment, pilot: str | Path | None = None) -> list[Line]:
    """The plan of every test the experiment's results will get (see the module)."""
    seeds = len(planned_seeds(experiment))
    names = sorted({o.name for o in experiment.optimizers})
    n_cells = len(experiment.cells())
    pairs = math.comb(len(names), 2)
    study_noise, cell_noise, seed_sd = _pilot_noise(pilot) if pilot else (math.nan,) * 3
    lines = []
    if pairs:
        if n_cells > 1:
            lines.append(_line("which ends higher, over the study (a pair, its seeds averaged "
                               "over cells)", pairs, ALPHA / 2, seeds, study_noise))  # fmt: skip
            lines.append(_line("which ends higher, in one cell (a pair)", pairs * n_cells,
                               ALPHA / 2, seeds, cell_noise))  # fmt: skip
        else:
            lines.append(_line("which ends higher (a pair)", pairs, ALPHA, seeds, cell_noise))
    configs = sum(o.n_settings for o in experiment.optimizers) * n_cells
    if experiment.tune is not None:
        configs = len(names) * n_cells
    # compare: one configuration's B - A, where a change moves each seed as a new draw would
    compare_noise = seed_sd * math.sqrt(2) if math.isfinite(seed_sd) else math.nan
    lines.append(_line("nnbench compare against these results (a configuration)", configs,
                       ALPHA, seeds, compare_noise, compare=True))  # fmt: skip
    return lines


def _line(
    test: str, family: int, alpha: float, n: int, noise: float, compare: bool = False
) -> Line:
    level = alpha / family
    # compare: a paired t-test, floored (two hypotheses a configuration, at most one true)
    method = "paired t (floored)" if compare else stats.choose_test(n, level)
    smallest = stats.smallest_p(n, "sign-flip" if method == "sign-flip" else "t")
    possible = smallest <= level if method == "sign-flip" else n >= 2
    detectable = (
        stats.resolution(noise, n, level, POWER, sides=2)
        if math.isfinite(noise) and n >= 2
        else math.nan
    )
    return Line(test, family, level, n, method, smallest, possible, noise, detectable)


def _pilot_noise(folder: str | Path) -> tuple[float, float, float]:
    """From a pilot folder's final test accuracies: the median standard deviation
    of a pair's seed-level differences (averaged over cells), of a pair's
    differences within one cell, and of one configuration's seeds."""
    from nnbench import results, tune
    from nnbench.report.tables import paired_finals

    frame = tune.reported(results.load(folder), tune.read_choices(folder))
    finals, _ = paired_finals(frame, METRIC)
    names = sorted({o for o, _ in finals})
    cell_list = sorted({c for _, c in finals}, key=lambda c: (str(c[0]), c[1]))
    study, per_cell, spread = [], [], []
    for runs in finals.values():
        if len(runs) >= 2:
            spread.append(float(np.std(list(runs.values()), ddof=1)))
    for a, b in itertools.combinations(names, 2):
        by_seed: dict[Any, list[float]] = {}
        for cell in cell_list:
            va, vb = finals.get((a, cell)), finals.get((b, cell))
            if not va or not vb:
                continue
            shared = sorted(va.keys() & vb.keys())
            d = [vb[s] - va[s] for s in shared]
            if len(d) >= 2:
                per_cell.append(float(np.std(d, ddof=1)))
            for s, x in zip(shared, d):
                by_seed.setdefault(s, []).append(x)
        means = [float(np.mean(v)) for v in by_seed.values()]
        if len(means) >= 2:
            study.append(float(np.std(means, ddof=1)))

    def median(values: list[float]) -> float:
        return float(np.median(values)) if values else math.nan

    return median(study), median(per_cell), median(spread)


def default_pilot(experiment: Experiment) -> Path | None:
    """``results/<name>`` when it holds runs: the committed results of the experiment."""
    folder = Path("results") / experiment.name
    return folder if (folder / "runs").is_dir() else None


def format_plan(experiment: Experiment, lines: list[Line], pilot: Path | None) -> str:
    seeds = planned_seeds(experiment)
    source = (
        f"the noise of {pilot}'s final {METRIC}"
        if pilot
        else "no pilot folder (--pilot FOLDER gives the noise for detectable differences)"
    )
    out = [
        f"{experiment.name}: {len(seeds)} seeds a configuration ({', '.join(map(str, seeds))}), "
        f"{len(experiment.cells())} cell(s); at alpha {ALPHA:g}, power {POWER:g}, with {source}",
    ]
    for line in lines:
        verdict = "a verdict is possible" if line.possible else "NO verdict is possible"
        detect = (
            f"; noise {line.noise:.4f}: it finds a difference of {line.detectable:.4f} with "
            f"{POWER:.0%} power"
            if math.isfinite(line.detectable)
            else ""
        )
        smallest = (
            f"its smallest p-value {line.smallest_p:.2g}"
            if line.smallest_p > 0
            else "no smallest p-value (a t-test of 2 or more can reach any level)"
        )
        out.append(
            f"- {line.test}: {line.family} test(s), Holm's first level {line.level:.2g}; "
            f"{line.method} over {line.n} seeds, {smallest}: {verdict}{detect}"
        )
    return "\n".join(out)
