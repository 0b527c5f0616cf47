"""A multi-layer perceptron whose weights live in one flat vector.

The model holds the layout, never the weights: every method takes the flat
vector ``theta``, so the same code serves scipy's copy of the vector and the
training vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nnbench.functions import (
    HIDDEN_ACTIVATIONS,
    OUTPUTS,
    activate,
    backprop_activation,
    output_cost_and_delta,
    output_probabilities,
)
from nnbench.layout import Layout

INIT_SCHEMES = ("auto", "blog", "glorot", "he")
DTYPES = ("float32", "float64")

# Rows per chunk when evaluating on a whole split: bounds the memory of the
# hidden activations, and keeps them in cache, without costing BLAS efficiency.
EVAL_CHUNK = 5_000
# Evaluation holds at most this many activations at once (per layer, all
# members' rows of a chunk together): more members are scored in groups.
EVAL_ACTIVATIONS = 4_000_000


class Workspace(NamedTuple):
    """A pass's buffers for K members and n rows: hidden activations and their
    deltas, sample-major ``(K, n, width)``; the output logits, class-major
    ``(K, n_outputs, n)``; transposed views of both (BLAS reads them in place);
    and a vector of n ones. For one member, the same without the leading axis."""

    hidden: list[np.ndarray]
    hidden_t: list[np.ndarray]
    derivs: list[np.ndarray]
    z: np.ndarray
    z_t: np.ndarray
    ones: np.ndarray
    k: int


def _check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


class MLP:
    """A fully connected network: hidden activations, then a classifying output.

    Parameters
    ----------
    sizes : sequence of int
        Units per layer, input first, output last: ``(784, 25, 10)`` is the
        post's network.
    activation : {"sigmoid", "tanh", "relu"}
        Hidden-layer activation; sigmoid is the post's.
    output : {"sigmoid", "softmax"}
        ``"sigmoid"``: the post's one-vs-all sigmoid outputs with summed
        binary cross-entropy. ``"softmax"``: softmax with cross-entropy.
    l2 : float
        L2 penalty ``l2 / (2 n) * sum(W ** 2)`` over weights (not biases), as
        scikit-learn's ``alpha``; ``n`` is the number of rows in the batch.
    dtype : {"float64", "float32"}
        Precision of the parameters and of every computation.
    """

    def __init__(
        self,
        sizes: Sequence[int],
        activation: str = "sigmoid",
        output: str = "sigmoid",
        l2: float = 0.0,
        dtype: str = "float64",
    ) -> None:
        self.layout = Layout(tuple(sizes))
        self.activation = _check_choice("activation", activation, HIDDEN_ACTIVATIONS)
        self.output = _check_choice("output", output, OUTPUTS)
        if not (np.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0; got {l2!r}")
        self.l2 = float(l2)
        self.dtype = np.dtype(_check_choice("dtype", str(np.dtype(dtype)), DTYPES))
        self._ws: Workspace | None = None

    def __getstate__(self) -> dict:
        # the workspace is scratch memory: never pickle it with the model
        return dict(self.__dict__, _ws=None)

    def __repr__(self) -> str:
        return (
            f"MLP(sizes={self.layout.sizes}, activation={self.activation!r}, "
            f"output={self.output!r}, l2={self.l2}, dtype={self.dtype.name!r})"
        )

    @property
    def n_params(self) -> int:
        return self.layout.n_params

    # -- initialisation -------------------------------------------------------

    def init(self, rng: np.random.Generator, scheme: str = "auto") -> np.ndarray:
        """A new flat vector drawn from ``rng``.

        ``"blog"``: per layer, uniform in ``±4 sqrt(6 / (rows + cols))`` over the
        whole ``(fan_in + 1, fan_out)`` block, bias row included (the post's
        rule, Glorot & Bengio 2010's recommendation for sigmoid units).
        ``"glorot"``: uniform in ``±sqrt(6 / (fan_in + fan_out))``, zero biases.
        ``"he"``: normal with standard deviation ``sqrt(2 / fan_in)``, zero
        biases (He et al. 2015, for ReLU). ``"auto"``: blog for sigmoid hidden
        units, Glorot for tanh, He for ReLU.
        """
        scheme = _check_choice("init", scheme, INIT_SCHEMES)
        if scheme == "auto":
            scheme = {"sigmoid": "blog", "tanh": "glorot", "relu": "he"}[self.activation]
        theta = np.zeros(self.n_params, dtype=self.dtype)
        for block in self.layout.blocks(theta):
            rows, cols = block.shape
            fan_in = rows - 1
            if scheme == "blog":
                gap = 4 * np.sqrt(6.0 / (rows + cols))
                block[...] = rng.uniform(-gap, gap, size=block.shape)
            elif scheme == "glorot":
                gap = np.sqrt(6.0 / (fan_in + cols))
                block[1:] = rng.uniform(-gap, gap, size=(fan_in, cols))
            else:
                block[1:] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, cols))
        return theta

    # -- passes ---------------------------------------------------------------

    def _as_params(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta)
        if theta.dtype != self.dtype:
            theta = theta.astype(self.dtype)
        return theta

    def _as_inputs(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.layout.sizes[0]:
            raise ValueError(
                f"X must have shape (n_samples, {self.layout.sizes[0]}); got {X.shape}"
            )
        return X if X.dtype == self.dtype else X.astype(self.dtype)

    def _as_labels(self, y: np.ndarray, n_samples: int) -> np.ndarray:
        y = np.asarray(y)
        n_out = self.layout.sizes[-1]
        if y.shape != (n_samples,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"y must be {n_samples} integer class indices; got {y.dtype} of shape {y.shape}"
            )
        if n_samples and not (y.min() >= 0 and y.max() < n_out):
            raise ValueError(
                f"y must hold class indices in [0, {n_out}); got values from {y.min()} to {y.max()}"
            )
        return y

    def _forward(self, layers: list[np.ndarray], X: np.ndarray) -> np.ndarray:
        """Class-major output logits of K members, ``(K, n_outputs, n_samples)``,
        for evaluation, from their ``(K, fan_in + 1, fan_out)`` layer views.

        Computed transposed, ``W.T @ X.T``: on a large skinny batch OpenBLAS
        streams ``X`` at nearly memory speed in that form, up to 1.6x faster
        than ``X @ W`` (float64).
        """
        a_t = X.T
        last = self.layout.n_layers - 1
        for i, block in enumerate(layers):
            z_t = np.matmul(block[:, 1:].transpose(0, 2, 1), a_t)
            z_t += block[:, 0, :, None]
            if i < last:
                activate(self.activation, z_t)
            a_t = z_t
        return a_t

    def _penalty(self, layers: list[np.ndarray], j: int, n_samples: int) -> float:
        """Member ``j``'s L2 penalty, from the layer views of its stack."""
        if not self.l2:
            return 0.0
        total = sum(float(np.vdot(block[j, 1:], block[j, 1:])) for block in layers)
        return 0.5 * self.l2 * total / n_samples

    def loss_and_grad(
        self, theta: np.ndarray, X: np.ndarray, y: np.ndarray, out: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """Mean cost over the rows of ``X`` and its gradient, from one pass.

        Parameters
        ----------
        theta : ndarray of shape (n_params,)
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of int, shape (n_samples,)
            Class indices in ``[0, n_outputs)``.
        out : ndarray of shape (n_params,), optional
            Where to write the gradient (of the model's dtype); a new array
            when None.

        Returns
        -------
        loss : float
        grad : ndarray of shape (n_params,), of the model's dtype

        Notes
        -----
        The pass is :meth:`losses_and_grads` on a stack of one. Its
        activations live in buffers kept between calls for the same number of
        rows, so a training step allocates nothing but small temporaries; a
        model is therefore not safe to call from two threads.
        """
        theta = self._as_params(theta)
        X = self._as_inputs(X)
        y = self._as_labels(y, X.shape[0])
        grad = np.empty_like(theta) if out is None else out
        return float(self.losses_and_grads(theta[None], X, y, grad[None])[0]), grad

    def losses_and_grads(
        self, thetas: np.ndarray, X: np.ndarray, y: np.ndarray, grads: np.ndarray
    ) -> np.ndarray:
        """The pass itself, for K stacked weight vectors ``(K, n_params)`` (a run
        alone is K = 1): every member's mean cost ``(K,)``, their gradients
        written into ``grads`` ``(K, n_params)``. For callers that hand in
        arrays of the model's dtype and shapes (the training loop): no checks,
        no conversions.

        Every member computes exactly what it would alone: each layer's
        product is one batched call that makes the same BLAS call per member,
        element-wise work is element-wise, and the cost sums are taken per
        member. Hidden layers are sample-major, ``(K, n_samples, width)``, the
        layout of the minibatch rows; the output layer is class-major, ``(K,
        n_outputs, n_samples)``, so the cost's reductions over classes are fast
        (see :func:`~nnbench.functions.output_cost_and_delta`). BLAS reads the
        transposed operands in place, so the switch costs no copy.
        """
        n = X.shape[0]
        ws = self._ws
        if ws is None or ws.k != thetas.shape[0] or len(ws.ones) != n:
            ws = self._workspace(thetas.shape[0], n)
        layers, grad_layers = self.layout.parts(thetas), self.layout.parts(grads)
        a = X
        for (weights, _, _, bias_row, _), h in zip(layers, ws.hidden):
            np.matmul(a, weights, out=h)
            h += bias_row
            activate(self.activation, h)
            a = h
        _, top_t, _, _, top_bias = layers[-1]
        z, z_t, ones = ws.z, ws.z_t, ws.ones
        a_t = ws.hidden_t[-1] if ws.hidden else X.T
        np.matmul(top_t, a_t, out=z)
        z += top_bias
        losses = output_cost_and_delta(self.output, z, y)
        z *= 1.0 / n  # the cost is a mean over rows
        g_weights, _, g_bias, _, _ = grad_layers[-1]
        np.matmul(a_t, z_t, out=g_weights)
        # bias gradient: sums over the samples, as a matrix-vector product
        # (5x faster than np.sum on a small array)
        np.matmul(z, ones, out=g_bias)
        if ws.hidden:
            delta = ws.derivs[-1]
            np.matmul(z_t, top_t, out=delta)
            for i in range(len(ws.hidden) - 1, -1, -1):
                backprop_activation(self.activation, delta, ws.hidden[i])
                g_weights, _, g_bias, _, _ = grad_layers[i]
                np.matmul(ws.hidden_t[i - 1] if i else X.T, delta, out=g_weights)
                np.matmul(ones, delta, out=g_bias)
                if i:
                    np.matmul(delta, layers[i].weights_t, out=ws.derivs[i - 1])
                    delta = ws.derivs[i - 1]
        losses /= n
        if self.l2:
            blocks = self.layout.blocks(thetas)
            for j in range(len(losses)):
                losses[j] += self._penalty(blocks, j, n)
            for g, layer in zip(grad_layers, layers):
                g.weights[...] += (self.l2 / n) * layer.weights
        return losses

    def _workspace(self, k: int, n: int) -> Workspace:
        """New buffers for K members and ``n`` rows (the pass keeps them while
        the shape holds)."""
        lead = (k,) if k > 1 else ()  # one member: 2-D buffers, as its views (Layout.parts)
        widths = self.layout.sizes[1:-1]
        hidden = [np.empty((*lead, n, w), dtype=self.dtype) for w in widths]
        z = np.empty((*lead, self.layout.sizes[-1], n), dtype=self.dtype)
        self._ws = Workspace(
            hidden=hidden,
            hidden_t=[h.swapaxes(-1, -2) for h in hidden],
            derivs=[np.empty((*lead, n, w), dtype=self.dtype) for w in widths],
            z=z,
            z_t=z.swapaxes(-1, -2),
            ones=np.ones(n, dtype=self.dtype),
            k=k,
        )
        return self._ws

    def evaluate(self, theta: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """``(mean cost, accuracy)`` over the rows of ``X``, from one forward pass."""
        theta = self._as_params(theta)
        X = np.asarray(X)
        if len(X) == 0:
            raise ValueError("cannot evaluate on an empty set")
        self._as_inputs(X[:1])  # the shape checked; each chunk is converted
        return self.evaluate_members(theta[None], X, self._as_labels(y, len(X)))[0]

    def evaluate_members(
        self, thetas: np.ndarray, X: np.ndarray, y: np.ndarray
    ) -> list[tuple[float, float]]:
        """``(mean cost, accuracy)`` of each of K stacked weight vectors ``(K,
        n_params)`` over the rows of ``X`` (a run alone is K = 1): one batched
        forward pass per chunk of rows, and at most :data:`EVAL_ACTIVATIONS`
        activations at once (more members are scored in groups, the same
        numbers: each member's chunks are unchanged). No members, no scores."""
        n = len(X)
        k = thetas.shape[0]
        widest = max(self.layout.sizes[1:])
        group = max(1, EVAL_ACTIVATIONS // (widest * min(n, EVAL_CHUNK)))
        if k > group:
            return [
                s
                for g in range(0, k, group)
                for s in self.evaluate_members(thetas[g : g + group], X, y)
            ]
        layers = self.layout.blocks(thetas)
        cost = [0.0] * k
        correct = [0] * k
        for start in range(0, n, EVAL_CHUNK):
            Xc = X[start : start + EVAL_CHUNK]
            if Xc.dtype != self.dtype:
                Xc = Xc.astype(self.dtype)
            yc = np.asarray(y[start : start + EVAL_CHUNK])
            z = self._forward(layers, Xc)
            hits = z.argmax(axis=1) == yc
            costs = output_cost_and_delta(self.output, z, yc)
            for j in range(k):
                correct[j] += int(np.count_nonzero(hits[j]))
                cost[j] += float(costs[j])
        return [(cost[j] / n + self._penalty(layers, j, n), correct[j] / n) for j in range(k)]

    def _class_major_logits(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Output logits of all rows of ``X``, class-major: ``(n_outputs, n_samples)``."""
        layers = self.layout.blocks(self._as_params(theta)[None])
        X = np.asarray(X)
        parts = [
            self._forward(layers, self._as_inputs(X[s : s + EVAL_CHUNK]))[0]
            for s in range(0, len(X), EVAL_CHUNK)
        ]
        if not parts:
            return np.empty((self.layout.sizes[-1], 0), dtype=self.dtype)
        return np.concatenate(parts, axis=1)

    def predict_proba(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Output activations: sigmoid per class, or softmax."""
        return output_probabilities(self.output, self._class_major_logits(theta, X)).T

    def predict(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Class index of the largest output per row."""
        return self._class_major_logits(theta, X).argmax(axis=0)
