"""Step-wise first-order optimizers: one gradient evaluation per step.

Notation in the docstrings: ``w`` the flat weights, ``g = grad L(w)`` on the
current minibatch, ``t`` the step number starting at 1. Every update is done
in place on ``w`` so the per-layer views stay valid.

Each is written once, as a vectorised step (``stack_step``) for K runs at
once, the rows of ``(K, n_params)`` arrays, per-run options in ``(K, 1)``
columns; a run alone is K = 1. A row's numbers never depend on the others,
so a run computes the same bits alone and in any stack
(``nnbench.testing.check_optimizer``).

Default search spaces (``nnbench.tune``): the learning rate alone,
log-uniform, as Schmidt et al. 2021 ("Descending through a Crowded Valley")
tune it, other options at their defaults; the ranges span four decades,
wide enough that the best rates for sigmoid networks on MNIST lie inside.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nnbench.optimizers.base import Optimizer, Option, StackObjective, column, complement
from nnbench.space import LogUniform

_LR = "step size"
_POSITIVE = {"low": 0.0, "low_open": True, "kind": float}
_UNIT = {"low": 0.0, "high": 1.0, "kind": float}
# A running average's decay of 1 never forgets its start (RMSprop's ms stays
# at 0 and every step is g / eps, about 1e15 too long; Adam divides 0 by 0):
# decays are < 1.
_DECAY = {"low": 0.0, "high": 1.0, "high_open": True, "kind": float}
# eps = 0 divides 0 by 0 on weights whose gradient is always 0 (MNIST's
# blank border pixels feed such weights), so eps is > 0.
_EPS = {"low": 0.0, "low_open": True, "kind": float}


class GD(Optimizer):
    """Minibatch gradient descent, optionally with the post's per-step decay.

    ``w <- w - lr_t g``; ``lr_{t+1} = lr_t * learning_rate_decay`` (1 by
    default: a constant step).
    """

    name = "gd"
    colour = "tab:blue"
    summary = "minibatch gradient descent (the post's GD); a per-step decay is optional"
    tuning_default = {"learning_rate": 1.0}  # sigmoid networks take large steps
    options = {
        "learning_rate": Option(
            0.3, _LR + " (0.3 is the post's)", search=LogUniform(1e-3, 10.0), **_POSITIVE
        ),
        "learning_rate_decay": Option(
            1.0,
            "factor applied to the step size after every step (1: constant)",
            low=0.0,
            high=1.0,
            low_open=True,
            kind=float,
        ),
    }
    schedules = {"lr": ("learning_rate", "learning_rate_decay")}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        losses, grads = fun(thetas)
        grads *= column(state["lr"], grads)
        thetas -= grads
        return losses


class Momentum(Optimizer):
    """Momentum, in the post's look-ahead form or the classical heavy-ball form.

    ``form="blog"`` (the post's, a Nesterov-style look-ahead; Sutskever et al.
    2013)::

        jump = mu_t * step;  w <- w - jump
        corr = lr_t * grad L(w)      # gradient at the looked-ahead point
        w <- w - corr;  step = jump + corr

    ``form="classical"`` (Polyak 1964's heavy ball)::

        v <- mu_t v + lr_t g;  w <- w - v

    Both decay ``lr`` and ``mu`` by their factors after every step.

    Without decays, the post's form *is* Nesterov's accelerated gradient: it
    evaluates the gradient at the same points as :class:`Nesterov` (which
    stores the looked-ahead point instead of the iterate), so the two differ
    only in which of the two points is evaluated.
    """

    name = "momentum"
    colour = "tab:orange"
    summary = (
        "momentum: the post's look-ahead form (the same method as nesterov), "
        "or form=classical heavy-ball"
    )
    options = {
        "learning_rate": Option(0.1, _LR, search=LogUniform(1e-4, 1.0), **_POSITIVE),
        "momentum": Option(0.9, "momentum coefficient mu", **_UNIT),
        "learning_rate_decay": Option(
            1.0,
            "factor on the step size after every step",
            low=0.0,
            high=1.0,
            low_open=True,
            kind=float,
        ),
        "momentum_decay": Option(1.0, "factor on mu after every step", **_UNIT),
        "form": Option(
            "blog",
            "look-ahead as the post wrote it, or heavy-ball",
            choices=("blog", "classical"),
            kind=str,
        ),
    }
    schedules = {
        "lr": ("learning_rate", "learning_rate_decay"),
        "mu": ("momentum", "momentum_decay"),
    }

    def stack_init(self, thetas: np.ndarray, opts: dict) -> dict[str, Any]:
        return {"step": np.zeros_like(thetas)}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        step = state["step"]
        step *= column(state["mu"], step)
        if opts["form"] == "blog":
            thetas -= step
            losses, grads = fun(thetas)
            grads *= column(state["lr"], grads)
            thetas -= grads
            step += grads
        else:
            losses, grads = fun(thetas)
            grads *= column(state["lr"], grads)
            step += grads
            thetas -= step
        return losses


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient in the standard reformulated form.

    With the gradient taken at the current point (Bengio et al. 2013,
    "Advances in optimizing recurrent networks"; scikit-learn's and
    PyTorch's form)::

        v <- mu v - lr g
        w <- w + mu v - lr g

    The same method as :class:`Momentum`'s post form (``form="blog"``): the
    gradients are taken at the same points.
    """

    name = "nesterov"
    colour = "tab:pink"
    summary = "Nesterov accelerated gradient (standard form; the same method as momentum's)"
    options = {
        "learning_rate": Option(0.1, _LR, search=LogUniform(1e-4, 1.0), **_POSITIVE),
        "momentum": Option(0.9, "momentum coefficient mu", **_UNIT),
    }

    def stack_init(self, thetas: np.ndarray, opts: dict) -> dict[str, Any]:
        return {"v": np.zeros_like(thetas)}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        v = state["v"]
        lr, mu = opts.column("learning_rate", v), opts.column("momentum", v)
        losses, grads = fun(thetas)
        grads *= lr
        v *= mu
        v -= grads
        thetas += mu * v
        thetas -= grads
        return losses


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012, Coursera lecture 6.5).

    ::

        ms <- decay ms + (1 - decay) g^2          (ms starts at ms_init)
        w  <- w - lr g / (sqrt(ms) + eps)          (eps_inside_sqrt=False)
        w  <- w - lr g / sqrt(ms + eps)            (eps_inside_sqrt=True)
    """

    name = "rmsprop"
    colour = "tab:red"
    summary = "RMSprop: step scaled by a running root mean square of the gradient"
    tuning_default = {"learning_rate": 0.01}
    options = {
        "learning_rate": Option(0.001, _LR, search=LogUniform(1e-5, 0.1), **_POSITIVE),
        "decay": Option(0.9, "decay of the running mean of g^2", **_DECAY),
        "eps": Option(1e-8, "added to the denominator", **_EPS),
        "ms_init": Option(0.0, "initial running mean of g^2", low=0.0, kind=float),
        "eps_inside_sqrt": Option(
            False, "add eps under the square root, as the post did", kind=bool
        ),
    }

    def stack_init(self, thetas: np.ndarray, opts: dict) -> dict[str, Any]:
        ms = np.empty_like(thetas)
        ms[...] = column(opts["ms_init"], ms)
        return {"ms": ms}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        ms = state["ms"]
        losses, grads = fun(thetas)
        ms *= opts.column("decay", ms)
        ms += opts.column("decay", ms, complement) * grads * grads
        eps = opts.column("eps", ms)
        if opts["eps_inside_sqrt"]:
            denom = np.sqrt(ms + eps)
        else:
            denom = np.sqrt(ms)
            denom += eps
        grads /= denom
        grads *= opts.column("learning_rate", grads)
        thetas -= grads
        return losses


class RMSpropBlog(RMSprop):
    """The post's RMSPROP, kept to reproduce its failure (accuracy 0.19).

    The same update as :class:`RMSprop` with the post's constants: no
    learning rate (``lr = 1``), the running mean starting at 1, and ``eps``
    under the square root: ``w <- w - g / sqrt(ms + 1e-8)``. A weight's step
    is its gradient divided by the root mean square of its recent gradients:
    about 1 in size for a weight whose gradient is steady, and at most
    ``1 / sqrt(1 - decay)`` (3.2 for decay 0.9) after a sudden large
    gradient. Steps of that size on every weight of a sigmoid network
    saturate its units: the runs end normally but learn little.
    """

    name = "rmsprop_blog"
    colour = "tab:green"
    summary = "the post's RMSPROP (no learning rate, mean square starting at 1): barely learns"
    tuning_default = {}  # the post's constants, as published
    options = {
        **RMSprop.options,
        "learning_rate": Option(
            1.0, _LR + " (the post had none, i.e. 1)", search=LogUniform(1e-4, 10.0), **_POSITIVE
        ),
        "ms_init": Option(1.0, "initial running mean of g^2 (the post's 1)", low=0.0, kind=float),
        "eps_inside_sqrt": Option(
            True, "add eps under the square root, as the post did", kind=bool
        ),
    }


class AdaGrad(Optimizer):
    """AdaGrad (Duchi, Hazan & Singer 2011).

    ::

        G <- G + g^2
        w <- w - lr g / (sqrt(G) + eps)
    """

    name = "adagrad"
    colour = "tab:gray"
    summary = "AdaGrad: per-weight steps shrinking with the summed squared gradient"
    tuning_default = {"learning_rate": 0.5}
    options = {
        "learning_rate": Option(0.1, _LR, search=LogUniform(1e-4, 1.0), **_POSITIVE),
        "eps": Option(1e-8, "added to the denominator", **_EPS),
        "initial_accumulator": Option(0.0, "starting value of G", low=0.0, kind=float),
    }

    def stack_init(self, thetas: np.ndarray, opts: dict) -> dict[str, Any]:
        G = np.empty_like(thetas)
        G[...] = column(opts["initial_accumulator"], G)
        return {"G": G}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        G = state["G"]
        losses, grads = fun(thetas)
        G += grads * grads
        denom = np.sqrt(G)
        denom += opts.column("eps", denom)
        grads /= denom
        grads *= opts.column("learning_rate", grads)
        thetas -= grads
        return losses


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015, Algorithm 1).

    ::

        m <- b1 m + (1 - b1) g;    v <- b2 v + (1 - b2) g^2
        m_hat = m / (1 - b1^t);    v_hat = v / (1 - b2^t)
        w <- w - lr m_hat / (sqrt(v_hat) + eps)
    """

    name = "adam"
    colour = "tab:olive"
    summary = "Adam: bias-corrected moment estimates"
    tuning_default = {"learning_rate": 0.01}
    options = {
        "learning_rate": Option(0.001, _LR, search=LogUniform(1e-5, 0.1), **_POSITIVE),
        "beta1": Option(0.9, "decay of the first moment", **_DECAY),
        "beta2": Option(0.999, "decay of the second moment", **_DECAY),
        "eps": Option(1e-8, "added to the denominator", **_EPS),
    }
    shared_state = ("t",)  # the step count: every run of a stack steps together

    def stack_init(self, thetas: np.ndarray, opts: dict) -> dict[str, Any]:
        return {"m": np.zeros_like(thetas), "v": np.zeros_like(thetas), "t": 0}

    def stack_step(self, fun: StackObjective, thetas: np.ndarray, state: dict, opts: dict) -> Any:
        m, v = state["m"], state["v"]
        state["t"] += 1
        t = state["t"]
        losses, grads = fun(thetas)
        m *= opts.column("beta1", m)
        m += opts.column("beta1", m, complement) * grads
        v *= opts.column("beta2", v)
        v += opts.column("beta2", v, complement) * grads * grads
        # float64 numbers, computed run by run from Python floats (numpy's power of an
        # array may take a CPU's own vector routine: another rounding); for one run,
        # float64 scalars, which numpy promotes as it promotes a float64 column
        runs = opts.floats("learning_rate", "eps", "beta1", "beta2")
        if len(runs) == 1:
            lr_t, eps_t = _adam_corrections(*runs[0], t)
        else:
            corrections = [_adam_corrections(*run, t) for run in runs]
            lr_t, eps_t = (np.array(col, dtype=np.float64)[:, None] for col in zip(*corrections))
        denom = np.sqrt(v)
        denom += eps_t
        np.divide(m, denom, out=grads)
        grads *= lr_t
        thetas -= grads
        return losses


def _adam_corrections(
    lr: float, eps: float, b1: float, b2: float, t: int
) -> tuple[np.float64, np.float64]:
    """Adam's step size and eps at step ``t``, both bias corrections folded in
    (saving two full-size temporaries): float64 numbers."""
    lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
    eps_t = eps * np.sqrt(1 - b2**t)
    return lr_t, eps_t


BUILTINS = (GD, Momentum, Nesterov, RMSprop, RMSpropBlog, AdaGrad, Adam)
