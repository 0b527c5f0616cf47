"""The results store: one Parquet file per finished run, read back as one long table.

Layout of a results folder::

    results/<experiment>/
        experiment.json        the validated experiment, as run (its owner: nnbench.ownership)
        current.json           the runs its experiments define now (nnbench.ownership)
        runs/<run_id>.parquet  one per run: a row per evaluation point, with the
                               run's configuration, status, diagnostics and provenance

Each run file is written through :func:`nnbench.fileio.atomic_write`, so a
crash never leaves a half-written run. A file records the format of its spec;
reading needs neither the optimizer registry nor the plugins that made the
runs, and a run's identity is recomputed from its stored spec, so results of
an older nnbench are still recognised. Results are never read with pickle.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nnbench.errors import NnbenchError
from nnbench.experiment import RunSpec
from nnbench.fileio import atomic_write, is_regular_file, remove_temporaries
from nnbench.naming import SETTING_COLUMNS, name_configurations
from nnbench.ownership import RUNS, current_ids
from nnbench.settings import FULL_BATCH
from nnbench.status import Status
from nnbench.train import METRICS

META_KEY = b"nnbench"
RUN_FORMAT = 1  # of a run file's metadata; 0: nnbench 0.1 (read, never written)

# The configuration columns of every row: the run's identity, then every run
# setting of the schema (made from it: a setting declared there is a column
# here), then how it ended.
IDENTITY_COLUMNS = ("run_id", "config_id", "label", "name", "experiment", "optimizer", "options")
CONFIG_COLUMNS = (
    *IDENTITY_COLUMNS,
    *SETTING_COLUMNS,
    "workload",
    "n_layers",
    "phase",
    "trial",
    "status",
    "message",
)
# How a run was run, beside its rows: whether it shared the machine with others.
PROVENANCE_COLUMNS = ("n_jobs", "backend")


REQUIRED_COLUMNS = frozenset(
    ("run_id", "label", "optimizer", "hidden", "batch_size", "seed", "iteration")
)


class ResultsWarning(UserWarning):
    """A results file could not be read and was left out."""


def run_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / RUNS / f"{run_id}.parquet"


def batch_number(batch_size: int | float | str) -> float:
    """A batch size as a number for the table: ``inf`` stands for ``"full"``."""
    return float("inf") if batch_size == FULL_BATCH else float(batch_size)


def column_value(key: str, value: Any) -> Any:
    """A setting's value as a column holds it: the architecture as text
    (``500-300``), a batch size as a number (``inf`` for full batch)."""
    if key == "hidden":
        return "-".join(map(str, value)) or "none"
    if key == "batch_size":
        return batch_number(value)
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return value


def config_row(spec: RunSpec, status: str, message: str) -> dict[str, Any]:
    """The configuration columns of a run's rows (``name`` is the label here: a
    table of many configurations names them, :func:`name_configurations`)."""
    row = {
        "run_id": spec.run_id,
        "config_id": spec.config_id,
        "label": spec.label,
        "name": spec.label,
        "experiment": spec.experiment,
        "optimizer": spec.optimizer,
        "options": json.dumps(dict(spec.options), sort_keys=True),
    }
    row.update({key: column_value(key, spec.values[key]) for key in SETTING_COLUMNS})
    row.update(
        workload=spec.workload,
        n_layers=len(spec.hidden),
        phase=spec.phase,
        trial=-1 if spec.trial is None else spec.trial,
        status=str(status),
        message=message,
    )
    return row


def run_frame(
    spec: RunSpec, rows: list[dict[str, Any]], status: str | Status, message: str
) -> pd.DataFrame:
    """One run as a long table: configuration columns, then the metrics per row."""
    status = Status(status)
    metrics = pd.DataFrame(rows, columns=list(METRICS))
    if metrics.empty:  # a failed run still gets a row, so it is never silently dropped
        metrics = pd.DataFrame([{k: np.nan for k in METRICS}])
    metrics = metrics.astype({k: "float64" for k in METRICS})
    config = config_row(spec, status, message)
    front = pd.DataFrame({k: [v] * len(metrics) for k, v in config.items()})
    return pd.concat([front, metrics.reset_index(drop=True)], axis=1)


def write_run(
    out_dir: str | Path,
    spec: RunSpec,
    rows: list[dict[str, Any]],
    status: str | Status,
    message: str,
    prov: Mapping[str, Any],
    diagnostics: Mapping[str, Any] | None = None,
) -> Path:
    """Write one run atomically: to a temporary file, then renamed into place."""
    frame = run_frame(spec, rows, status, message)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {
        "format": RUN_FORMAT,
        "spec": spec.to_dict(),
        "status": str(Status(status)),
        "message": message,
        "diagnostics": dict(diagnostics or {}),
        "provenance": dict(prov),
    }
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps(meta, default=str).encode()
    table = table.replace_schema_metadata(schema_meta)
    dest = run_path(out_dir, spec.run_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(dest, lambda fh: pq.write_table(table, fh))


# A run file holds one row per evaluation: more than this is no run nnbench
# wrote (the footer says how many before anything is read).
MAX_ROWS_PER_RUN = 1_000_000


def read_meta(path: str | Path) -> dict[str, Any]:
    """The run's spec, status, message and provenance, from the file's footer only.

    A file is a run only with nnbench's metadata, a known status, a spec
    naming its optimizer, the columns every run has, and at most
    :data:`MAX_ROWS_PER_RUN` rows.
    """
    footer = pq.read_metadata(path)
    return _meta_of(footer, footer.schema.to_arrow_schema())


def _meta_of(footer: pq.FileMetaData, schema: pa.Schema) -> dict[str, Any]:
    meta = schema.metadata or {}
    if META_KEY not in meta:
        raise ValueError("no nnbench metadata")
    raw = json.loads(meta[META_KEY])
    if not isinstance(raw, dict) or not isinstance(raw.get("spec"), dict):
        raise ValueError("malformed nnbench metadata")
    if not isinstance(raw["spec"].get("optimizer"), str) or not raw["spec"]["optimizer"]:
        raise ValueError("its spec names no optimizer")
    status = Status(raw.get("status"))  # an unknown status is not a readable run
    missing = REQUIRED_COLUMNS - set(schema.names)
    if missing:
        raise ValueError(f"no column {', '.join(sorted(missing))}")
    if status.is_ok and footer.num_rows == 0:  # a finished run has its start evaluation
        raise ValueError(f"{status} with no evaluation rows")
    if footer.num_rows > MAX_ROWS_PER_RUN:
        raise ValueError(
            f"{footer.num_rows:,} rows, more than the {MAX_ROWS_PER_RUN:,} a run records"
        )
    # checked here, not only where rows are read: a file the reports leave out
    # must not count as finished when the runner resumes
    for name in METRICS:
        if name in schema.names and not _is_number(schema.field(name).type):
            raise ValueError(f"column {name} holds {schema.field(name).type}, not numbers")
    return raw


def _is_number(kind: pa.DataType) -> bool:
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    )


# -- the folder's current runs --------------------------------------------------------


class EarlierRunsWarning(UserWarning):
    """The results folder holds runs of an earlier version of its experiment."""


def earlier_runs(out_dir: str | Path) -> list[StoredRun]:
    """The readable runs of the folder that no experiment of it defines now."""
    current = current_ids(out_dir)
    if current is None:
        return []
    return [r for i, r in stored_runs(out_dir).items() if i not in current]


def earlier_note(n_runs: int) -> str:
    return (
        f"{n_runs} run{'s' if n_runs != 1 else ''} of an earlier version of this experiment "
        f"{'are' if n_runs != 1 else 'is'} kept but not used; `nnbench run --prune` removes them"
    )


def prune(out_dir: str | Path) -> int:
    """Delete the files of the runs no experiment of the folder defines now, among
    those nnbench wrote under the names it gave; return how many."""
    current = current_ids(out_dir)
    if current is None:
        return 0
    removed = 0
    for path in _run_files(Path(out_dir)):
        try:
            run_id = RunSpec.from_dict(read_meta(path)["spec"]).run_id
        except Exception:
            continue  # not a run nnbench can read: not its to delete
        if run_id not in current and named_by_nnbench(path):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def named_by_nnbench(path: str | Path) -> bool:
    """Whether ``path`` bears the name nnbench gave it: ``<id>.parquet``, the id its
    rows were written with (an older nnbench's id, for a file of an older
    version). A copy the user made under another name is the user's, and
    nnbench never deletes it."""
    path = Path(path)
    try:
        column = pq.read_table(path, columns=["run_id"]).column("run_id")
        written = column[0].as_py() if len(column) else None
    except Exception:
        return False
    return (
        isinstance(written, str)
        and re.fullmatch(r"[0-9a-f]{16}", written) is not None
        and path.name == f"{written}.parquet"
    )


def _better(status: Status, path: Path, run_id: str, previous: tuple[Status, Path] | None) -> bool:
    """Of two files of one run (a copy, an old name and a new), whether this one
    stands for it: a final result before another, then the file under the
    run's own name, then one under a name nnbench gave, so that a copy never
    hides a newer result."""
    if previous is None:
        return True
    if status.outranks(previous[0]) or previous[0].outranks(status):
        return status.outranks(previous[0])
    own = f"{run_id}.parquet"
    if own in (path.name, previous[1].name):
        return path.name == own
    return named_by_nnbench(path) and not named_by_nnbench(previous[1])


@dataclass(frozen=True)
class StoredRun:
    """A run file found in a results folder."""

    path: Path
    spec: RunSpec
    status: Status


def stored_runs(out_dir: str | Path, current_only: bool = False) -> dict[str, StoredRun]:
    """``{run_id: StoredRun}`` for every readable run file, the id recomputed from
    the stored spec (unreadable files are absent); with ``current_only``, only
    the runs the folder's experiments define now (:func:`current_ids`)."""
    if current_only:
        current = current_ids(out_dir)
        every = stored_runs(out_dir)
        return every if current is None else {i: r for i, r in every.items() if i in current}
    found: dict[str, StoredRun] = {}
    folder = Path(out_dir) / RUNS
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.parquet")):
        if not is_regular_file(path):  # a FIFO would block its reader forever
            continue
        try:
            meta = read_meta(path)
            spec = RunSpec.from_dict(meta["spec"])
        except Exception:  # a foreign or damaged file: not a finished run
            continue
        run = StoredRun(path, spec, Status(meta["status"]))
        previous = found.get(spec.run_id)
        if _better(run.status, path, spec.run_id, previous and (previous.status, previous.path)):
            found[spec.run_id] = run
    return found


