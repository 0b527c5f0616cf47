"""One run of a grid, as a worker process executes it.

Kept apart from the runner so that a worker imports only what training needs
(numpy, scipy and nnbench's core), not pandas, pyarrow or scikit-learn: each
worker starts faster and holds less memory.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

from threadpoolctl import threadpool_info, threadpool_limits

from nnbench import data as data_mod
from nnbench import optimizers
from nnbench.grid import RunSpec
from nnbench.mlp import MLP
from nnbench.optimizers import ScipyStatusWarning
from nnbench.train import FAILED, Budget, seed_rngs, train


def blas_info() -> list[dict[str, Any]]:
    """The BLAS libraries in use in this process and their thread counts."""
    keep = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def execute_run(
    spec_dict: dict[str, Any],
    shared: data_mod.SharedData,
    threads: int | None,
    marker_dir: str | None,
) -> dict[str, Any]:
    """Train one run and return its rows and status; exceptions become a failed status."""
    spec = RunSpec.from_dict(spec_dict)
    marker = Path(marker_dir) / spec.run_id if marker_dir else None
    if marker is not None:
        with contextlib.suppress(OSError):  # a remote worker may not see the folder
            marker.write_text(str(os.getpid()))
    limits = threadpool_limits(threads) if threads else contextlib.nullcontext()
    try:
        with limits:
            splits = shared.load()
            model = MLP(
                (splits["train"][0].shape[1], *spec.hidden, shared.n_classes),
                activation=spec.activation,
                output=spec.output,
                l2=spec.l2,
                dtype=spec.dtype,
            )
            init_rng, batch_rng = seed_rngs(spec.seed)
            theta = model.init(init_rng, spec.init)
            optimizer = optimizers.make(spec.optimizer, spec.options)
            with warnings.catch_warnings():
                # counted in the optimizer's state and reported in the message
                warnings.simplefilter("ignore", ScipyStatusWarning)
                result = train(
                    model,
                    theta,
                    splits[spec.train_split],
                    optimizer,
                    budget=Budget(
                        spec.max_iter, spec.max_epochs, spec.max_grad_evals, spec.max_seconds
                    ),
                    rng=batch_rng,
                    batch_size=spec.batch_size,
                    batch_growth=spec.batch_growth,
                    valid=splits[spec.val_split],
                    test=splits[spec.test_split] if spec.test_split else None,
                    eval_every=spec.eval_every,
                    tol=spec.tol,
                )
            blas = blas_info()
        message = result.message
        n_bad = result.optimizer_state.get("n_bad_status", 0)
        if n_bad:
            last = result.optimizer_state["last_bad_message"]
            message = (f"{message}; " if message else "") + (
                f"{n_bad} of {result.n_iter} minibatch minimisations ended with a scipy "
                f"failure status (last: {last})"
            )
        out = {"rows": result.rows, "status": result.status, "message": message, "blas": blas}
    except Exception as exc:  # a failing run is a result, never the end of the grid
        out = {"rows": [], "status": FAILED, "message": f"{type(exc).__name__}: {exc}", "blas": []}
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    out["run_id"] = spec.run_id
    return out
