"""Minimisers from scipy run on each minibatch, as the post ran CG and L-BFGS-B.

Each step hands the minibatch objective to ``scipy.optimize.minimize`` with
``maxiter = mb_maxiter`` and writes the result back into ``theta`` in place.
scipy calls the objective as often as its line searches need; every call
counts as a gradient evaluation. A status other than success or "iteration
limit reached" (the normal end with a small ``mb_maxiter``) becomes a warning
and is counted in the run's record, never an exception.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import optimize

from nnbench.optimizers.base import Objective, Optimizer, Option
from nnbench.space import IntUniform


class ScipyStatusWarning(RuntimeWarning):
    """scipy ended a minibatch minimisation with a failure status."""


class _ScipyMinimizer(Optimizer):
    method: str = ""
    ok_statuses: tuple[int, ...] = (0, 1)  # converged, iteration limit reached

    def init(self, theta: np.ndarray) -> dict[str, Any]:
        return {"n_bad_status": 0, "n_steps": 0, "last_bad_message": ""}

    def diagnostics(self, state: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"n_bad_status": state["n_bad_status"]}
        if state["n_bad_status"]:
            out["warning"] = (
                f"{state['n_bad_status']} of {state['n_steps']} minibatch minimisations ended "
                f"with a scipy failure status (last: {state['last_bad_message']})"
            )
        return out

    def step(self, fun: Objective, theta: np.ndarray, state: dict[str, Any]) -> float:
        def fun64(x: np.ndarray) -> tuple[float, np.ndarray]:
            # A copy, in float64: scipy keeps gradients across calls (the
            # objective reuses its buffer) and its line searches work in float64.
            loss, grad = fun(x)
            return loss, grad.astype(np.float64, copy=True)

        state["n_steps"] += 1
        result = optimize.minimize(
            fun64,
            theta.astype(np.float64),
            jac=True,
            method=self.method,
            options={"maxiter": self.config["mb_maxiter"]},
        )
        if result.status not in self.ok_statuses:
            state["n_bad_status"] += 1
            state["last_bad_message"] = f"{self.method} status {result.status}: {result.message}"
            warnings.warn(state["last_bad_message"], ScipyStatusWarning, stacklevel=2)
        if np.all(np.isfinite(result.x)):
            theta[...] = result.x
        return float(result.fun)


class CG(_ScipyMinimizer):
    """Polak-Ribiere nonlinear conjugate gradient (scipy's ``method="CG"``;
    Nocedal & Wright 2006, p. 121) for ``mb_maxiter`` iterations per minibatch."""

    name = "cg"
    colour = "tab:purple"
    method = "CG"
    summary = "scipy's nonlinear conjugate gradient on each minibatch (the post's favourite)"
    # scipy's CG reports 2 ("precision loss") when its line search fails to
    # make progress: on a minibatch that is common and harmless, but it is
    # still recorded, since it means the step did less than asked.
    options = {
        "mb_maxiter": Option(
            10,
            "CG iterations per minibatch (the post's 10)",
            low=1,
            kind=int,
            search=IntUniform(2, 20),
        ),
    }


class LBFGSB(_ScipyMinimizer):
    """Limited-memory BFGS with bounds (scipy's ``method="L-BFGS-B"``; Byrd,
    Lu, Nocedal & Zhu 1995), unbounded here, for ``mb_maxiter`` iterations per
    minibatch. With ``batch_size = "full"`` it is plain full-batch L-BFGS."""

    name = "lbfgsb"
    colour = "tab:brown"
    method = "L-BFGS-B"
    summary = "scipy's L-BFGS-B on each minibatch; full-batch L-BFGS with batch_size = 'full'"
    options = {
        "mb_maxiter": Option(
            10,
            "L-BFGS-B iterations per minibatch (the post's 10)",
            low=1,
            kind=int,
            search=IntUniform(2, 20),
        ),
    }


BUILTINS = (CG, LBFGSB)
