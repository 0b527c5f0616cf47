"""Shared fixtures. The folder plugin_site/ holds a third-party optimizer
package (with its dist-info and entry points) put on sys.path before any test
is collected, so the registry-driven tests see it exactly as an installed
plugin."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "plugin_site"))

from nnbench.data import cache_dir, load_mnist, make_synthetic

# The real MNIST cache, read before the autouse fixture below hides it.
REAL_CACHE = cache_dir()


@pytest.fixture
def synthetic():
    return make_synthetic(n_samples=300, n_features=12, n_classes=3, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test reads or writes the user's real data cache, or the repository's
    results/ folder (the default output is relative to the working folder)."""
    monkeypatch.setenv("NNBENCH_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def mnist():
    """The real MNIST splits from the cache (fetched once if needed), memory-mapped."""
    try:
        return load_mnist(data_dir=REAL_CACHE, mmap=True)
    except Exception as exc:  # no network and nothing cached: say why
        pytest.skip(f"MNIST is not available here: {exc}")


@pytest.fixture
def final_frame():
    """A results table of final rows from ``values[(optimizer, (hidden, batch))]``,
    the test accuracies by seed 1, 2, ... (validation the same), of ``dataset`` at
    its default options: what the report's tables read, without running anything."""

    def make(values, dataset="mnist"):
        import pandas as pd

        rows = []
        for (opt, (hidden, batch)), accs in values.items():
            for seed, acc in enumerate(accs, start=1):
                rows.append(
                    {"run_id": f"{opt}-{hidden}-{batch}-{seed}", "iteration": 10.0,
                     "status": "completed", "optimizer": opt, "hidden": hidden,
                     "batch_size": batch, "config_id": f"{opt}-{hidden}-{batch}", "seed": seed,
                     "val_accuracy": acc, "test_accuracy": acc, "dataset": dataset,
                     "workload": dataset, "data_options": "{}"}
                )  # fmt: skip
        return pd.DataFrame(rows)

    return make
