"""A third-party optimizer, registered through the ``nnbench.optimizers`` entry point."""

import numpy as np

from nnbench.optimizers import Optimizer, Option


class SignSGD(Optimizer):
    """signSGD (Bernstein et al. 2018): ``w <- w - lr * sign(g)``."""

    name = "signsgd"
    summary = "sign of the gradient times a fixed step (test plugin)"
    options = {"learning_rate": Option(0.01, "step size", low=0.0, low_open=True)}

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * np.sign(grad)
        return loss


class Faulty(Optimizer):
    """Plain GD that can fail on purpose at a given step: the runner's fault tests.

    ``fault="raise"`` raises an exception, ``"exit"`` kills the process it runs
    in (a worker dying), ``"nan"`` returns a non-finite loss. ``"none"`` is GD.
    """

    name = "faulty"
    summary = "GD with fault injection for the runner tests (test plugin)"
    options = {
        "learning_rate": Option(0.3, "step size", low=0.0, low_open=True),
        "fault": Option("none", "what goes wrong", choices=("none", "raise", "exit", "nan")),
        "at_step": Option(3, "the step at which it goes wrong", low=1),
    }

    def init(self, theta):
        return {"t": 0}

    def step(self, fun, theta, state):
        state["t"] += 1
        fault = self.config["fault"]
        if state["t"] == self.config["at_step"] and fault != "none":
            if fault == "raise":
                raise RuntimeError("injected failure")
            if fault == "exit":
                import os

                os._exit(3)
            return float("nan")
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * grad
        return loss
