"""Every run setting, declared once: section, kind, range, default with its reason, flag, doc.

Everything else is derived from :data:`SCHEMA`: the validation of experiment
files (:mod:`nnbench.grid`), the flags of ``nnbench run`` and ``nnbench
train`` (:mod:`nnbench.cli`), the defaults of the estimator, run identity
(only values that differ from these defaults are hashed) and ``nnbench
config``, which prints the table.

A setting is one of three scopes:

- ``run``: part of every run, and of its identity (a different value is a
  different computation);
- ``control``: part of every run, but not of its identity (how long to wait
  before calling a silent run hung does not change what it computes);
- ``experiment``: about the file as a whole (its name, the tuning protocol).

Axis settings take a list in an experiment file, and the grid is the product
of the lists: architectures (``hidden``), batch sizes and seeds.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nnbench.errors import ConfigError
from nnbench.options import INT, Kind, Option

# Bounds that catch typos before they eat a machine: more runs, units, layers
# or weights than this is almost certainly a mistake.
MAX_RUNS = 100_000
MAX_UNITS = 100_000
MAX_LAYERS = 50
MAX_PARAMS = 200_000_000  # 1.6 GB a copy in float64; an optimizer keeps a few
MAX_SEED = 2**63 - 1

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SPLITS = ("train", "valid", "test")
FULL_BATCH = "full"
PHASES = ("grid", "trial", "final")


def _name(value: Any) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError
    return value


def _architecture(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or len(value) > MAX_LAYERS:
        raise ValueError
    units = tuple(INT.convert(u) for u in value)
    if any(not 1 <= u <= MAX_UNITS for u in units):
        raise ValueError
    return units


def _batch_size(value: Any) -> int | float | str:
    if value == FULL_BATCH:
        return FULL_BATCH
    if isinstance(value, float) and value == 1.0:
        # 1.0 read as a fraction would be every row, read as a count one row:
        # the old documentation promised the former, the code did the latter.
        raise ValueError
    number = Option(0.0, "", low=0.0, low_open=True, kind=float).convert(value)
    if number < 1:
        return number
    return INT.convert(number)


def _every(value: Any) -> int | str:
    if value == "epoch":
        return value
    value = INT.convert(value)
    if value < 1:
        raise ValueError
    return value


def _dataset(value: Any) -> str:
    from nnbench import data  # the registry: plugins are read on first use

    if not isinstance(value, str) or value not in data.available():
        raise ValueError
    return value


def _split_or_none(value: Any) -> str | None:
    # "none", never 0 or false: those are not names of splits
    if value == "none":
        return None
    if not isinstance(value, str) or value not in SPLITS:
        raise ValueError
    return value


NAME = Kind(
    "a word of letters, digits, '.', '_' or '-' (it names the results folder, "
    "so no '/' and no leading '.')",
    _name,
)
ARCHITECTURE = Kind(
    f"a list of at most {MAX_LAYERS} layer sizes, each an integer >= 1 and <= {MAX_UNITS}",
    _architecture,
)
BATCH_SIZE = Kind(
    'a count of rows (an integer >= 1), a fraction of them (> 0 and < 1), or "full"',
    _batch_size,
)
EVERY = Kind('"epoch" or an integer >= 1 (iterations)', _every)
TEST_SPLIT = Kind('one of train, valid, test, or "none"', _split_or_none)


def _dataset_names() -> str:  # the registry decides: plugins add names
    from nnbench import data

    return "one of " + ", ".join(data.available())


RUNNING = "running"  # train_rows: the mean minibatch loss, no pass of its own


def _train_rows(value: Any) -> int | str:
    if value in ("all", RUNNING):
        return value
    value = INT.convert(value)
    if value < 1:
        raise ValueError
    return value


def _seed_list(value: Any) -> tuple[int, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError
    seeds = tuple(INT.convert(s) for s in value)
    if any(not 0 <= s <= MAX_SEED for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError
    return seeds


DATASET = Kind(_dataset_names, _dataset)
TRAIN_ROWS = Kind('an integer >= 1, "all", or "running"', _train_rows)
SEED_LIST = Kind("a non-empty list of distinct integers >= 0", _seed_list)


@dataclass(frozen=True)
class Setting:
    """One setting of the schema.

    ``flags`` are ``(flag of nnbench run, flag of nnbench train)``; None where a
    command does not offer it. An axis setting's run flag takes a comma list.
    """

    section: str
    key: str
    option: Option
    reason: str
    flags: tuple[str | None, str | None] = (None, None)
    axis: bool = False
    scope: str = "run"
    file_key: str | None = None  # the key in the file, when it differs (seeds -> seed)

    @property
    def where(self) -> str:
        """How an error names it: ``[grid] batch_size``."""
        return f"[{self.section}] {self.in_file}" if self.section else self.in_file

    @property
    def in_file(self) -> str:
        return self.file_key or self.key

    @property
    def dotted(self) -> str:
        """The override key: ``grid.batch_size``."""
        return f"{self.section}.{self.in_file}" if self.section else self.in_file

    @property
    def default(self) -> Any:
        return self.option.default

    def convert(self, value: Any, source: str) -> Any:
        """The canonical value, or one ConfigError naming the file, the key and the fix."""
        try:
            return self.option.convert(value)
        except ValueError as exc:
            raise ConfigError(f"{source}: {self.where}: must be {exc}; got {value!r}") from None


def _s(section: str, key: str, default: Any, doc: str, reason: str, **kw: Any) -> Setting:
    flags = kw.pop("flags", (None, None))
    axis = kw.pop("axis", False)
    scope = kw.pop("scope", "run")
    file_key = kw.pop("file_key", None)
    return Setting(section, key, Option(default, doc, **kw), reason, flags, axis, scope, file_key)


_POS = {"low": 0.0, "low_open": True}

SCHEMA: tuple[Setting, ...] = (
    # -- the experiment ----------------------------------------------------------------
    _s("", "name", "cli", "names the results folder", "what a grid built from flags is called",
       kind=NAME, flags=("--name", None), scope="experiment"),
    _s("", "description", "", "free text", "nothing to say by default", kind=str,
       scope="experiment"),
    # -- data --------------------------------------------------------------------------
    _s("data", "dataset", "mnist", "the dataset (`nnbench data list`)", "the post's",
       kind=DATASET, flags=("--dataset", "--dataset")),
    _s("data", "path", None, "mnist only: a .pkl.gz or a folder of IDX files",
       "the cache, filled by `nnbench data fetch`", kind=str, optional=True,
       flags=("--data-path", "--data-path")),
    _s("data", "train", "train", "the split that trains", "the post's",
       choices=SPLITS, kind=str),
    _s("data", "validation", "valid", "the split that scores and selects",
       "the post scored on its 10,000 validation images", choices=SPLITS, kind=str),
    _s("data", "test", "test", 'the split reported at the end, or "none"',
       "held out from every choice, so its accuracy is honest", kind=TEST_SPLIT,
       optional=True),
    _s("data", "dtype", "float64", "precision of the weights and of every computation",
       "numpy's default, the post's", choices=("float32", "float64"), kind=str,
       flags=("--dtype", "--dtype")),
    # -- model -------------------------------------------------------------------------
    _s("model", "hidden", (25,), "hidden layer sizes, e.g. [500, 300]; [] for none",
       "the post's 784-25-10 network", kind=ARCHITECTURE, axis=True,
       flags=("--hidden", "--hidden")),
    _s("model", "activation", "sigmoid", "hidden activation", "the post's",
       choices=("sigmoid", "tanh", "relu"), kind=str, flags=("--activation", "--activation")),
    _s("model", "output", "sigmoid",
       "output layer: one-vs-all sigmoids with summed cross-entropy, or softmax",
       "the post's", choices=("sigmoid", "softmax"), kind=str,
       flags=("--output", "--output")),
    _s("model", "l2", 0.0, "L2 penalty l2 / (2 n) * sum(W ** 2), biases excluded",
       "the post had none", low=0.0, kind=float, flags=("--l2", "--l2")),
    _s("model", "init", "auto", "initial weights: auto picks blog, glorot or he by activation",
       "each activation's standard rule", choices=("auto", "blog", "glorot", "he"), kind=str,
       flags=("--init", "--init")),
    _s("model", "init_perturbation", 0.0,
       "each start weight times (1 + this x a uniform draw in [-1, 1]), from the seed",
       "none: the seed's start weights; `nnbench baseline` measures rounding sensitivity "
       "with a tiny one", low=0.0, high=0.1, kind=float),
    # -- the grid ----------------------------------------------------------------------
    _s("grid", "batch_size", 50, 'rows per minibatch, a fraction of them when < 1, or "full"',
       "the post's NN class default", kind=BATCH_SIZE, axis=True,
       flags=("--batch-sizes", "--batch-size")),
    _s("grid", "seed", 1234, "fixes the start weights and the minibatch order",
       "the post's RandomState(1234)", kind=INT, low=0, high=MAX_SEED, axis=True,
       file_key="seeds", flags=("--seeds", "--seed")),
    _s("grid", "batch_growth", 1.0, "factor by which the batch grows after every pass",
       "1: fixed batches, as the post ran them", low=1.0, kind=float,
       flags=("--batch-growth", "--batch-growth")),
    # -- the budget: a run stops at whichever comes first ------------------------------
    _s("budget", "max_iter", 100, "minibatch updates", "the post's maxiter", kind=int,
       optional=True, flags=("--max-iter", "--max-iter"), **_POS),
    _s("budget", "max_epochs", None, "passes over the training set", "the post counted updates",
       kind=float, optional=True, flags=("--epochs", "--epochs"), **_POS),
    _s("budget", "max_grad_evals", None, "gradient evaluations (scipy's make several a step)",
       "the post counted updates", kind=int, optional=True,
       flags=("--max-grad-evals", "--max-grad-evals"), **_POS),
    _s("budget", "max_seconds", None, "training seconds, evaluation excluded",
       "a time budget makes results depend on the machine", kind=float, optional=True,
       flags=("--max-seconds", "--max-seconds"), **_POS),
    _s("budget", "hang_seconds", 600.0,
       "a run that makes no step for this long is stopped and recorded as failed",
       "far beyond any single step on these models", kind=float, scope="control",
       flags=("--hang-seconds", None), **_POS),
    # -- evaluation ---------------------------------------------------------------------
    _s("eval", "points", 20,
       "evaluations over the budget, the last at its end (and one at the start)",
       "enough to place a time to target within 5% of the budget", kind=int, low=1,
       flags=("--eval-points", "--eval-points")),
    _s("eval", "spacing", "linear", "how the points are spread: linear, or log for early detail",
       "time to target is read on a linear axis", choices=("linear", "log"), kind=str,
       flags=("--eval-spacing", "--eval-spacing")),
    _s("eval", "every", None, 'instead of points: every N iterations, or "epoch"',
       "points adapt to any budget", kind=EVERY, optional=True,
       flags=("--eval-every", "--eval-every")),
    _s("eval", "train_rows", 5_000,
       "training-set metrics on a fixed subset of this many rows (all when larger), "
       '"all", or "running": the mean minibatch loss since the previous point, no pass '
       "of its own (scikit-learn's loss_curve_, the estimator's default)",
       "as AlgoPerf does: half the validation set's cost, where all 50,000 MNIST rows "
       "would cost five times it (benchmarks/eval_share.py measures the share)", kind=TRAIN_ROWS,
       flags=("--train-eval-rows", "--train-eval-rows")),
    _s("eval", "test_curve", False, "the test split at every evaluation point, not only the last",
       "test accuracy is reported at the end; a curve of it would cost a third of evaluation",
       kind=bool, flags=("--test-curve", "--test-curve")),
    _s("eval", "tol", None, "stop when the training cost changes by less between evaluations",
       "a benchmark compares optimizers at equal budgets", kind=float, low=0.0, optional=True,
       flags=("--tol", "--tol")),
    # -- tuning (see nnbench.tune) ---------------------------------------------------------
    _s("tune", "trials", 16, "sampled settings per optimizer, per architecture x batch cell",
       "enough for a tuning curve; Choi et al. 2019 used 30 to 100 on larger problems",
       kind=int, low=1, high=10_000, scope="experiment"),
    _s("tune", "tune_seed", 0, "draws the trial points; independent of the run seeds",
       "any fixed seed makes the study reproducible", kind=int, low=0, high=MAX_SEED,
       scope="experiment", file_key="seed"),
    _s("tune", "final_seeds", None, "seeds of the reruns of each optimizer's best trial",
       "five reruns give an interval; required with [tune]", kind=SEED_LIST, optional=True,
       scope="experiment"),
)  # fmt: skip


BY_KEY: dict[str, Setting] = {s.key: s for s in SCHEMA}
assert len(BY_KEY) == len(SCHEMA), "every setting needs a key of its own"
BY_DOTTED: dict[str, Setting] = {s.dotted: s for s in SCHEMA}
SECTIONS: dict[str, tuple[Setting, ...]] = {}
for _setting in SCHEMA:
    SECTIONS.setdefault(_setting.section, ())
    SECTIONS[_setting.section] += (_setting,)
BUDGET_KEYS = tuple(s.key for s in SECTIONS["budget"] if s.scope == "run")
RUN_SETTINGS = tuple(s for s in SCHEMA if s.scope in ("run", "control"))
DEFAULTS: dict[str, Any] = {s.key: s.default for s in SCHEMA}


def section_keys(section: str) -> tuple[str, ...]:
    """The keys a section of an experiment file accepts."""
    return tuple(s.in_file for s in SECTIONS.get(section, ()))


def identity_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """The run settings that enter a run's identity: those of scope ``run`` that
    differ from the schema's default (so a new setting with a default changes
    no existing id)."""
    out = {}
    for setting in RUN_SETTINGS:
        if setting.scope != "run":
            continue
        value = values.get(setting.key, setting.default)
        if value != setting.default:
            out[setting.key] = list(value) if isinstance(value, tuple) else value
    return out


def resolve_budget(given: Mapping[str, Any]) -> dict[str, Any]:
    """The budget: what was given, or the default (100 iterations) when nothing was.

    A budget given at all replaces the default whole: ``max_epochs = 3`` alone
    means no iteration limit.
    """
    if any(given.get(k) is not None for k in BUDGET_KEYS):
        return {k: given.get(k) for k in BUDGET_KEYS}
    return {k: BY_KEY[k].default for k in BUDGET_KEYS}


def check_size(sizes: Iterable[int], where: str) -> None:
    """Refuse a network whose weights would not fit, before any memory is spent."""
    sizes = list(sizes)
    n_params = sum((a + 1) * b for a, b in itertools.pairwise(sizes))
    if n_params > MAX_PARAMS:
        raise ConfigError(
            f"{where}: a network of layers {tuple(sizes)} has {n_params:,} weights, "
            f"more than the {MAX_PARAMS:,} allowed; use smaller hidden layers"
        )


def describe() -> list[dict[str, str]]:
    """The schema as rows of text, for ``nnbench config`` and the documentation."""
    rows = []
    for s in SCHEMA:
        default = s.default
        if isinstance(default, tuple):
            default = list(default)
        rows.append(
            {
                "setting": s.where,
                "default": "unset" if default is None else repr(default).replace("'", '"'),
                "accepts": s.option.describe_range(),
                "meaning": s.option.doc,
                "why this default": s.reason,
                "flag (run)": s.flags[0] or "",
                "flag (train)": s.flags[1] or "",
            }
        )
    return rows


def budget_axis(values: Mapping[str, Any]) -> str:
    """The quantity evaluation points are spread over: the first budget set, in
    the order epochs, iterations, gradient evaluations, seconds."""
    for key, axis in (
        ("max_epochs", "epoch"),
        ("max_iter", "iteration"),
        ("max_grad_evals", "grad_evals"),
        ("max_seconds", "train_seconds"),
    ):
        if values.get(key) is not None:
            return axis
    raise ConfigError("a run needs a budget")  # resolve_budget always gives one
