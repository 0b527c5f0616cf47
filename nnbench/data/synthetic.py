"""A small synthetic problem: Gaussian blobs around random centres, learnable in seconds."""

from __future__ import annotations

import numpy as np

from nnbench.data.registry import Dataset, DatasetInfo, register, split_three
from nnbench.errors import ConfigError
from nnbench.options import Option


def make_synthetic(
    n_samples: int = 600,
    n_features: int = 20,
    n_classes: int = 3,
    seed: int = 0,
    noise: float = 0.08,
) -> Dataset:
    """Gaussian blobs around random centres in ``[0, 1)^n_features``, spread by ``noise``."""
    if n_samples < 10 or n_features < 1 or n_classes < 2:
        raise ValueError("synthetic data needs n_samples >= 10, n_features >= 1, n_classes >= 2")
    check_total(n_samples, n_features)
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0.2, 0.8, size=(n_classes, n_features))
    y = rng.integers(0, n_classes, size=n_samples)
    X = centres[y] + rng.normal(0.0, noise, size=(n_samples, n_features))
    X = np.clip(X, 0.0, 0.999).astype(np.float32)
    return split_three("synthetic", X, y.astype(np.int64), seed, n_classes)


# Numbers a synthetic dataset may hold (rows x features), a little more than MNIST's
# 55 million: each option is bounded alone, and their product once asked for 8 GB.
MAX_VALUES = 60_000_000


def check_total(n_samples: int, n_features: int) -> None:
    """Refuse a dataset larger than :data:`MAX_VALUES` numbers before allocating it."""
    if n_samples * n_features > MAX_VALUES:
        raise ConfigError(
            f"synthetic data of n_samples={n_samples:,} x n_features={n_features:,} is "
            f"{n_samples * n_features:,} numbers, more than the {MAX_VALUES:,} allowed: "
            "give fewer samples or features"
        )


def _shape(options: dict) -> tuple[int, int]:
    check_total(options["n_samples"], options["n_features"])
    return options["n_features"], options["n_classes"]


OPTIONS = {
    "n_samples": Option(600, "rows, split 60/20/20", low=10, high=1_000_000, kind=int),
    "n_features": Option(20, "features per row", low=1, high=10_000, kind=int),
    "n_classes": Option(3, "classes (blobs)", low=2, high=1_000, kind=int),
    "noise": Option(0.08, "standard deviation of each blob", low=0.0, high=1.0, kind=float),
    "seed": Option(0, "draws the centres, the points and the split", low=0, kind=int),
}

SYNTHETIC = register(
    DatasetInfo(
        "synthetic",
        lambda request: make_synthetic(**request.options),
        "Gaussian blobs (a smoke test; its size and noise are options: `nnbench data list`)",
        shape=_shape,
        options=OPTIONS,
    )
)
