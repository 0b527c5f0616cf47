"""nnbench: compare neural-network optimizers on small models, reproducibly."""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("nnbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["MLP", "MLPClassifier", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use: scikit-learn takes a second to import, and the
    # grid's worker processes never need it.
    if name == "MLPClassifier":
        from nnbench.estimator import MLPClassifier

        return MLPClassifier
    if name == "MLP":
        from nnbench.mlp import MLP

        return MLP
    raise AttributeError(f"module 'nnbench' has no attribute {name!r}")