def read_last_row(path: str | Path) -> dict[str, Any] | None:
    """The metrics of a run file's last evaluation (None when it has none)."""
    table = pq.read_table(path, columns=["iteration", "val_accuracy", "test_accuracy"])
    frame = table.to_pandas().dropna(subset=["iteration"])
    if frame.empty:
        return None
    return frame.sort_values("iteration").iloc[-1].to_dict()


def clean_temporary(out_dir: str | Path) -> int:
    """Remove temporary files a killed writer left behind; return how many."""
    return remove_temporaries(Path(out_dir) / RUNS) + remove_temporaries(out_dir)


def _run_files(path: Path) -> Iterable[Path]:
    if path.is_file():
        return [path]
    folder = path / RUNS if (path / RUNS).is_dir() else path
    return sorted(p for p in folder.glob("*.parquet") if is_regular_file(p))


def load(
    path: str | Path, metrics: Sequence[str] = METRICS, every_version: bool = False
) -> pd.DataFrame:
    """Every run under ``path`` as one long DataFrame, a row per evaluation point.

    ``path`` is a results folder (``results/<experiment>``), its ``runs``
    folder, or one run file; ``metrics``, the metric columns to read (all by
    default). Partly finished experiments load what is there; unreadable
    files are left out with a :class:`ResultsWarning`. In a folder that names
    its current runs (:func:`write_current`), runs of an earlier version of
    the experiment are left out too, with one :class:`EarlierRunsWarning`
    (``every_version``: kept).

    Each file is opened once (its footer checked before any row is read),
    only the metric columns are read, and the rows of all runs become one
    table at once; the configuration columns come from each run's spec, and
    text columns are categories, so that ten thousand runs fit in memory.
    """
    path = Path(path)
    if not path.exists():
        raise NnbenchError(f"{path}: no such results folder; run an experiment first")
    found: dict[str, tuple[Status, dict[str, Any], pa.Table, Path]] = {}
    current = None if every_version or path.is_file() else current_ids(path)
    earlier: set[str] = set()
    for file in _run_files(path):
        try:
            with pq.ParquetFile(file) as pf:
                schema = pf.schema_arrow  # made anew on every access: once
                meta = _meta_of(pf.metadata, schema)
                spec = RunSpec.from_dict(meta["spec"])
                if current is not None and spec.run_id not in current:
                    earlier.add(spec.run_id)
                    continue
                present = set(schema.names)
                table = _numeric(pf.read(columns=[n for n in metrics if n in present]), metrics)
        except Exception as exc:
            warnings.warn(
                f"{file}: left out, not a readable nnbench run ({exc})",
                ResultsWarning,
                stacklevel=2,
            )
            continue
        status = Status(meta["status"])
        previous = found.get(spec.run_id)
        # two files of one run (a copy, an old name and a new): one is kept, as in
        # stored_runs, so no run counts twice
        if _better(status, file, spec.run_id, previous and (previous[0], previous[3])):
            config = config_row(spec, meta["status"], meta.get("message", ""))
            prov = meta.get("provenance") or {}
            config.update({k: prov.get(k) for k in PROVENANCE_COLUMNS})
            found[spec.run_id] = (status, config, table, file)
    if earlier:
        warnings.warn(f"{path}: {earlier_note(len(earlier))}", EarlierRunsWarning, stacklevel=2)
    if not found:
        return pd.DataFrame(columns=[*CONFIG_COLUMNS, *PROVENANCE_COLUMNS, *metrics])
    configs = pd.DataFrame([config for _, config, _, _ in found.values()])
    lengths = [table.num_rows for _, _, table, _ in found.values()]
    configs = configs.iloc[np.repeat(np.arange(len(configs)), lengths)].reset_index(drop=True)
    for column in configs.columns:  # one copy of each text, however many rows
        if configs[column].dtype == object or pd.api.types.is_string_dtype(configs[column]):
            configs[column] = configs[column].astype("category")
    rows = pa.concat_tables([table for _, _, table, _ in found.values()]).to_pandas()
    frame = name_configurations(pd.concat([configs, rows], axis=1))
    return frame.sort_values(
        ["name", "hidden", "batch_size", "seed", "iteration"], kind="stable", ignore_index=True
    )


