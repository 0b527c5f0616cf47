"""Datasets, by name: a registry of loaders, built-in and from plugins.

Built in: ``mnist`` (the post's data, fetched once into a cache), ``mnist1d``
(MNIST-1D, generated offline as the ``mnist1d`` package does, cached),
``digits`` (scikit-learn's 8x8 digits, shipped with it) and ``synthetic``
(Gaussian blobs, its size and noise set by options). A new dataset is one module that
calls :func:`register`, plus its import below; a third-party package
declares a :class:`DatasetInfo` as an entry point::

    [project.entry-points."nnbench.datasets"]
    fashion = "mypackage.data:FASHION"

Every loader returns a :class:`Dataset` whose splits are ``(X, y)`` pairs:
``X`` floats of shape ``(n_samples, n_features)`` (in ``[0, 1)`` for the image
datasets; MNIST-1D is standardised, as its package makes it), ``y`` int64
class indices.
"""

from __future__ import annotations

# the built-in datasets register themselves (their modules import the registry only)
from nnbench.data import digits, mnist, mnist1d, synthetic  # noqa: F401
from nnbench.data.cache import cache_dir, file_digest
from nnbench.data.formats import read_idx, safe_unpickle, validate_split
from nnbench.data.mnist import (
    fetch_mnist,
    load_mnist,
    load_mnist_idx,
    load_mnist_pickle,
)
from nnbench.data.registry import (
    Dataset,
    DatasetInfo,
    LoadRequest,
    Progress,
    Split,
    available,
    fetchable,
    get,
    load_dataset,
    plugin_errors,
    register,
    split_three,
)
from nnbench.data.shared import SharedData, cache_info, share_dataset
from nnbench.data.synthetic import make_synthetic

__all__ = [
    "Dataset",
    "DatasetInfo",
    "LoadRequest",
    "Progress",
    "SharedData",
    "Split",
    "available",
    "cache_dir",
    "cache_info",
    "fetch_mnist",
    "fetchable",
    "file_digest",
    "get",
    "load_dataset",
    "load_mnist",
    "load_mnist_idx",
    "load_mnist_pickle",
    "make_synthetic",
    "plugin_errors",
    "read_idx",
    "register",
    "safe_unpickle",
    "share_dataset",
    "split_three",
    "validate_split",
]
