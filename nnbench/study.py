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

from nnbench import ownership, results, tune
from nnbench.errors import ConfigError
from nnbench.experiment import Experiment, RunSpec
from nnbench.fileio import atomic_write
from nnbench.runner import Execution, GridSummary, Session

OtherRunsWarning = results.EarlierRunsWarning  # the folder holds runs of an earlier version


def default_out_dir(experiment: Experiment) -> Path:
    return Path("results") / experiment.name


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path | None = None,
    execution: Execution | None = None,
    force: bool = False,
    merge: bool = False,
    prune: bool = False,
    **options: Any,
) -> GridSummary:
    """Run every unfinished run of ``experiment`` into ``out_dir`` (default
    ``results/<experiment name>``); return what happened.

    ``execution`` says how (:class:`nnbench.runner.Execution`), or its fields
    as keywords: ``run_experiment(exp, "out", n_jobs=2, log=None)``. ``force``
    reruns runs already finished (a failed rerun keeps the earlier result);
    ``merge`` lets this experiment's runs join a folder another experiment
    owns (never a tuning study's).

    The folder records which runs the experiment defines now (its trials and
    current finals, under ``[tune]``): runs of an earlier version of the file
    (other seeds, budget, trials) stay on disk but no table, report, choice
    or comparison uses them; one warning names them, and ``prune`` deletes
    them once the study is complete.
    """
    out = _out_dir(experiment, out_dir)
    if execution is not None and options:
        raise TypeError("give an Execution or its fields as keywords, not both")
    execution = execution or Execution(**options)
    specs = experiment.runs()  # under [tune], the trials: the finals use the same data
    complete = False  # a Ctrl-C ends the session's block early: nothing is pruned or named
    with Session(
        out, experiment.to_dict(), execution, specs, merge, force, experiment.n_runs
    ) as session:
        if experiment.tune is None:
            if not session.stopped:
                ownership.write_current(out, experiment.name, [s.run_id for s in specs])
            session.run(specs)
            complete = not session.stopped
        else:
            complete = _tuning_study(experiment, session, specs)
    if complete:
        _earlier_runs(out, prune, session.say)
    return session.summary


def _earlier_runs(out: Path, prune: bool, say: Any) -> None:
    """Prune the runs of an earlier version of the experiment, or name them in one line."""
    if prune:
        removed = results.prune(out)
        if removed:
            say(f"pruned {removed} runs of an earlier version of this experiment")
    earlier = results.earlier_runs(out)
    if earlier and prune:  # what is left is under names nnbench did not give: the user's
        names = ", ".join(r.path.name for r in earlier[:3]) + (", ..." if len(earlier) > 3 else "")
        warnings.warn(
            f"{out}: {len(earlier)} run(s) of an earlier version of this experiment are kept but "
            f"not used, in files nnbench did not name ({names}): remove them by hand if unwanted",
            OtherRunsWarning,
            3,
        )
    elif earlier:
        warnings.warn(f"{out}: {results.earlier_note(len(earlier))}", OtherRunsWarning, 3)


def _tuning_study(experiment: Experiment, session: Session, trials: Sequence[RunSpec]) -> bool:
    """Trials, the choice, then finals (see :mod:`nnbench.tune`); whether it got to
    the end (the finals chosen and run).

    The folder's current runs are the trials, and the finals of the choice
    the stored trials make now (none while some are missing), so that a
    stopped rerun never shows the finals of an earlier version."""
    trial_ids = [s.run_id for s in trials]
    if not session.stopped:
        chosen, missing = tune.choose(experiment, results.stored_runs(session.out))
        finals = [] if missing else tune.final_runs(experiment, chosen)
        current = trial_ids + [s.run_id for s in finals]
        ownership.write_current(session.out, experiment.name, current)
    session.say(f"tuning: {len(trials)} trial runs")
    session.run(trials)
    if session.stopped:
        return False
    chosen, missing = tune.choose(experiment, results.stored_runs(session.out))
    if missing:
        session.say(
            f"tuning: {missing} trial runs are missing: no finals until they are done "
            "(run the same command again)"
        )
        return False
    for c in chosen:
        session.say("chosen: " + tune.describe_choice(c))
    text = json.dumps({"chosen": chosen}, indent=2, default=str)
    atomic_write(session.out / tune.TUNE_FILE, text)
    finals = tune.final_runs(experiment, chosen)
    ownership.write_current(session.out, experiment.name, trial_ids + [s.run_id for s in finals])
    session.say(f"tuning: {len(finals)} final runs")
    session.run(finals)
    return not session.stopped


def _out_dir(experiment: Experiment, out_dir: str | Path | None) -> Path:
    if out_dir is None:
        return default_out_dir(experiment)
    if not str(out_dir).strip():
        raise ConfigError("--out must name a folder; got an empty path")
    return Path(out_dir)
