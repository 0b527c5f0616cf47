"""The time left of a grid, from its own finished runs (nnbench.eta)."""

import heapq

import numpy as np
import pytest

from nnbench.eta import Estimate, TimeLeft


def simulate(costs, workers, rng, noise=0.2):
    """Runs dispatched slowest first to ``workers``, each taking its cost (in
    seconds) times a noisy speed: the finish order, each run's seconds, and the
    time each finished."""
    order = sorted(costs, key=costs.get, reverse=True)
    free = [(0.0, w) for w in range(workers)]
    finished = []
    for run in order:
        start, w = heapq.heappop(free)
        seconds = costs[run] * float(np.exp(rng.normal(0.0, noise)))
        finished.append((start + seconds, run, seconds))
        heapq.heappush(free, (start + seconds, w))
    return sorted(finished)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_estimate_is_within_a_factor_2_once_a_tenth_is_done_when_the_slowest_run_first(
    workers,
):
    """A study whose first runs are the slowest (CG's and L-BFGS-B's: 50 times a
    first-order run), as the runner orders them: once a tenth of the runs are
    done the estimate is within a factor 2 of the time truly left, and the truth
    lies in its range; the time per run so far, times the runs left, is off by
    far more (the estimate nnbench printed before)."""
    rng = np.random.default_rng(workers)
    costs = {f"slow{i}": 50.0 for i in range(6)} | {f"fast{i}": 1.0 for i in range(114)}
    finished = simulate(costs, workers, rng)
    end = finished[-1][0]
    left = TimeLeft(costs, workers)
    naive_worst, covered = 1.0, 0
    for k, (when, run, seconds) in enumerate(finished[:-1], start=1):
        left.done(run, seconds)
        truth = end - when
        est = left.estimate()
        naive = when / k * (len(costs) - k)
        if k >= len(costs) // 10:
            assert truth / 2 <= est.seconds <= truth * 2, (k, est, truth)
            naive_worst = max(naive_worst, naive / truth, truth / naive)
            covered += est.low <= truth <= est.high
    assert naive_worst > 2  # the old estimate fails where this one holds
    assert covered / (len(costs) - len(costs) // 10) > 0.8


def test_nothing_is_said_before_the_first_run_and_the_range_narrows():
    left = TimeLeft({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}, workers=1)
    assert left.estimate() is None
    left.done("a", 10.0)
    first = left.estimate()
    assert first.seconds == pytest.approx(30.0) and (first.low, first.high) == (15.0, 60.0)
    left.done("b", 12.0)
    second = left.estimate()
    assert second.seconds == pytest.approx(22.0) and second.high - second.low < 45
    left.done("c", None)  # failed before starting: counted out, no speed
    assert left.estimate().seconds == pytest.approx(11.0)
    assert "left" in second.text() and Estimate(5.0, 5.0, 5.0).text() == "about 5 s left"


def test_the_runner_says_the_time_left_from_its_runs(tmp_path):
    """Progress lines carry the estimate once a run has finished; the last says done.
    The cost model weighs what a run does: more epochs, a wider network, CG's
    line searches, more evaluations."""
    from nnbench import experiment, runner, study

    exp = experiment.validate({
        "name": "eta", "data": {"dataset": "digits"}, "model": {"hidden": [[8]]},
        "grid": {"batch_size": [32], "seeds": [1, 2, 3]}, "budget": {"max_epochs": 1},
        "optimizer": [{"name": "gd"}, {"name": "cg"}],
    })  # fmt: skip
    said: list[str] = []
    study.run_experiment(exp, tmp_path / "r", log=said.append)
    lines = [s for s in said if s.startswith("[")]
    assert len(lines) == 6 and lines[-1].endswith("done")
    assert all(" left" in s for s in lines[:-1])
    specs = {s.optimizer: s for s in exp.runs()}
    shared = runner.share_data(list(specs.values()), None, lambda _: None)
    cost = runner._expected_cost
    gd, cg = specs["gd"], specs["cg"]
    assert cost(cg, shared) > cost(gd, shared)

    def with_(**values):
        return experiment.RunSpec(**{**gd.__dict__, "values": {**gd.values, **values}})

    assert cost(with_(max_epochs=3.0), shared) > cost(gd, shared)
    assert cost(with_(points=40), shared) > cost(gd, shared)
    assert cost(with_(hidden=(64,)), shared) > cost(gd, shared)
    # every kind of value a setting takes: the running training cost evaluates no rows
    running = cost(with_(train_rows="running"), shared)
    assert running < cost(gd, shared) <= cost(with_(train_rows="all"), shared)
    assert cost(with_(every="epoch", batch_size="full"), shared) > 0
