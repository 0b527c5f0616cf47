"""A third-party optimizer, registered through the ``nnbench.optimizers`` entry point."""

import ctypes
import os
import sys
import time

import numpy as np

from nnbench.backends import Backend
from nnbench.optimizers import Optimizer, Option
from nnbench.optimizers.base import column
from nnbench.space import LogUniform


class SignSGD(Optimizer):
    """signSGD (Bernstein et al. 2018): ``w <- w - lr * sign(g)``."""

    name = "signsgd"
    summary = "sign of the gradient times a fixed step (test plugin)"
    tuning_default = {"learning_rate": 0.01}
    options = {"learning_rate": Option(0.01, "step size", low=0.0, low_open=True)}

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * np.sign(grad)
        return loss


class Lion(Optimizer):
    """Lion (Chen et al. 2023), with a stacked step, written as an outside plugin
    would write it: ``c = b1 m + (1 - b1) g``, ``w <- w - lr (sign(c) + wd w)``,
    ``m <- b2 m + (1 - b2) g``."""

    name = "lion"
    summary = "Lion: the sign of an interpolated momentum (test plugin)"
    options = {
        "learning_rate": Option(1e-3, "step size", low=0.0, low_open=True,
                                search=LogUniform(1e-5, 1e-1)),
        "beta1": Option(0.9, "interpolation of the update", low=0.0, high=1.0, high_open=True),
        "beta2": Option(0.99, "decay of the momentum", low=0.0, high=1.0, high_open=True),
        "weight_decay": Option(0.0, "decoupled weight decay", low=0.0),
    }  # fmt: skip
    tuning_default = {"learning_rate": 0.01}

    def init(self, theta):
        return {"m": np.zeros_like(theta)}

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        c = self.config
        m = state["m"]
        update = np.sign(c["beta1"] * m + (1 - c["beta1"]) * grad)
        update += c["weight_decay"] * theta
        theta -= c["learning_rate"] * update
        m *= c["beta2"]
        m += (1 - c["beta2"]) * grad
        return loss

    def stack_init(self, thetas, opts):
        return {"m": np.zeros_like(thetas)}

    def stack_step(self, fun, thetas, state, opts):
        losses, grads = fun(thetas)
        m = state["m"]
        b1, b2 = column(opts["beta1"], grads), column(opts["beta2"], grads)
        update = np.sign(b1 * m + column(1 - opts["beta1"], grads) * grads)
        update += column(opts["weight_decay"], thetas) * thetas
        thetas -= column(opts["learning_rate"], thetas) * update
        m *= b2
        m += column(1 - opts["beta2"], grads) * grads
        return losses


FAULTS = (
    "none",
    "raise",  # an exception
    "exit",  # os._exit(3): the process ends without a word
    "lost",  # os._exit(255): what the fork server reports when it lost a status
    "sysexit",  # sys.exit(3): SystemExit, a BaseException
    "keyboard",  # KeyboardInterrupt raised by the code itself
    "generatorexit",  # GeneratorExit, another BaseException
    "segfault",  # a crash in native code (reading address 0)
    "hang",  # a busy loop that never returns
    "sleep",  # a long sleep (a run that is slow, not hung, in every step)
    "nan",  # a non-finite loss
)


class Faulty(Optimizer):
    """Plain GD that can fail on purpose at a given step: the fault tests.

    ``fault`` picks what goes wrong (see FAULTS), at step ``at_step``, in every
    run of the setting. ``"none"`` is GD.
    """

    name = "faulty"
    summary = "GD with fault injection for the runner tests (test plugin)"
    check_values = {"fault": ()}  # a fault ends the process that checks it
    options = {
        "learning_rate": Option(0.3, "step size", low=0.0, low_open=True),
        "fault": Option("none", "what goes wrong", choices=FAULTS),
        "at_step": Option(3, "the step at which it goes wrong", low=1),
        "seconds": Option(0.05, "how long a step sleeps with fault = sleep", low=0.0),
    }
    shared_state = ("t",)  # the step count: a stack steps together

    def init(self, theta):
        return {"t": 0}

    def step(self, fun, theta, state):
        if self._fault(state):
            return float("nan")
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * grad
        return loss

    def stack_init(self, thetas, opts):
        return {"t": 0}

    def stack_step(self, fun, thetas, state, opts):
        """The same faults in a stack: a stack of faulty trials fails as one."""
        if self._fault(state):
            return np.full(len(thetas), np.nan)
        losses, grads = fun(thetas)
        thetas -= column(opts["learning_rate"], grads) * grads
        return losses

    def _fault(self, state):
        """Do the configured fault if it is due; True for a non-finite loss."""
        state["t"] += 1
        fault = self.config["fault"]
        if fault == "sleep":
            time.sleep(self.config["seconds"])
        elif state["t"] == self.config["at_step"] and fault != "none":
            if fault == "raise":
                raise RuntimeError("injected failure")
            if fault == "exit":
                os._exit(3)
            if fault == "lost":
                os._exit(255)
            if fault == "sysexit":
                sys.exit(3)
            if fault == "keyboard":
                raise KeyboardInterrupt
            if fault == "generatorexit":
                raise GeneratorExit
            if fault == "segfault":
                ctypes.string_at(0)
            if fault == "hang":
                while True:
                    pass
            return True
        return False


class BadStack(Optimizer):
    """GD whose stacked update is wrong on purpose (test plugin): ``bug =
    "rebind"`` rebinds the stack's weights instead of updating them; ``"scale"``
    halves a shared option every step. Alone, it is plain GD."""

    name = "badstack"
    summary = "GD with a wrong stacked update, for the runner's check (test plugin)"
    expected_failures = {
        "stacked_equals_alone": "its stacked update is wrong on purpose",
        "leaving_member": "its stacked update is wrong on purpose",
    }
    options = {
        "learning_rate": Option(0.3, "step size", low=0.0, low_open=True),
        "bug": Option("rebind", "what the stacked update gets wrong", choices=("rebind", "scale")),
    }

    def step(self, fun, theta, state):
        loss, grad = fun(theta)
        theta -= self.config["learning_rate"] * grad
        return loss

    def stack_step(self, fun, thetas, state, opts):
        losses, grads = fun(thetas)
        if self.config["bug"] == "rebind":
            thetas = thetas - column(opts["learning_rate"], grads) * grads  # a new array: wrong
        else:
            thetas -= column(opts["learning_rate"], grads) * grads
            opts["learning_rate"] *= 0.5
        return losses


class ProcessPoolBackend(Backend):
    """concurrent.futures' process pool: a backend a plugin adds in a few lines
    (test plugin). It codes no safety of its own: stopping runs on Ctrl-C and
    ending them when the runner is killed come with the seam."""

    name = "procpool"
    summary = "concurrent.futures process pool (test plugin)"

    def __enter__(self):
        import concurrent.futures
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._pool = concurrent.futures.ProcessPoolExecutor(self.n_jobs, mp_context=ctx)
        return self

    def __exit__(self, *exc):
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, fn, *args):
        return self.track(self._pool.submit(fn, *args))
