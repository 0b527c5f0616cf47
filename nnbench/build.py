"""One way to build a run from its settings: the model, the start vector, the
optimizer, the loop settings and the minibatch order.

Every entry point builds runs here: the grid's worker, ``nnbench train``,
the estimator and the benchmarks. That is what guarantees that a run means
the same thing wherever it is made: for one seed, every optimizer starts
from :func:`~nnbench.train.initial_weights` and sees the same batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnbench import optimizers, seeding, settings
from nnbench.mlp import MLP
from nnbench.optimizers import Optimizer
from nnbench.train import LoopSettings, TrainResult, train, train_stack

if TYPE_CHECKING:
    from nnbench.data.formats import Split


@dataclass
class Run:
    """A run ready to train."""

    model: MLP
    theta: np.ndarray
    optimizer: Optimizer
    loop: LoopSettings
    batch_rng: np.random.Generator
    train: Split
    valid: Split | None
    test: Split | None

    def __call__(
        self,
        callback: Callable[[dict[str, Any]], Any] | None = None,
        heartbeat: Callable[[int], None] | None = None,
    ) -> TrainResult:
        """Train it (``theta`` in place)."""
        return train(
            self.model,
            self.theta,
            self.train,
            self.optimizer,
            self.loop,
            self.batch_rng,
            valid=self.valid,
            test=self.test,
            callback=callback,
            heartbeat=heartbeat,
        )


def train_together(
    runs: Sequence[Run], heartbeat: Callable[[int], None] | None = None
) -> list[TrainResult]:
    """Train runs that share everything but their optimizer's numbers (the
    members of a stack, :func:`nnbench.train.train_stack`) as one computation: the same
    results, run by run, as calling each. Runs that differ in anything else
    (their network, start weights, minibatch order, loop or data) are refused."""
    first = runs[0]
    for run in runs[1:]:
        differs = [
            what
            for what, same in (
                ("network", repr(run.model) == repr(first.model)),
                ("start weights", np.array_equal(run.theta, first.theta)),
                ("minibatch order", run.batch_rng.bit_generator.state
                 == first.batch_rng.bit_generator.state),
                ("loop settings", repr(run.loop) == repr(first.loop)),
                ("data", all(a is b for a, b in zip(
                    (run.train, run.valid, run.test), (first.train, first.valid, first.test)))),
            )
            if not same
        ]  # fmt: skip
        if differs:
            raise ValueError(
                f"runs that differ in their {', '.join(differs)} cannot train together"
            )
    return train_stack(
        first.model,
        np.stack([r.theta for r in runs]),
        first.train,
        [r.optimizer for r in runs],
        first.loop,
        first.batch_rng,
        valid=first.valid,
        test=first.test,
        heartbeat=heartbeat,
    )


def run_values(**given: Any) -> dict[str, Any]:
    """Every run setting: the schema's defaults, with ``given`` in place.

    The given values are checked and made canonical; a budget given replaces
    the default budget whole, as in experiment files.
    """
    values = {s.key: s.default for s in settings.RUN_SETTINGS}
    budget = {k: given.pop(k) for k in settings.BUDGET_KEYS if k in given}
    for key, value in given.items():
        setting = settings.BY_KEY.get(key)
        if setting is None or setting.scope == "experiment":
            raise ValueError(f"unknown run setting {key!r} (`nnbench config` lists them)")
        values[key] = setting.convert(value, "settings")
    values.update(
        settings.resolve_budget(
            {k: settings.BY_KEY[k].convert(v, "settings") for k, v in budget.items()}
        )
    )
    return values


def build_run(
    values: Mapping[str, Any],
    optimizer: str | Optimizer,
    splits: Mapping[str, Split | None],
    n_classes: int,
    options: Mapping[str, Any] | None = None,
    theta: np.ndarray | None = None,
    **loop_extra: Any,
) -> Run:
    """A run from its settings and data.

    Parameters
    ----------
    values : every run setting (see :func:`run_values`; a RunSpec's ``values``)
    optimizer : a registered name (with ``options``) or an Optimizer
    splits : ``{"train": (X, y), "valid": ..., "test": ...}``; the settings
        ``train``, ``validation`` and ``test`` pick which is used for what
    n_classes : outputs of the network
    theta : start weights; None draws them from the seed (:func:`nnbench.seeding.start`)
    loop_extra : fields of :class:`LoopSettings` beyond the schema
    """
    X = splits[values["train"]][0]
    sizes = (X.shape[1], *values["hidden"], n_classes)
    settings.check_size(sizes, "the network")
    model = MLP(
        sizes,
        activation=values["activation"],
        output=values["output"],
        l2=values["l2"],
        dtype=values["dtype"],
    )
    if not isinstance(optimizer, Optimizer):
        optimizer = optimizers.make(optimizer, dict(options or {}))
    if theta is None:
        theta = seeding.start(model, values["seed"], values["init"], values["init_perturbation"])
    test = values["test"]
    return Run(
        model=model,
        theta=theta,
        optimizer=optimizer,
        loop=LoopSettings.from_values(values, **loop_extra),
        batch_rng=seeding.seed_rngs(values["seed"])[1],
        train=splits[values["train"]],
        valid=splits.get(values["validation"]),
        test=splits.get(test) if test else None,
    )
