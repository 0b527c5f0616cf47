"""Names for display: a configuration's name in a table, its label followed by the
settings that tell it apart from the others shown beside it."""

from __future__ import annotations

import pandas as pd

from nnbench.settings import RUN_SETTINGS


def config_name(label: str, workload: str, hidden: str, batch: object) -> str:
    """A configuration as compare, check and baseline print it, one line each:
    ``gd | mnist | hidden 25 | batch 50``."""
    return f"{label} | {workload} | hidden {hidden} | batch {batch}"


SETTING_COLUMNS = tuple(s.key for s in RUN_SETTINGS if s.scope == "run")
# A configuration's name shows these apart from the settings that vary between
# the configurations of a table: the cell (its workload, network and batch
# size) is shown beside it, and seeds are what a configuration is summarised
# over. Settings are compared within a workload: what one workload sets for
# all its runs (another dataset's activation or budget) names no configuration.
NAMED_APART = ("dataset", "data_options", "hidden", "batch_size", "seed")


def name_configurations(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its ``name`` column: each configuration's label, followed by
    the run settings that differ between the configurations of ``frame`` (the
    cell and the seed aside), so that two configurations that differ only by a
    setting never print the same name: ``adam[learning_rate=0.01] (l2=0.001)``."""
    if frame.empty:
        return frame
    configs = frame.drop_duplicates("config_id")
    within = configs.groupby("workload", sort=False)
    varying = [
        key
        for key in SETTING_COLUMNS
        if key not in NAMED_APART and (within[key].nunique(dropna=False) > 1).any()
    ]
    if not varying:
        frame["name"] = frame["label"]
        return frame
    suffix = {
        row["config_id"]: ", ".join(f"{k}={row[k]}" for k in varying)
        for row in configs.to_dict("records")
    }
    pairs = zip(frame["label"], frame["config_id"])
    frame["name"] = [f"{label} ({suffix[config]})" for label, config in pairs]
    return frame
