"""Experiment files (TOML) -> validated experiments -> one spec per run.

An experiment is a grid: architectures x optimizers (x their option grids)
x batch sizes x seeds. The whole file is validated before anything runs, and
every error names the file, the key, the value and what is accepted.
Each run gets a stable id from its full configuration, so a rerun of the same
experiment finds the runs it already finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nnbench import optimizers
from nnbench.data import DATASETS
from nnbench.errors import ConfigError
from nnbench.functions import HIDDEN_ACTIVATIONS, OUTPUTS
from nnbench.mlp import DTYPES, INIT_SCHEMES

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
SPLIT_NAMES = ("train", "valid", "test")

# Bounds that catch typos before they eat a machine: a grid of more runs, or
# a layer of more units, than this is almost certainly a mistake.
MAX_RUNS = 100_000
MAX_UNITS = 100_000
MAX_LAYERS = 50

SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("name", "description", "data", "model", "grid", "budget", "eval", "optimizer"),
    "data": ("dataset", "path", "train", "validation", "test", "dtype"),
    "model": ("hidden", "activation", "output", "l2", "init"),
    "grid": ("batch_size", "seeds", "batch_growth"),
    "budget": ("max_iter", "max_epochs", "max_grad_evals", "max_seconds"),
    "eval": ("every", "tol"),
}


@dataclass(frozen=True)
class OptimizerGrid:
    """One ``[[optimizer]]`` table: a name and options, lists being grids."""

    name: str
    options: dict[str, Any]

    def expand(self) -> list[dict[str, Any]]:
        """Every combination of the listed option values, in file order."""
        keys = list(self.options)
        values = [v if isinstance(v, list) else [v] for v in self.options.values()]
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run. Its id hashes all of it but the experiment name."""

    experiment: str
    dataset: str
    data_path: str | None
    train_split: str
    val_split: str
    test_split: str | None
    dtype: str
    hidden: tuple[int, ...]
    activation: str
    output: str
    l2: float
    init: str
    optimizer: str
    options: dict[str, Any]
    batch_size: float
    batch_growth: float
    seed: int
    max_iter: int | None
    max_epochs: float | None
    max_grad_evals: int | None
    max_seconds: float | None
    eval_every: int | str
    tol: float | None

    @property
    def run_id(self) -> str:
        config = asdict(self)
        del config["experiment"]
        canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """``adam[learning_rate=0.001]``: the optimizer and the options set for it."""
        return optimizers.make(self.optimizer, self.options).label

    @property
    def arch(self) -> str:
        """Hidden sizes as text: ``25``, ``500-300``, ``none``."""
        return "-".join(map(str, self.hidden)) or "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        d = dict(d)
        d["hidden"] = tuple(d["hidden"])
        return cls(**d)


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    data: dict[str, Any]
    model: dict[str, Any]
    grid: dict[str, Any]
    budget: dict[str, Any]
    eval: dict[str, Any]
    optimizers: list[OptimizerGrid] = field(default_factory=list)

    def runs(self) -> list[RunSpec]:
        """One spec per run: architectures x optimizer settings x batch sizes x seeds."""
        settings = [(opt.name, options) for opt in self.optimizers for options in opt.expand()]
        specs = []
        for hidden, (opt_name, options), batch_size, seed in itertools.product(
            self.model["hidden"], settings, self.grid["batch_size"], self.grid["seeds"]
        ):
            specs.append(
                RunSpec(
                    experiment=self.name,
                    dataset=self.data["dataset"],
                    data_path=self.data["path"],
                    train_split=self.data["train"],
                    val_split=self.data["validation"],
                    test_split=self.data["test"],
                    dtype=self.data["dtype"],
                    hidden=tuple(hidden),
                    activation=self.model["activation"],
                    output=self.model["output"],
                    l2=self.model["l2"],
                    init=self.model["init"],
                    optimizer=opt_name,
                    options=options,
                    batch_size=batch_size,
                    batch_growth=self.grid["batch_growth"],
                    seed=seed,
                    eval_every=self.eval["every"],
                    tol=self.eval["tol"],
                    **self.budget,
                )
            )
        return specs

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["optimizers"] = [asdict(o) for o in self.optimizers]
        return d


# -- validation ----------------------------------------------------------------------


