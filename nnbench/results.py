"""The results store: one Parquet file per finished run, read back as one long table.

Layout of a results folder::

    results/<experiment>/
        experiment.json        the validated experiment, as run
        runs/<run_id>.parquet  one per run: a row per evaluation point, with the
                               run's configuration, status and provenance

Each run file is written to a temporary name and renamed into place, so a
crash never leaves a half-written run. Results are never read with pickle.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from nnbench.errors import NnbenchError
from nnbench.grid import RunSpec
from nnbench.train import METRICS, STATUSES

RUNS = "runs"
EXPERIMENT_FILE = "experiment.json"
META_KEY = b"nnbench"
# Statuses that are final: a rerun skips these runs. A failed or interrupted
# run is tried again.
FINAL_STATUSES = ("completed", "converged", "stopped", "diverged")

CONFIG_COLUMNS = (
    "run_id",
    "label",
    "experiment",
    "dataset",
    "optimizer",
    "options",
    "hidden",
    "n_layers",
    "activation",
    "output",
    "dtype",
    "batch_size",
    "seed",
    "status",
    "message",
)


class ResultsWarning(UserWarning):
    """A results file could not be read and was left out."""


def run_path(out_dir: str | Path, run_id: str) -> Path:
    return Path(out_dir) / RUNS / f"{run_id}.parquet"


def provenance(n_jobs: int | None = None, backend: str | None = None) -> dict[str, Any]:
    """Versions, machine and settings a number depends on."""
    import joblib
    import scipy
    import sklearn

    from nnbench import __version__

    prov: dict[str, Any] = {
        "nnbench": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "joblib": joblib.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "n_cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
        "git_revision": _git_revision(),
        "n_jobs": n_jobs,
        "backend": backend,
    }
    return prov


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_revision() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def run_frame(spec: RunSpec, rows: list[dict[str, Any]], status: str, message: str) -> pd.DataFrame:
    """One run as a long table: configuration columns, then the metrics per row."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    metrics = pd.DataFrame(rows, columns=list(METRICS))
    if metrics.empty:  # a failed run still gets a row, so it is never silently dropped
        metrics = pd.DataFrame([{k: np.nan for k in METRICS}])
    metrics = metrics.astype({k: "float64" for k in METRICS})
    config = {
        "run_id": spec.run_id,
        "label": spec.label,
        "experiment": spec.experiment,
        "dataset": spec.dataset,
        "optimizer": spec.optimizer,
        "options": json.dumps(spec.options, sort_keys=True),
        "hidden": spec.arch,
        "n_layers": len(spec.hidden),
        "activation": spec.activation,
        "output": spec.output,
        "dtype": spec.dtype,
        "batch_size": float(spec.batch_size),
        "seed": spec.seed,
        "status": status,
        "message": message,
    }
    front = pd.DataFrame({k: [v] * len(metrics) for k, v in config.items()})
    return pd.concat([front, metrics.reset_index(drop=True)], axis=1)


def write_run(
    out_dir: str | Path,
    spec: RunSpec,
    rows: list[dict[str, Any]],
    status: str,
    message: str,
    prov: Mapping[str, Any],
) -> Path:
    """Write one run atomically: to a temporary file, then renamed into place."""
    frame = run_frame(spec, rows, status, message)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"spec": spec.to_dict(), "status": status, "message": message, "provenance": prov}
    schema_meta = dict(table.schema.metadata or {})
    schema_meta[META_KEY] = json.dumps(meta, default=str).encode()
    table = table.replace_schema_metadata(schema_meta)
    dest = run_path(out_dir, spec.run_id)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:  # the data reach the disk before the name does
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def read_meta(path: str | Path) -> dict[str, Any]:
    """The run's spec, status, message and provenance, from the file's footer only."""
    meta = pq.read_schema(path).metadata or {}
    if META_KEY not in meta:
        raise ValueError("no nnbench metadata")
    return json.loads(meta[META_KEY])


def finished_runs(out_dir: str | Path) -> dict[str, str]:
    """``{run_id: status}`` for every readable run file (unreadable ones are absent)."""
    done = {}
    folder = Path(out_dir) / RUNS
    if not folder.is_dir():
        return done
    for path in folder.glob("*.parquet"):
        try:
            done[path.stem] = read_meta(path)["status"]
        except Exception:  # a foreign or damaged file: not a finished run
            continue
    return done


def clean_temporary(out_dir: str | Path) -> int:
    """Remove temporary files a killed writer left behind; return how many."""
    folder = Path(out_dir) / RUNS
    removed = 0
    if folder.is_dir():
        for tmp in folder.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def _run_files(path: Path) -> Iterable[Path]:
    if path.is_file():
        return [path]
    folder = path / RUNS if (path / RUNS).is_dir() else path
    return sorted(folder.glob("*.parquet"))


def load(path: str | Path) -> pd.DataFrame:
    """Every run under ``path`` as one long DataFrame, a row per evaluation point.

    ``path`` is a results folder (``results/<experiment>``), its ``runs``
    folder, or one run file. Partly finished experiments load what is there;
    unreadable files are left out with a :class:`ResultsWarning`.
    """
    path = Path(path)
    if not path.exists():
        raise NnbenchError(f"{path}: no such results folder; run an experiment first")
    frames = []
    for file in _run_files(path):
        try:
            read_meta(file)
            frames.append(pq.read_table(file).to_pandas())
        except Exception as exc:
            warnings.warn(
                f"{file}: left out, not a readable nnbench run ({exc})",
                ResultsWarning,
                stacklevel=2,
            )
    columns = [*CONFIG_COLUMNS, *METRICS]
    if not frames:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(frames, ignore_index=True)
    return frame.sort_values(
        ["label", "hidden", "batch_size", "seed", "iteration"], kind="stable", ignore_index=True
    )


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


def load_runs(path: str | Path) -> pd.DataFrame:
    """One row per run: configuration, status, message and provenance."""
    path = Path(path)
    rows = []
    for file in _run_files(path):
        try:
            meta = read_meta(file)
        except Exception:
            continue
        spec = RunSpec.from_dict(meta["spec"])
        row = {
            "run_id": spec.run_id,
            "label": spec.label,
            "status": meta["status"],
            "message": meta["message"],
            **spec.to_dict(),
        }
        row["hidden"] = spec.arch
        row["options"] = json.dumps(spec.options, sort_keys=True)
        for key, value in meta.get("provenance", {}).items():
            row[f"prov.{key}"] = json.dumps(value) if isinstance(value, (list, dict)) else value
        rows.append(row)
    return pd.DataFrame(rows)


def write_experiment(out_dir: str | Path, experiment_dict: Mapping[str, Any]) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{EXPERIMENT_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(experiment_dict, indent=2, default=str))
    os.replace(tmp, out / EXPERIMENT_FILE)
