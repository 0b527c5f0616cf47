"""nnbench: compare neural-network optimizers on small models, reproducibly."""

from importlib.metadata import PackageNotFoundError, version

from nnbench.estimator import MLPClassifier
from nnbench.mlp import MLP

try:
    __version__ = version("nnbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["MLP", "MLPClassifier", "__version__"]
