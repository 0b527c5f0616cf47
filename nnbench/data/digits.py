"""scikit-learn's 8x8 digits: 1,797 images shipped with scikit-learn, no download."""

from __future__ import annotations

import functools

import numpy as np

from nnbench.data.registry import Dataset, DatasetInfo, register, split_three


@functools.cache
def load_digits_splits(seed: int = 0) -> Dataset:
    """The digits split 60/20/20 (by a fixed permutation), pixels scaled to [0, 1).

    Read once a process (scikit-learn parses a CSV file each time); the arrays
    are read-only, as the memory-mapped copies runs see are."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 17.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    ds = split_three("digits", X, y, seed, n_classes=10)
    for split in (ds.train, ds.valid, ds.test):
        for array in split:
            array.flags.writeable = False
    return ds


DIGITS = register(
    DatasetInfo(
        "digits",
        lambda request: load_digits_splits(),
        "scikit-learn's 8x8 digits, 1,797 images split 60/20/20 (seconds to train)",
        shape=(64, 10),
    )
)
