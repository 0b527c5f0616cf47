"""A small synthetic problem: Gaussian blobs around random centres, learnable in seconds."""

from __future__ import annotations

import numpy as np

from nnbench.data import Dataset, DatasetInfo, register, split_three


def make_synthetic(
    n_samples: int = 600, n_features: int = 20, n_classes: int = 3, seed: int = 0
) -> Dataset:
    """Gaussian blobs around random centres in ``[0, 1)^n_features``."""
    if n_samples < 10 or n_features < 1 or n_classes < 2:
        raise ValueError("synthetic data needs n_samples >= 10, n_features >= 1, n_classes >= 2")
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    X = centres[y] + rng.normal(0.0, 0.08, size=(n_samples, n_features))
    X = np.clip(X, 0.0, 0.999).astype(np.float32)
    return split_three("synthetic", X, y.astype(np.int64), seed, n_classes)


SYNTHETIC = register(
    DatasetInfo(
        "synthetic",
        lambda request: make_synthetic(),
        "600 points in 20 dimensions, 3 Gaussian blobs (a smoke test)",
        shape=(20, 3),
    )
)
