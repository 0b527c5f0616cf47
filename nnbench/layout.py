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
        """Per-layer ``(fan_in + 1, fan_out)`` views of ``theta`` (bias row first).

        The views of the last few vectors are kept, each with a reference to
        its vector, so that the training loop's buffers are not re-sliced on
        every step; a vector seen for the first time (scipy's copies) gets
        fresh views of its own memory.
        """
        cache = self._view_cache
        for i, (vector, views) in enumerate(cache):
            if vector is theta:
                if i:
                    cache.insert(0, cache.pop(i))
                return views
        if theta.shape != (self.n_params,):
            raise ValueError(
                f"flat parameter vector must have shape ({self.n_params},), got {theta.shape}"
            )
        views = [theta[s:e].reshape(shape) for s, e, shape in self.bounds]
        cache.insert(0, (theta, views))
        del cache[4:]
        return views

    @cached_property
    def _view_cache(self) -> list[tuple[np.ndarray, list[np.ndarray]]]:
        return []

    def __getstate__(self) -> dict:
        # the view cache holds arrays: never pickle it with the layout
        return {k: v for k, v in self.__dict__.items() if k != "_view_cache"}

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