class _Checker:
    """Reads one experiment mapping, raising ConfigError with the file and key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def table(self, raw: Mapping[str, Any], section: str) -> dict[str, Any]:
        value = raw.get(section, {}) if section else raw
        where = f"[{section}]" if section else "top level"
        if not isinstance(value, Mapping):
            raise self.fail(section, f"must be a table ([{section}]), got {type(value).__name__}")
        unknown = sorted(set(value) - set(SECTIONS[section]))
        if unknown:
            raise self.fail(
                where,
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"accepted: {', '.join(SECTIONS[section])}",
            )
        return dict(value)

    def number(
        self,
        where: str,
        value: Any,
        *,
        integer: bool = False,
        low: float = 0.0,
        low_open: bool = True,
        high: float | None = None,
    ) -> Any:
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        ok = ok_type and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low)
        ok = ok and (high is None or value <= high)
        if not ok:
            kind = "an integer" if integer else "a number"
            bound = f"{'>' if low_open else '>='} {low:g}" + (
                f" and <= {high:g}" if high is not None else ""
            )
            raise self.fail(where, f"must be {kind} {bound}; got {value!r}")
        return value

    def choice(self, where: str, value: Any, choices: tuple[str, ...]) -> str:
        if value not in choices:
            raise self.fail(where, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def nonempty_list(self, where: str, value: Any) -> list[Any]:
        if not isinstance(value, list):
            value = [value]
        if not value:
            raise self.fail(where, "is an empty list: the grid would have no runs")
        return value


def validate(raw: Mapping[str, Any], source: str = "experiment") -> Experiment:
    """A checked :class:`Experiment` from a parsed TOML mapping."""
    c = _Checker(source)
    top = c.table(raw, "")

    name = top.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise c.fail(
            "name",
            "must be set to a word of letters, digits, '.', '_' or '-' (it names the "
            f"results folder, so no '/' and no leading '.'); got {name!r}",
        )
    description = top.get("description", "")
    if not isinstance(description, str):
        raise c.fail("description", "must be a string")

    d = c.table(top, "data")
    data = {
        "dataset": c.choice("[data] dataset", d.get("dataset", "mnist"), DATASETS),
        "path": d.get("path"),
        "train": c.choice("[data] train", d.get("train", "train"), SPLIT_NAMES),
        "validation": c.choice("[data] validation", d.get("validation", "valid"), SPLIT_NAMES),
        "test": d.get("test", "test"),
        "dtype": c.choice("[data] dtype", d.get("dtype", "float64"), DTYPES),
    }
    if data["test"] in ("", "none", False):
        data["test"] = None
    elif data["test"] is not None:
        c.choice("[data] test", data["test"], (*SPLIT_NAMES, "none"))
    if data["path"] is not None:
        if not isinstance(data["path"], str) or not data["path"]:
            raise c.fail("[data] path", "must be a path to mnist.pkl.gz or a folder of IDX files")
        if data["dataset"] != "mnist":
            raise c.fail("[data] path", 'is only for dataset = "mnist"')
    used = [s for s in (data["train"], data["validation"], data["test"]) if s]
    if len(set(used)) != len(used):
        raise c.fail("[data]", f"train, validation and test must be different splits; got {used}")

    m = c.table(top, "model")
    hidden_raw = m.get("hidden", [[25]])
    if not isinstance(hidden_raw, list) or not hidden_raw:
        raise c.fail(
            "[model] hidden", "must be a non-empty list of architectures, e.g. [[25], [500, 300]]"
        )
    hidden = []
    for arch in hidden_raw:
        if not isinstance(arch, list) or len(arch) > MAX_LAYERS:
            raise c.fail(
                "[model] hidden",
                "must be a list of architectures, each a list of "
                f"at most {MAX_LAYERS} layer sizes, e.g. [[25], [500, 300]]; "
                f"got {arch!r} in it",
            )
        hidden.append(
            [
                c.number("[model] hidden", u, integer=True, low=1, low_open=False, high=MAX_UNITS)
                for u in arch
            ]
        )
    model = {
        "hidden": hidden,
        "activation": c.choice(
            "[model] activation", m.get("activation", "sigmoid"), HIDDEN_ACTIVATIONS
        ),
        "output": c.choice("[model] output", m.get("output", "sigmoid"), OUTPUTS),
        "l2": c.number("[model] l2", m.get("l2", 0.0), low=0.0, low_open=False),
        "init": c.choice("[model] init", m.get("init", "auto"), INIT_SCHEMES),
    }

    g = c.table(top, "grid")
    batch_sizes = c.nonempty_list("[grid] batch_size", g.get("batch_size", [50]))
    for bs in batch_sizes:
        c.number("[grid] batch_size", bs)
        if bs >= 1 and bs != int(bs):
            raise c.fail("[grid] batch_size", f"a size >= 1 must be a whole count; got {bs}")
    seeds = c.nonempty_list("[grid] seeds", g.get("seeds", [0]))
    for s in seeds:
        c.number("[grid] seeds", s, integer=True, low=0, low_open=False, high=2**63 - 1)
    if len(set(seeds)) != len(seeds):
        raise c.fail("[grid] seeds", f"lists a seed twice: {seeds}")
    grid = {
        "batch_size": batch_sizes,
        "seeds": seeds,
        "batch_growth": c.number(
            "[grid] batch_growth", g.get("batch_growth", 1.0), low=1.0, low_open=False
        ),
    }

    b = c.table(top, "budget")
    budget = {
        "max_iter": b.get("max_iter"),
        "max_epochs": b.get("max_epochs"),
        "max_grad_evals": b.get("max_grad_evals"),
        "max_seconds": b.get("max_seconds"),
    }
    if all(v is None for v in budget.values()):
        raise c.fail(
            "[budget]", "needs at least one of max_iter, max_epochs, max_grad_evals, max_seconds"
        )
    for key, integer in (
        ("max_iter", True),
        ("max_epochs", False),
        ("max_grad_evals", True),
        ("max_seconds", False),
    ):
        if budget[key] is not None:
            c.number(f"[budget] {key}", budget[key], integer=integer)

    e = c.table(top, "eval")
    every = e.get("every", "epoch")
    if every != "epoch":
        c.number("[eval] every", every, integer=True, low=1, low_open=False)
    tol = e.get("tol")
    if tol is not None:
        c.number("[eval] tol", tol, low=0.0, low_open=False)
    evaluation = {"every": every, "tol": tol}

    raw_opts = top.get("optimizer")
    if raw_opts is None:
        raise c.fail(
            "[[optimizer]]",
            "no optimizer given; add at least one [[optimizer]] table "
            "with a name (see `nnbench list`)",
        )
    if not isinstance(raw_opts, list) or not all(isinstance(o, Mapping) for o in raw_opts):
        raise c.fail("optimizer", "must be an array of tables: [[optimizer]] with name = ...")
    opts = []
    for i, table in enumerate(raw_opts, 1):
        where = f"[[optimizer]] #{i}"
        table = dict(table)
        opt_name = table.pop("name", None)
        if not isinstance(opt_name, str):
            raise c.fail(where, 'needs name = "..." (see `nnbench list`)')
        try:
            optimizers.get(opt_name)
        except ConfigError as exc:
            raise c.fail(where, str(exc)) from None
        for key, value in table.items():
            if isinstance(value, list) and not value:
                raise c.fail(f"{where} {key}", "is an empty list: the grid would have no runs")
        grid_opt = OptimizerGrid(opt_name, table)
        for combo in grid_opt.expand():  # every combination must be valid
            try:
                optimizers.make(opt_name, combo)
            except ConfigError as exc:
                raise c.fail(where, str(exc)) from None
        opts.append(grid_opt)

    experiment = Experiment(name, description, data, model, grid, budget, evaluation, opts)
    n_runs = len(hidden) * len(batch_sizes) * len(seeds) * sum(len(o.expand()) for o in opts)
    if n_runs > MAX_RUNS:
        raise c.fail(
            "grid", f"has {n_runs:,} runs, more than the {MAX_RUNS:,} allowed; shrink the lists"
        )
    ids = [s.run_id for s in experiment.runs()]
    if len(set(ids)) != len(ids):
        raise c.fail("grid", "defines the same run twice (repeated values in a list?)")
    return experiment


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw mapping of an experiment file; syntax errors name the line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_experiment(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Read, override (``{"grid.seeds": [1, 2]}``-style keys) and validate a file."""
    raw = read_toml(path)
    return validate(apply_overrides(raw, overrides or {}), str(path))


def apply_overrides(raw: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted keys replaced: ``budget.max_epochs``, ``optimizer``."""
    out = json.loads(json.dumps(raw, default=str))  # a deep copy of plain TOML values
    given = {k: v for k, v in overrides.items() if v is not None}
    if any(k.startswith("budget.") for k in given):
        out["budget"] = {}  # budget flags replace the file's whole budget
    for dotted, value in given.items():
        *path, key = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot override {dotted}: {part} is not a table")
        node[key] = value
    return out
