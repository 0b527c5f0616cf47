"""Everything a run's seed decides: its start weights, its random streams, and
the calibration's perturbation of them.

One seed spawns independent streams (``numpy.random.SeedSequence.spawn``):
the start weights, the minibatch order, and the perturbation that
``nnbench baseline`` applies to measure rounding. For one seed every
optimizer starts from the same weights and sees the same minibatches, which
is what makes a comparison fair; a perturbed run differs from its seed's run
by the perturbation alone.
"""

from __future__ import annotations

import numpy as np

from nnbench.mlp import MLP

N_STREAMS = 3  # start weights, minibatch order, perturbation


def _streams(seed: int) -> list[np.random.SeedSequence]:
    return np.random.SeedSequence(seed).spawn(N_STREAMS)


def seed_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the start weights and the minibatch order."""
    init_seq, batch_seq, _ = _streams(seed)
    return np.random.default_rng(init_seq), np.random.default_rng(batch_seq)


def initial_weights(model: MLP, seed: int, scheme: str = "auto") -> np.ndarray:
    """The start vector for ``seed``: the same for every optimizer."""
    return model.init(seed_rngs(seed)[0], scheme)


def perturb(theta: np.ndarray, seed: int, size: float) -> None:
    """Multiply each weight by ``1 + size * u``, ``u`` uniform in [-1, 1], in place,
    from the seed's third stream (independent of the start weights' and the
    minibatches')."""
    u = np.random.default_rng(_streams(seed)[2]).uniform(-1.0, 1.0, size=theta.shape)
    theta *= (1.0 + size * u).astype(theta.dtype)


def start(model: MLP, seed: int, scheme: str = "auto", perturbation: float = 0.0) -> np.ndarray:
    """The start vector of a run: the seed's weights, perturbed when asked."""
    theta = initial_weights(model, seed, scheme)
    if perturbation:
        perturb(theta, seed, perturbation)
    return theta
