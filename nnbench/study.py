"""Running an experiment: a grid, or the tuning protocol's phases, each through
one :class:`nnbench.runner.Session`.

The study is the layer above the runner: it decides which runs there are (a
grid's, or a tuning study's trials, then the finals of what the trials
chose, :mod:`nnbench.tune`) and hands each list to the session, which knows
nothing of tuning. :func:`run_experiment` is the one way to run an
experiment, from the command line and from Python.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nnbench import results, tune
from nnbench.errors import ConfigError
from nnbench.experiment import Experiment, RunSpec
from nnbench.fileio import atomic_write
from nnbench.runner import Execution, GridSummary, Session


class OtherRunsWarning(UserWarning):
    """The results folder holds runs this experiment does not have."""


def default_out_dir(experiment: Experiment) -> Path:
    return Path("results") / experiment.name


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    execution: Execution | None = None,
    force: bool = False,
    merge: bool = False,
    **options: Any,
) -> GridSummary:
    """Run every unfinished run of ``experiment`` into ``out_dir`` (default
    ``results/<experiment name>``); return what happened.

    ``execution`` says how (:class:`nnbench.runner.Execution`), or its fields
    as keywords: ``run_experiment(exp, "out", n_jobs=2, log=None)``. ``force``
    reruns runs already finished (a failed rerun keeps the earlier result);
    ``merge`` lets this experiment's runs join a folder another experiment
    owns (never a tuning study's).
    """
    out = _out_dir(experiment, out_dir)
    if execution is not None and options:
        raise TypeError("give an Execution or its fields as keywords, not both")
    execution = execution or Execution(**options)
    specs = experiment.runs()  # under [tune], the trials: the finals use the same data
    with Session(
        out, experiment.to_dict(), execution, specs, merge, force, experiment.n_runs
    ) as session:
        if experiment.tune is None:
            if not merge and not session.stopped:
                _warn_of_other_configurations(out, specs)
            session.run(specs)
        else:
            _tuning_study(experiment, session, specs)
    return session.summary


def _tuning_study(experiment: Experiment, session: Session, trials: Sequence[RunSpec]) -> None:
    """Trials, the choice, then finals (see :mod:`nnbench.tune`)."""
    session.say(f"tuning: {len(trials)} trial runs")
    session.run(trials)
    if session.stopped:
        return
    chosen, missing = tune.choose(experiment, results.stored_runs(session.out))
    if missing:
        session.say(
            f"tuning: {missing} trial runs are missing: no finals until they are done "
            "(run the same command again)"
        )
        return
    for c in chosen:
        session.say("chosen: " + tune.describe_choice(c))
    text = json.dumps({"chosen": chosen}, indent=2, default=str)
    atomic_write(session.out / tune.TUNE_FILE, text)
    finals = tune.final_runs(experiment, chosen)
    session.say(f"tuning: {len(finals)} final runs")
    session.run(finals)


def _out_dir(experiment: Experiment, out_dir: str | Path | None) -> Path:
    if out_dir is None:
        return default_out_dir(experiment)
    if not str(out_dir).strip():
        raise ConfigError("--out must name a folder; got an empty path")
    return Path(out_dir)


def _warn_of_other_configurations(out: Path, specs: Sequence[RunSpec]) -> None:
    """Say when the folder holds runs of configurations the experiment does not
    have (an earlier version of the file, with another budget say): tables and
    reports of the folder show them beside this experiment's."""
    mine = {s.config_id for s in specs}
    other = [r for r in results.stored_runs(out).values() if r.spec.config_id not in mine]
    if other:
        n_configs = len({r.spec.config_id for r in other})
        warnings.warn(
            f"{out} holds {len(other)} runs of {n_configs} configuration(s) this experiment "
            "does not have (from an earlier version of it?); its tables and report show "
            "them too: give a fresh --out to keep them apart",
            OtherRunsWarning,
            stacklevel=3,
        )
