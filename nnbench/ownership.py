"""Who a results folder belongs to, and which of its runs are current.

A folder belongs to one experiment (``experiment.json``, written by
:func:`claim_folder`); ``current.json`` lists the runs each experiment of the
folder defines now (:func:`write_current`), so that runs of an earlier version
of it stay on disk but out of every table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from nnbench.errors import NnbenchError
from nnbench.fileio import atomic_write, is_regular_file

EXPERIMENT_FILE = "experiment.json"
RUNS = "runs"  # the folder of run files (nnbench.results writes them)
CURRENT_FILE = "current.json"


def write_current(out_dir: str | Path, name: str, run_ids: Iterable[str]) -> None:
    """Record the runs experiment ``name`` defines now (beside those of experiments
    merged into the folder): tables, reports, choices and comparisons use
    those, and the runs of an earlier version of it stay on disk unused."""
    out = Path(out_dir)
    current = _read_current(out) or {}
    current[name] = sorted(set(run_ids))
    text = json.dumps({"format": 1, "experiments": current}, separators=(",", ":"))
    atomic_write(out / CURRENT_FILE, text)


def _read_current(out: Path) -> dict[str, list[str]] | None:
    path = out / CURRENT_FILE
    if not is_regular_file(path):
        return None
    try:
        raw = json.loads(path.read_text())
        experiments = raw["experiments"]
        return {
            str(k): [i for i in v if isinstance(i, str)]
            for k, v in experiments.items()
            if isinstance(v, list)
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None  # not nnbench's: every run counts, as in a folder of an older nnbench


def current_ids(folder: str | Path) -> set[str] | None:
    """The ids of the runs the folder's experiments define now; None when the folder
    does not say (written by an older nnbench): then every run is current."""
    folder = Path(folder)
    if folder.name == RUNS and not (folder / CURRENT_FILE).exists():
        folder = folder.parent
    current = _read_current(folder)
    if current is None:
        return None
    return {i for ids in current.values() for i in ids}


def claim_folder(out_dir: str | Path, experiment: Mapping[str, Any], merge: bool = False) -> None:
    """Record ``experiment`` as the folder's; refuse a folder another experiment owns.

    A results folder belongs to one experiment (by name), so that a report of
    it never mixes two. With ``merge``, another experiment's runs may join:
    its description is kept beside the owner's as ``experiment.<name>.json``.
    """
    out = Path(out_dir)
    owner_file = out / EXPERIMENT_FILE
    name = experiment["name"]
    owner, owner_tuned = None, False
    if owner_file.exists() or owner_file.is_symlink():
        try:
            described = json.loads(owner_file.read_text()) if is_regular_file(owner_file) else {}
            owner, owner_tuned = described.get("name"), bool(described.get("tune"))
        except (OSError, ValueError, AttributeError, RecursionError):
            owner = None
        if not isinstance(owner, str):  # nnbench always writes one: the file is not its
            raise NnbenchError(
                f"{owner_file} is not a description nnbench wrote, and nnbench would replace "
                "it: give another --out, or move the file"
            )
    if owner not in (None, name):
        if not merge:
            raise NnbenchError(
                f"{out} holds the results of experiment {owner!r}, not {name!r}: "
                "give another --out, or --merge to add these runs to it"
            )
        if owner_tuned or experiment.get("tune"):
            # a tuned study stands for its optimizers by their finals: runs of
            # another experiment among them would be reported as, or instead of, them
            raise NnbenchError(
                f"--merge cannot mix a tuning study with other runs ({name!r} into {out}, which "
                f"holds {owner!r}): a tuned study is reported by its final runs, and the others "
                "would stand in for them; give another --out"
            )
        atomic_write(out / f"experiment.{name}.json", json.dumps(experiment, indent=2, default=str))
        return
    atomic_write(owner_file, json.dumps(experiment, indent=2, default=str))
