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
