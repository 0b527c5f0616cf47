"""Every run setting, declared once: section, kind, range, default with its reason, flag, doc.

Everything else is derived from :data:`SCHEMA`: the validation of experiment
files (:mod:`nnbench.experiment`), the flags of ``nnbench run`` and ``nnbench
train`` (:mod:`nnbench.cli`), the defaults of the estimator, run identity
(only values that differ from these defaults are hashed) and ``nnbench
config``, which prints the table.

A setting is one of three scopes:

- ``run``: part of every run, and of its identity (a different value is a
  different computation);
- ``control``: part of every run, but not of its identity (how long to wait
  before calling a silent run hung does not change what it computes);
- ``experiment``: about the file as a whole (its name, the tuning protocol).

A run setting names the *stage* of a run that consumes it: ``source`` (which
data: the runner shares it with the runs), ``data`` (which splits play which
part), ``model``, ``start`` (the start weights and random streams,
:mod:`nnbench.seeding`), ``loop`` (:class:`nnbench.train.LoopSettings`, made
from these declarations) or ``control`` (the runner's). ``estimator`` is its
parameter's name in :class:`nnbench.MLPClassifier` (the key itself by
default; None where a fit has no use for it): the estimator's parameters, the
result columns and the configurations' names are made from this table, and
``tests/test_settings.py`` sets every setting to a non-default value
(``example``, derived from the option when not given) and follows it to the
run, the stored configuration and the name.

Axis settings take a list in an experiment file, and the grid is the product
of the lists: architectures (``hidden``), batch sizes and seeds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nnbench.errors import ConfigError
from nnbench.functions import HIDDEN_ACTIVATIONS, OUTPUTS
from nnbench.layout import n_params_of
from nnbench.mlp import DTYPES, INIT_SCHEMES
from nnbench.options import INT, Kind, Option, other_value

# Bounds that catch typos before they eat a machine: more runs, units, layers
# or weights than this is almost certainly a mistake.
MAX_RUNS = 100_000
MAX_UNITS = 100_000
MAX_LAYERS = 50
MAX_PARAMS = 200_000_000  # 1.6 GB a copy in float64; an optimizer keeps a few
MAX_SEED = 2**63 - 1
# Evaluation points a run may ask for: each is a pass over the validation set,
# and a count this large is a typo (the schedule is built before the run).
MAX_EVAL_POINTS = 10_000

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SPLITS = ("train", "valid", "test")
FULL_BATCH = "full"


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


def _table(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError
    return dict(sorted(value.items()))


DATASET = Kind(_dataset_names, _dataset)
TABLE = Kind("a table of the dataset's options, e.g. { noise = 0.2 }", _table)
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
    stage: str = "experiment"  # which part of a run consumes it (see the module's doc)
    estimator: str | None = ""  # its name in MLPClassifier: "" the key itself, None none
    example: Any = None  # a non-default value, when the option does not suggest one

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


_STAGES = {"data": "data", "model": "model", "grid": "loop", "budget": "loop", "eval": "loop"}


def _s(section: str, key: str, default: Any, doc: str, reason: str, **kw: Any) -> Setting:
    own = {k: kw.pop(k) for k in ("flags", "axis", "scope", "file_key", "stage", "estimator",
                                   "example") if k in kw}  # fmt: skip
    scope = own.get("scope", "run")
    own.setdefault("stage", _STAGES.get(section, "experiment") if scope == "run" else scope)
    if own["stage"] in ("experiment", "control", "source"):
        own.setdefault("estimator", None)
    return Setting(section, key, Option(default, doc, **kw), reason, **own)


_POS = {"low": 0.0, "low_open": True}

SCHEMA: tuple[Setting, ...] = (
    # -- the experiment ----------------------------------------------------------------
    _s("", "name", "cli", "names the results folder", "what a grid built from flags is called",
       kind=NAME, flags=("--name", None), scope="experiment"),
    _s("", "description", "", "free text", "nothing to say by default", kind=str,
       scope="experiment"),
    # -- data --------------------------------------------------------------------------
    _s("data", "dataset", "mnist", "the dataset (`nnbench data list`)", "the post's",
       kind=DATASET, flags=("--dataset", "--dataset"), stage="source", example="digits"),
    _s("data", "path", None, "a file or folder the dataset reads, for a dataset that reads one "
       "(`nnbench data list`)",
       "the cache, filled by `nnbench data fetch`", kind=str, optional=True,
       flags=("--data-path", "--data-path"), stage="source", example="mnist.pkl.gz"),
    _s("data", "data_options", {}, "the dataset's own settings (`nnbench data list`), as "
       "[data.options]", "each dataset's defaults", kind=TABLE, file_key="options",
       stage="source", example={"noise": 0.2}, flags=("--data-option", "--data-option")),
    _s("data", "train", "train", "the split that trains", "the post's",
       choices=SPLITS, kind=str, estimator=None, example="valid"),
    _s("data", "validation", "valid", "the split that scores and selects",
       "the post scored on its 10,000 validation images", choices=SPLITS, kind=str,
       estimator=None, example="train"),
    _s("data", "test", "test", 'the split reported at the end, or "none"',
       "held out from every choice, so its accuracy is honest", kind=TEST_SPLIT,
       optional=True, estimator=None, example="none"),
    _s("data", "dtype", "float64", "precision of the weights and of every computation",
       "numpy's default, the post's", choices=DTYPES, kind=str,
       flags=("--dtype", "--dtype"), stage="model"),
    # -- model -------------------------------------------------------------------------
    _s("model", "hidden", (25,), "hidden layer sizes, e.g. [500, 300]; [] for none",
       "the post's 784-25-10 network", kind=ARCHITECTURE, axis=True,
       flags=("--hidden", "--hidden"), estimator="hidden_layer_sizes", example=(7,)),
    _s("model", "activation", "sigmoid", "hidden activation", "the post's",
       choices=HIDDEN_ACTIVATIONS, kind=str, flags=("--activation", "--activation")),
    _s("model", "output", "sigmoid",
       "output layer: one-vs-all sigmoids with summed cross-entropy, or softmax",
       "the post's", choices=OUTPUTS, kind=str,
       flags=("--output-layer", "--output-layer")),
    _s("model", "l2", 0.0, "L2 penalty l2 / (2 n) * sum(W ** 2), biases excluded",
       "the post had none", low=0.0, kind=float, flags=("--l2", "--l2"), estimator="alpha",
       example=0.001),
    _s("model", "init", "auto", "initial weights: auto picks blog, glorot or he by activation",
       "each activation's standard rule", choices=INIT_SCHEMES, kind=str,
       flags=("--init", "--init"), stage="start", example="glorot"),
    _s("model", "init_perturbation", 0.0,
       "each start weight times (1 + this x a uniform draw in [-1, 1]), from the seed",
       "none: the seed's start weights; `nnbench baseline` measures rounding sensitivity "
       "with a tiny one", low=0.0, high=0.1, kind=float, stage="start", estimator=None,
       example=1e-6),
    # -- the grid ----------------------------------------------------------------------
    _s("grid", "batch_size", 50, 'rows per minibatch, a fraction of them when < 1, or "full"',
       "the post's NN class default", kind=BATCH_SIZE, axis=True,
       flags=("--batch-sizes", "--batch-size"), example=16),
    _s("grid", "seed", 1234, "fixes the start weights and the minibatch order",
       "the post's RandomState(1234)", kind=INT, low=0, high=MAX_SEED, axis=True,
       file_key="seeds", flags=("--seeds", "--seed"), stage="start", estimator="random_state",
       example=7),
    _s("grid", "batch_growth", 1.0, "factor by which the batch grows after every pass",
       "1: fixed batches, as the post ran them", low=1.0, kind=float,
       flags=("--batch-growth", "--batch-growth"), example=1.5),
    # -- the budget: a run stops at whichever comes first ------------------------------
    _s("budget", "max_iter", 100, "minibatch updates", "the post's maxiter", kind=int,
       optional=True, flags=("--max-iter", "--max-iter"), **_POS),
    _s("budget", "max_epochs", None, "passes over the training set", "the post counted updates",
       kind=float, optional=True, flags=("--epochs", "--epochs"), example=0.5, **_POS),
    _s("budget", "max_grad_evals", None, "gradient evaluations (scipy's make several a step)",
       "the post counted updates", kind=int, optional=True,
       flags=("--max-grad-evals", "--max-grad-evals"), example=10, **_POS),
    _s("budget", "max_seconds", None, "training seconds, evaluation excluded",
       "a time budget makes results depend on the machine", kind=float, optional=True,
       flags=("--max-seconds", "--max-seconds"), example=0.001, **_POS),
    _s("budget", "hang_seconds", 600.0,
       "a run that makes no step for this long is stopped and recorded as failed",
       "far beyond any single step on these models", kind=float, scope="control",
       flags=("--hang-seconds", None), example=300.0, **_POS),
    # -- evaluation ---------------------------------------------------------------------
    _s("eval", "points", 20,
       "evaluations over the budget, the last at its end (and one at the start)",
       "enough to place a time to target within 5% of the budget", kind=int, low=1,
       high=MAX_EVAL_POINTS, flags=("--eval-points", "--eval-points"), estimator="eval_points"),
    _s("eval", "spacing", "linear", "how the points are spread: linear, or log for early detail",
       "time to target is read on a linear axis", choices=("linear", "log"), kind=str,
       flags=("--eval-spacing", "--eval-spacing"), estimator="eval_spacing"),
    _s("eval", "every", None, 'instead of points: every N iterations, or "epoch"',
       "points adapt to any budget", kind=EVERY, optional=True,
       flags=("--eval-every", "--eval-every"), estimator="eval_every", example=5),
    _s("eval", "train_rows", 5_000,
       "training-set metrics on a fixed subset of this many rows (all when larger), "
       '"all", or "running": the mean minibatch loss since the previous point, no pass '
       "of its own (scikit-learn's loss_curve_, the estimator's default)",
       "as AlgoPerf does: half the validation set's cost, where all 50,000 MNIST rows "
       "would cost five times it (benchmarks/eval_share.py measures the share)", kind=TRAIN_ROWS,
       flags=("--train-eval-rows", "--train-eval-rows"), estimator=None, example=100),
    _s("eval", "test_curve", False, "the test split at every evaluation point, not only the last",
       "test accuracy is reported at the end; a curve of it would cost a third of evaluation",
       kind=bool, flags=("--test-curve", "--test-curve"), estimator=None),
    _s("eval", "tol", None, "stop when the training cost changes by less between evaluations",
       "a benchmark compares optimizers at equal budgets", kind=float, low=0.0, optional=True,
       flags=("--tol", "--tol"), example=0.5),
    # -- tuning (see nnbench.tune) ---------------------------------------------------------
    _s("tune", "trials", 16, "sampled settings per optimizer, per architecture x batch cell",
       "enough for a tuning curve; Choi et al. 2019 used 30 to 100 on larger problems",
       kind=int, low=1, high=10_000, scope="experiment", flags=("--trials", None)),
    _s("tune", "tune_seed", 0, "draws the trial points; independent of the run seeds",
       "any fixed seed makes the study reproducible", kind=int, low=0, high=MAX_SEED,
       scope="experiment", file_key="seed", flags=("--tune-seed", None)),
    _s("tune", "final_seeds", None, "seeds of the reruns of each optimizer's best trial",
       "five reruns give an interval; required with [tune]", kind=SEED_LIST, optional=True,
       scope="experiment", flags=("--final-seeds", None)),
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


def example(setting: Setting) -> Any:
    """A valid value other than the setting's default: its declared ``example``, else
    the first other choice, the other boolean, or a number the range admits."""
    if setting.example is not None:
        return setting.option.convert(setting.example)
    try:
        return other_value(setting.option)
    except ValueError:
        raise ValueError(f"{setting.where}: declare an example value (a non-default one)") from None


def keys_of(stage: str) -> tuple[str, ...]:
    """The run settings a stage of a run consumes."""
    return tuple(s.key for s in RUN_SETTINGS if s.stage == stage)


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


def check_evaluations(every: Any, max_iter: Any, where: str) -> None:
    """Refuse ``eval every`` over an iteration budget that makes more evaluation
    points than :data:`MAX_EVAL_POINTS`, before any memory is spent (each is a
    row of the run's file, and a pass over the validation set)."""
    if not (isinstance(every, int) and isinstance(max_iter, int)):
        return
    points = -(-max_iter // every)  # the last at max_iter itself
    if points > MAX_EVAL_POINTS:
        raise ConfigError(
            f"{where}: eval every {every} over max_iter {max_iter:,} makes "
            f"{points:,} evaluation points, more than the {MAX_EVAL_POINTS:,} a run "
            "records: evaluate less often (a larger eval every), or give eval points"
        )


def check_size(sizes: Iterable[int], where: str) -> None:
    """Refuse a network whose weights would not fit, before any memory is spent."""
    sizes = list(sizes)
    n_params = n_params_of(sizes)
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
