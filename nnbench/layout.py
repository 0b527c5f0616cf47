"""The flat parameter vector and its per-layer views.

All weights of a network live in one flat vector ``theta`` (the 2013 post's
design, which lets scipy's optimizers work on the network directly). Layer
``i`` owns one contiguous block of shape ``(fan_in + 1, fan_out)``: row 0 is
the bias, rows ``1:`` the weights. That is exactly the post's matrix with the
bias as an extra input column of ones at position 0, so a ``theta`` of ours is
bit-for-bit the post's ``coef_``; but the forward pass adds the bias row
instead of inserting a column into the batch, which would copy the batch.

Views are always built from the vector they are handed: scipy passes the
objective a copy of ``x``, so a view cached from another array would be stale.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class Layout:
    """Where each layer's bias and weights sit in the flat vector.

    Parameters
    ----------
    sizes : tuple of int
        Units per layer, input first and output last, e.g. ``(784, 25, 10)``.
    """

    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        sizes = tuple(int(s) for s in self.sizes)
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError(
                f"layer sizes must be at least two positive integers, got {self.sizes!r}"
            )
        object.__setattr__(self, "sizes", sizes)

    @property
    def n_layers(self) -> int:
        """Number of weight layers (hidden layers + 1)."""
        return len(self.sizes) - 1

    @cached_property
    def bounds(self) -> tuple[tuple[int, int, tuple[int, int]], ...]:
        """``(start, end, (fan_in + 1, fan_out))`` of every layer's block."""
        out = []
        start = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            end = start + (fan_in + 1) * fan_out
            out.append((start, end, (fan_in + 1, fan_out)))
            start = end
        return tuple(out)

    @property
    def n_params(self) -> int:
        """Length of the flat vector."""
        return n_params_of(self.sizes)

    def blocks(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-layer ``(fan_in + 1, fan_out)`` views of ``theta`` (bias row first);
        of K stacked vectors ``(K, n_params)``, ``(K, fan_in + 1, fan_out)`` views.

        The views of the last few arrays are kept, each with a reference to
        its array, so that the training loop's buffers are not re-sliced on
        every step; an array seen for the first time (scipy's copies) gets
        fresh views of its own memory.
        """
        views = _kept(self._view_cache, theta)
        if views is None:
            if theta.shape[-1:] != (self.n_params,) or theta.ndim > 2:
                raise ValueError(
                    f"flat parameter vector must have shape ({self.n_params},), got {theta.shape}"
                )
            lead = theta.shape[:-1]
            views = [theta[..., s:e].reshape(*lead, *shape) for s, e, shape in self.bounds]
            _keep(self._view_cache, theta, views)
        return views

    def parts(self, thetas: np.ndarray) -> list[LayerViews]:
        """Per layer, the views of K stacked vectors ``(K, n_params)`` that a pass
        reads and writes (:class:`LayerViews`), kept as :meth:`blocks` keeps its;
        of one vector ``(1, n_params)``, its views without the leading axis."""
        parts = _kept(self._parts_cache, thetas)
        if parts is None:
            # One member: the 2-D views of its row, on which numpy's calls cost
            # less than on a stack of one; the same BLAS calls, the same numbers.
            rows = thetas[0] if len(thetas) == 1 else thetas
            lead = rows.shape[:-1]
            blocks = [rows[..., s:e].reshape(*lead, *shape) for s, e, shape in self.bounds]
            parts = [LayerViews.of(block) for block in blocks]
            _keep(self._parts_cache, thetas, parts)
        return parts

    @cached_property
    def _view_cache(self) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        return []

    @cached_property
    def _parts_cache(self) -> list[tuple[np.ndarray, list[LayerViews]]]:
        return []

    def __getstate__(self) -> dict:
        # the caches hold arrays: never pickle them with the layout
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}

    def weights(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-layer weight views of shape ``(fan_in, fan_out)``."""
        return [block[1:] for block in self.blocks(theta)]

    def biases(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-layer bias views of shape ``(fan_out,)``."""
        return [block[0] for block in self.blocks(theta)]


def n_params_of(sizes: Sequence[int]) -> int:
    """The number of weights of a network with layers of these sizes: each layer's
    weights and biases, ``(fan_in + 1) * fan_out``."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(sizes))


class LayerViews(NamedTuple):
    """One layer's views of K stacked blocks ``(K, fan_in + 1, fan_out)``, or of
    one block ``(fan_in + 1, fan_out)`` (the shapes below without ``K``)."""

    weights: np.ndarray  # (K, fan_in, fan_out)
    weights_t: np.ndarray  # (K, fan_out, fan_in): transposed, in place
    bias: np.ndarray  # (K, fan_out)
    bias_row: np.ndarray  # (K, 1, fan_out): added to sample-major activations
    bias_col: np.ndarray  # (K, fan_out, 1): added to class-major ones

    @classmethod
    def of(cls, block: np.ndarray) -> LayerViews:
        weights = block[..., 1:, :]
        return cls(weights, weights.swapaxes(-1, -2), block[..., 0, :], block[..., :1, :],
                   block[..., 0, :, None])  # fmt: skip


def _kept(cache: list[tuple[np.ndarray, Any]], array: np.ndarray) -> Any:
    """What ``cache`` keeps for ``array`` (the same object), moved to the front; or None."""
    for i, (kept, value) in enumerate(cache):
        if kept is array:
            if i:
                cache.insert(0, cache.pop(i))
            return value
    return None


def _keep(cache: list[tuple[np.ndarray, Any]], array: np.ndarray, value: Any) -> None:
    """Keep ``value`` for ``array`` in ``cache``, with the last few others."""
    cache.insert(0, (array, value))
    del cache[4:]