def _numeric(table: pa.Table, metrics: Sequence[str]) -> pa.Table:
    """A run file's metric columns, as float64 numbers: one not recorded is empty,
    text is refused (``iteration`` is there: :func:`read_meta` checked)."""
    columns = []
    for metric in metrics:
        if metric not in table.column_names:
            columns.append(pa.nulls(table.num_rows, pa.float64()))
            continue
        column = table.column(metric)
        if not _is_number(column.type):
            raise ValueError(f"column {metric} holds {column.type}, not numbers")
        columns.append(column.cast(pa.float64()))
    return pa.table(columns, names=list(metrics))


def final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The last row of every run (failed runs keep their single, empty row)."""
    if frame.empty:
        return frame
    return (
        frame.sort_values(["run_id", "iteration"], na_position="first")
        .groupby("run_id", sort=False)
        .tail(1)
        .reset_index(drop=True)
    )


def load_runs(path: str | Path, every_version: bool = False) -> pd.DataFrame:
    """One row per run: configuration, status, message, diagnostics and provenance
    (the current runs only, as :func:`load`, unless ``every_version``)."""
    rows: dict[str, tuple[Path, dict[str, Any]]] = {}
    current = None if every_version or Path(path).is_file() else current_ids(path)
    for file in _run_files(Path(path)):
        try:
            meta = read_meta(file)
            spec = RunSpec.from_dict(meta["spec"])
        except Exception:
            continue
        if current is not None and spec.run_id not in current:
            continue
        previous = rows.get(spec.run_id)  # two files of one run: one kept, as in load
        before = previous and (Status(previous[1]["status"]), previous[0])
        if not _better(Status(meta["status"]), file, spec.run_id, before):
            continue
        row = {
            **config_row(spec, meta["status"], meta.get("message", "")),
            **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.values.items()},
        }
        row["hidden"] = spec.arch
        row["batch_size"] = batch_number(spec.batch_size)
        for key, value in meta.get("diagnostics", {}).items():
            row[f"diag.{key}"] = value
        for key, value in meta.get("provenance", {}).items():
            row[f"prov.{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows[spec.run_id] = (file, row)
    return pd.DataFrame([row for _, row in rows.values()])


# -- the folder's owner -----------------------------------------------------------------
