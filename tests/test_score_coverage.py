"""The coverage the report states for the AlgoPerf score's bootstrap range,
measured with the extended study's own runs as the truth, runs that never reach
the target included: a smaller run of ``benchmarks/score_coverage.py``
(``results/score-coverage.md``), slow tier."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXTENDED = ROOT / "results" / "extended"
# The test's Monte Carlo error: 300 simulated studies per number of seeds, so a
# submission's coverage p has standard error sqrt(p (1 - p) / 300): 0.025 at
# p = 0.76, 0.020 at 0.86, 0.017 at 0.91, 0.008 at 0.98. The stated ranges are the
# benchmark's measurement (400 studies, 2000 resamples) widened by 3 such
# errors at each end. The studies are the benchmark's first 300 (the same seed);
# 1000 bootstrap resamples instead of the report's 2000, for time (about 35 s on
# one core).
REPS = 300
BOOT = 1000


def load_benchmark():
    path = ROOT / "benchmarks" / "score_coverage.py"
    spec = importlib.util.spec_from_file_location("score_coverage", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def extended_case():
    bench = load_benchmark()
    study, _ = bench.folder_study_times(EXTENDED, 0.97)  # as its report: --target 0.97
    return bench, bench.empirical_case(study, "extended", large_draws=0)


@pytest.mark.slow
@pytest.mark.parametrize("n", [3, 5, 10])
def test_the_score_bootstrap_covers_what_the_report_says(extended_case, n):
    # imported here: the fast tier collects this file too
    from nnbench.report.tables import SCORE_COVERAGE_RANGES

    bench, case = extended_case
    sim = bench.simulate(case, n, REPS, BOOT)
    assert len(case.true) - len(sim.trivial) >= 4  # something is estimated
    lowest, highest = SCORE_COVERAGE_RANGES[n]
    coverage = sim.covered.mean().drop(sim.trivial)
    assert lowest <= coverage.min() and coverage.max() <= highest, coverage
