"""What a run's own process executes: one run, in the process its supervisor made for it.

Kept apart from the runner so that the run's process imports only what
training needs (numpy, scipy and nnbench's core), not pandas, pyarrow or
scikit-learn. :func:`execute` never raises: whatever the run does, it comes
back as a status and a message.
"""

from __future__ import annotations

import contextlib
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from nnbench.build import build_run, train_together
from nnbench.data.shared import SharedData
from nnbench.experiment import RunSpec
from nnbench.optimizers import ScipyStatusWarning
from nnbench.status import Status

# The BLAS libraries of this process, found once: in the fork server that
# imports this module before it forks every run (finding them anew costs a run
# tens of milliseconds).
_CONTROLLER = ThreadpoolController()


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries in use in this process and their thread counts."""
    keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keep} for lib in _CONTROLLER.info()]


def describe_exception(exc: BaseException) -> str:
    """``Type: message``, and where it was raised (the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return text + where


def execute(
    spec_dict: dict[str, Any],
    shared: SharedData,
    threads: int | None,
    heartbeat: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Train one run and return its rows, status, message and diagnostics."""
    spec = RunSpec.from_dict(spec_dict)
    limits = _CONTROLLER.limit(limits=threads) if threads else contextlib.nullcontext()
    out: dict[str, Any] = {"rows": [], "blas": [], "diagnostics": {}}
    try:
        with limits:
            splits = shared.load()
            run = build_run(spec.values, spec.optimizer, splits, shared.n_classes, spec.options)
            with warnings.catch_warnings():
                # counted by the optimizer and reported through its diagnostics
                warnings.simplefilter("ignore", ScipyStatusWarning)
                result = run(heartbeat=heartbeat)
            out["blas"] = blas_info()
        out.update(_outcome(run, result))
    except BaseException as exc:  # a failing run is a result, never the end
        out.update(status=Status.FAILED.value, message=describe_exception(exc))
    out["run_id"] = spec.run_id
    return out


def execute_stack(
    spec_dicts: list[dict[str, Any]],
    shared: SharedData,
    threads: int | None,
    heartbeat: Callable[[int], None] | None = None,
    verify: bool = False,
) -> dict[str, Any]:
    """Train a stack of runs (:mod:`nnbench.stack`): runs of one optimizer that
    differ only in its number options. Every member gets its own result, under
    ``"stack"``; a stack that cannot be built or fails as a whole returns a
    failed result without one, and its runs are run alone.

    With ``verify``, the member that trained longest is trained once more alone:
    its weights and rows must be the stack's bit for bit (``"verified"``), or the
    stack fails, naming its optimizer under ``"unverified"``."""
    specs = [RunSpec.from_dict(d) for d in spec_dicts]
    limits = _CONTROLLER.limit(limits=threads) if threads else contextlib.nullcontext()
    out: dict[str, Any] = {"run_id": stack_id(specs)}
    try:
        with limits:
            splits = shared.load()
            runs = [
                build_run(s.values, s.optimizer, splits, shared.n_classes, s.options) for s in specs
            ]
            results = train_together(runs, heartbeat)
            if verify:
                j = max(range(len(specs)), key=lambda i: (results[i].n_iter, -i))
                alone = build_run(
                    specs[j].values, specs[j].optimizer, splits, shared.n_classes, specs[j].options
                )
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ScipyStatusWarning)
                    if not _same_numbers(alone(heartbeat=heartbeat), results[j]):
                        out.update(
                            status=Status.FAILED.value,
                            unverified=specs[j].optimizer,
                            message=f"optimizer {specs[j].optimizer!r}: its stacked update "
                            "(stack_step) gave other numbers than its step alone; its trials "
                            "run alone (fix the plugin's stack_step, or remove it)",
                        )
                        return out
                out["verified"] = specs[j].optimizer
            blas = blas_info()
            members = [
                _member(s, r, res, blas, len(specs)) for s, r, res in zip(specs, runs, results)
            ]
    except BaseException as exc:
        out.update(status=Status.FAILED.value, message=describe_exception(exc))
        return out
    out.update(status=Status.COMPLETED.value, message="", stack=members)
    return out


def _same_numbers(one: Any, stacked: Any) -> bool:
    """Whether a run alone and the same run in a stack ended with the same
    status, weights and rows (bit for bit; seconds aside: a stack has no run's clock)."""
    ends = (one.status, one.message, one.n_iter, one.n_grad_evals, len(one.rows))
    if ends != (stacked.status, stacked.message, stacked.n_iter, stacked.n_grad_evals,
                len(stacked.rows)):  # fmt: skip
        return False
    if not np.array_equal(one.theta, stacked.theta, equal_nan=True):
        return False
    for a, b in zip(one.rows, stacked.rows):
        for key, value in a.items():
            if key.endswith("seconds"):
                continue
            other = b.get(key)
            if not (value == other or (value != value and other != other)):
                return False
    return True


def _member(spec: RunSpec, run: Any, result: Any, blas: list, size: int) -> dict[str, Any]:
    """A stack member's result, as :func:`execute` makes a run's."""
    return {"run_id": spec.run_id, **_outcome(run, result), "blas": blas, "stack_size": size}


def _outcome(run: Any, result: Any) -> dict[str, Any]:
    """A trained run's rows, status, message and diagnostics (the optimizer's
    warning added to the message)."""
    diagnostics = run.optimizer.diagnostics(result.optimizer_state)
    message = result.message
    if diagnostics.get("warning"):
        message = (f"{message}; " if message else "") + str(diagnostics["warning"])
    status = result.status
    if status == Status.INTERRUPTED:
        # The runner's run processes ignore Ctrl-C (the runner handles it),
        # so a KeyboardInterrupt here was raised by the run's own code.
        status = Status.FAILED
        message = "KeyboardInterrupt raised by the run itself (not a Ctrl-C)"
    return {
        "rows": result.rows,
        "status": status.value,
        "message": message,
        "diagnostics": diagnostics,
    }


def stack_id(specs: list[RunSpec]) -> str:
    """The id of a stack: its first run's, marked."""
    return f"stack-{specs[0].run_id}"
