"""What a number depends on beyond its settings: the versions, the machine and how
the runs were dispatched, recorded beside every run (``results.load_runs`` reads it)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def provenance(n_jobs: int | None = None, backend: str | None = None) -> dict[str, Any]:
    """Versions, machine and settings a number depends on."""
    import joblib
    import scipy
    import sklearn

    from nnbench import __version__

    return {
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
