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
