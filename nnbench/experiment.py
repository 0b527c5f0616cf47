"""Experiment files (TOML) -> validated experiments -> one spec per run.

An experiment is a grid: architectures x optimizers (x their option grids)
x batch sizes x seeds. The whole file is checked against the schema
(:mod:`nnbench.settings`) before anything runs, and every error names the
file, the key, the value and what is accepted. Values are canonicalised as
they are checked, and a run's id hashes the canonical values that differ
from the schema's defaults: ``1`` and ``1.0`` make the same run, and a
setting added later with a default changes no existing id.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nnbench import optimizers, settings
from nnbench.errors import ConfigError
from nnbench.fileio import is_regular_file
from nnbench.optimizers.base import make_label
from nnbench.options import Option
from nnbench.settings import BY_KEY, SECTIONS
from nnbench.space import Space, space_from_table

# Version of the run spec as stored in a run file. 0: the flat spec of nnbench
# 0.1, before the schema (still read, see RunSpec.from_dict).
SPEC_FORMAT = 1
# What the old flat spec called some settings.
_V0_NAMES = {
    "data_path": "path",
    "train_split": "train",
    "val_split": "validation",
    "test_split": "test",
    "eval_every": "every",
}


def _hash(payload: Mapping[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RunSpec:
    """Everything that defines one run, canonical.

    ``values`` holds every run setting of the schema (defaults filled in);
    they read as attributes: ``spec.batch_size``. ``options`` holds the
    optimizer's options that differ from their defaults. ``phase`` is
    ``grid`` for a plain grid, ``trial`` or ``final`` under a tuning protocol,
    where ``trial`` numbers the sampled setting.
    """

    experiment: str
    optimizer: str
    options: Mapping[str, Any]
    values: Mapping[str, Any]
    phase: str = "grid"
    trial: int | None = None

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"RunSpec has no attribute {name!r}")

    def identity(self, with_seed: bool = True) -> dict[str, Any]:
        """What a run's id hashes: the optimizer, its options and the run settings
        that differ from their defaults (the experiment's name is not part of it)."""
        payload: dict[str, Any] = {
            "optimizer": self.optimizer,
            "options": dict(self.options),
            **settings.identity_values(self.values),
        }
        if not with_seed:
            payload.pop("seed", None)
            payload["seed"] = "*"
        if self.phase != "grid":
            payload["phase"] = self.phase
        if self.trial is not None:
            payload["trial"] = self.trial
        return payload

    @property
    def run_id(self) -> str:
        return _hash(self.identity())

    @property
    def config_id(self) -> str:
        """The id of the run's configuration, all seeds together."""
        return _hash(self.identity(with_seed=False))

    @property
    def label(self) -> str:
        """``adam[learning_rate=0.01]``: the optimizer and its non-default options."""
        return make_label(self.optimizer, self.options)

    @property
    def arch(self) -> str:
        """Hidden sizes as text: ``25``, ``500-300``, ``none``."""
        return "-".join(map(str, self.hidden)) or "none"

    @property
    def workload(self) -> str:
        """The run's dataset with its non-default options: ``mnist1d[seed=1]``."""
        return workload_name(self.dataset, self.data_options)

    def to_dict(self) -> dict[str, Any]:
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in self.values.items()}
        return {
            "format": SPEC_FORMAT,
            "experiment": self.experiment,
            "optimizer": self.optimizer,
            "options": dict(self.options),
            "values": values,
            "phase": self.phase,
            "trial": self.trial,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSpec:
        """A spec as stored in a run file, of this format or an older one.

        Settings the file does not name take their defaults; names this
        version does not know are dropped (they came from a newer nnbench, or
        went out of use); the identity is recomputed from what remains.
        """
        if d.get("format") == SPEC_FORMAT:
            values, options = dict(d["values"]), dict(d.get("options") or {})
        else:  # format 0: one flat mapping
            values = {_V0_NAMES.get(k, k): v for k, v in d.items()}
            # format 0 evaluated every training row, and the test split at every point
            values.setdefault("train_rows", "all")
            values.setdefault("test_curve", True)
            options = _canonical_options(d.get("optimizer", ""), d.get("options") or {})
        filled = {}
        for setting in settings.RUN_SETTINGS:
            value = values.get(setting.key, setting.default)
            if value is not None or not setting.option.optional:
                try:
                    value = setting.option.convert(value)
                except ValueError:
                    value = setting.default
            filled[setting.key] = value
        trial = d.get("trial")
        if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int)):
            # a number in every file nnbench writes: anything else breaks its column
            raise ValueError(f"its spec's trial is {type(trial).__name__}, not a number")
        return cls(
            experiment=str(d.get("experiment", "")),
            optimizer=str(d.get("optimizer", "")),
            options=options,
            values=filled,
            phase=str(d.get("phase") or "grid"),
            trial=trial,
        )


def _canonical_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options that differ from their defaults, canonical (as given, when the
    optimizer is not installed here)."""
    try:
        return dict(optimizers.make(name, dict(options)).given)
    except ConfigError:
        return dict(options)


def workload_name(dataset: str, data_options: Mapping[str, Any] | str | None) -> str:
    """A workload's name: its dataset, and the dataset options that differ from
    their defaults as an optimizer's label shows its own (``digits``,
    ``synthetic[noise=0.2]``). ``data_options`` may be a run file's JSON text."""
    if isinstance(data_options, str):
        try:
            data_options = json.loads(data_options or "{}")
        except ValueError:
            data_options = {}
    return make_label(str(dataset), dict(data_options or {}))


@dataclass(frozen=True)
class Workload:
    """One problem of a study: a dataset with the run settings that go with it
    (``values``), its networks and batch sizes, and its target (None: the
    report's rule). A file's ``[[workload]]`` tables make one each; a file
    without them is one workload, its top level."""

    values: dict[str, Any]
    hidden: list[Any]
    batch_size: list[Any]
    target: float | None = None

    @property
    def name(self) -> str:
        return workload_name(self.values["dataset"], self.values["data_options"])

    def cells(self) -> list[tuple[Workload, Any, Any]]:
        return [(self, h, b) for h in self.hidden for b in self.batch_size]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "values": _plain(self.values),
            "hidden": _plain(self.hidden),
            "batch_size": _plain(self.batch_size),
            "target": self.target,
        }


@dataclass(frozen=True)
class OptimizerGrid:
    """One ``[[optimizer]]`` table: a name and, per option, its canonical values
    (a list is a grid) or, under ``[tune]``, a search space."""

    name: str
    options: dict[str, list[Any]]
    spaces: dict[str, Any] = field(default_factory=dict)

    @property
    def n_settings(self) -> int:
        return math.prod(len(v) for v in self.options.values())

    def expand(self) -> list[dict[str, Any]]:
        """Every combination of the listed option values, in file order."""
        keys = list(self.options)
        return [dict(zip(keys, combo)) for combo in itertools.product(*self.options.values())]


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file.

    ``values``: every run setting with one value; ``axes``: the grid's lists
    (``hidden``, ``batch_size``, ``seed``); ``tune``: the tuning protocol's
    settings, or None for a plain grid. ``workloads``: the problems it runs,
    each with its own values, networks and batch sizes (the seeds are the
    study's); a file without ``[[workload]]`` tables has one, its top level,
    and with them the top level holds only what they share.
    """

    name: str
    description: str
    values: dict[str, Any]
    axes: dict[str, list[Any]]
    optimizers: list[OptimizerGrid] = field(default_factory=list)
    tune: dict[str, Any] | None = None
    workloads: tuple[Workload, ...] = ()

    def __post_init__(self) -> None:
        if not self.workloads:
            one = Workload(self.values, self.axes["hidden"], self.axes["batch_size"])
            object.__setattr__(self, "workloads", (one,))

    def cells(self) -> list[tuple[Workload, Any, Any]]:
        """Every problem of the grid: (workload, network, batch size)."""
        return [cell for w in self.workloads for cell in w.cells()]

    def workload(self, name: str) -> Workload:
        return next(w for w in self.workloads if w.name == name)

    @property
    def n_runs(self) -> int:
        """The number of runs of the grid, computed without building them."""
        if self.tune is not None:
            return _tuned_runs(self)
        cells = len(self.cells()) * len(self.axes["seed"])
        return cells * sum(o.n_settings for o in self.optimizers)

    def spec(
        self,
        optimizer: str,
        options: Mapping[str, Any],
        phase: str = "grid",
        trial: int | None = None,
        workload: Workload | None = None,
        **axes: Any,
    ) -> RunSpec:
        """One run of this experiment: an optimizer setting at one point of the axes,
        in ``workload`` (by default the first)."""
        workload = workload or self.workloads[0]
        return RunSpec(
            experiment=self.name,
            optimizer=optimizer,
            options=_canonical_options(optimizer, options),
            values={**workload.values, **axes},
            phase=phase,
            trial=trial,
        )

    def runs(self) -> list[RunSpec]:
        """One spec per run: architectures x optimizer settings x batch sizes x seeds.

        Under ``[tune]``, the trials: the finals depend on their results (they
        rerun the best trial), and :mod:`nnbench.tune` makes them.
        """
        if self.tune is not None:
            return trial_runs(self)
        specs = []
        for w in self.workloads:
            for hidden, opt, batch_size, seed in itertools.product(
                w.hidden, self.optimizers, w.batch_size, self.axes["seed"]
            ):
                for options in opt.expand():
                    specs.append(
                        self.spec(
                            opt.name,
                            options,
                            workload=w,
                            hidden=hidden,
                            batch_size=batch_size,
                            seed=seed,
                        )
                    )
        return specs

    def _spaces(self, opt: OptimizerGrid) -> dict[str, Any]:
        """The spaces an optimizer is searched over: under [tune], its defaults too."""
        if self.tune is None:
            return opt.spaces
        return spaces_of(opt)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "values": _plain(self.values),
            "axes": _plain(self.axes),
            "optimizers": [
                {"name": o.name, "options": _plain(o.options), "spaces": _plain(self._spaces(o))}
                for o in self.optimizers
            ],
            "tune": _plain(self.tune),
            "workloads": [w.to_dict() for w in self.workloads],
        }


def _plain(value: Any) -> Any:
    """Tuples as lists, search spaces as their tables: what JSON holds."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "to_table"):
        return value.to_table()
    return value


# -- the tuning protocol's trials (nnbench.tune chooses and reruns) -----------------

EDGE_FRACTION = 0.1  # a choice in the outer tenth of its space is at an edge


def parse_space(
    table: Mapping[str, Any], option: Option, where: str, fail: Callable[[str, str], Exception]
) -> Space:
    """A search space from its table in an experiment file, its bounds checked
    against the option (a learning rate's space cannot include 0)."""
    try:
        space = space_from_table(dict(table))
    except ValueError as exc:
        raise fail(where, str(exc)) from None
    if hasattr(space, "values"):
        canonical = []
        for value in space.values:
            try:
                canonical.append(option.convert(value))
            except ValueError as exc:
                raise fail(where, f"the choice {value!r} is not taken: it takes {exc}") from None
        if len(set(map(repr, canonical))) < len(canonical):
            raise fail(where, f"the choice names one value twice ({list(space.values)!r}); "
                       "give each once")  # fmt: skip
        return space
    # the values trials take, rounded as they are: both ends must be the option's
    ends = [space.round(space.value(u)) for u in (0.0, 1.0 - 1e-12)]
    for bound in ends:
        try:
            option.convert(bound)
        except ValueError as exc:
            raise fail(
                where, f"the space reaches {bound!r} (rounded as trials are), but the option "
                f"takes {exc}"
            ) from None  # fmt: skip
    if ends[0] == ends[1]:
        raise fail(
            where, f"the space's trials would all be {ends[0]!r} (to {4} significant digits): "
            "widen it, or give the value instead"
        )  # fmt: skip
    return space


def spaces_of(opt: Any) -> dict[str, Space]:
    """The searched options of an ``[[optimizer]]`` table: its own spaces, and the
    default spaces of the options it leaves unset."""
    cls = optimizers.get(opt.name)
    spaces = {
        key: o.search
        for key, o in cls.options.items()
        if o.search is not None and key not in opt.options
    }
    spaces.update(opt.spaces)
    return dict(sorted(spaces.items()))


def trial_points(opt: Any, n_trials: int, seed: int) -> list[dict[str, Any]]:
    """The trials' options of one optimizer: fixed values plus sampled ones.

    One trial when nothing is searched. The points are a scrambled Halton
    sequence seeded by ``seed`` and the optimizer's name, so adding an
    optimizer to a study does not move another's trials.
    """
    from scipy.stats import qmc

    fixed = {k: v[0] for k, v in opt.options.items()}
    spaces = spaces_of(opt)
    if not spaces:
        return [fixed]
    stream = np.random.SeedSequence([seed, zlib.crc32(opt.name.encode())])
    sampler = qmc.Halton(d=len(spaces), scramble=True, seed=np.random.default_rng(stream))
    points = sampler.random(n_trials)
    cls = optimizers.get(opt.name)
    trials = []
    for u in points:
        options = dict(fixed)
        for (key, space), ui in zip(spaces.items(), u):
            options[key] = cls.options[key].convert(space.round(space.value(float(ui))))
        trials.append(options)
    return trials


def _tuned_runs(experiment: Any) -> int:
    """Trials and finals of every optimizer in every cell, counted without building them."""
    t = experiment.tune
    per_cell = 0
    for opt in experiment.optimizers:
        n_trials = t["trials"] if spaces_of(opt) else 0  # nothing to search: no trials
        per_cell += n_trials * len(experiment.axes["seed"]) + len(t["final_seeds"])
    return per_cell * len(experiment.cells())


def _validate_tuning(experiment: Any, fail: Callable[[str, str], Exception]) -> None:
    """What a tuned experiment may not hold: option grids (a search space replaces them)."""
    for i, opt in enumerate(experiment.optimizers, 1):
        for key, values in opt.options.items():
            if len(values) > 1:
                raise fail(
                    f"[[optimizer]] #{i} {key}",
                    "is a list: under [tune], give one value or a search space "
                    "such as { log_uniform = [1e-5, 1e-1] }",
                )


def trial_runs(experiment: Any) -> list[Any]:
    """Every trial run: cells x optimizers x trials x grid seeds. An optimizer with
    nothing to search has no trials: its one setting goes straight to the finals."""
    t = experiment.tune
    specs = []
    for opt in experiment.optimizers:
        if not spaces_of(opt):
            continue
        for trial, options in enumerate(trial_points(opt, t["trials"], t["tune_seed"])):
            for workload, hidden, batch in experiment.cells():
                for seed in experiment.axes["seed"]:
                    specs.append(
                        experiment.spec(
                            opt.name,
                            options,
                            "trial",
                            trial,
                            workload,
                            hidden=hidden,
                            batch_size=batch,
                            seed=seed,
                        )
                    )
    return specs


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
            raise self.fail(where, f"must be a table ([{section}]), got {type(value).__name__}")
        accepted = settings.section_keys(section)
        if not section:
            accepted = (*accepted, *(s for s in SECTIONS if s), "optimizer", "workload")
        unknown = sorted(map(str, set(value) - set(accepted)))
        if unknown:
            raise self.fail(
                where,
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"accepted: {', '.join(accepted)}",
            )
        return dict(value)

    def values(self, setting: settings.Setting, raw: Any) -> list[Any]:
        """An axis setting's canonical list, with no value twice."""
        if setting.key == "hidden" and not (
            isinstance(raw, list) and raw and all(isinstance(a, list) for a in raw)
        ):
            raise self.fail(
                setting.where,
                "must be a non-empty list of architectures, each a list of layer "
                f"sizes, e.g. [[25], [500, 300]]; got {raw!r}",
            )
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise self.fail(setting.where, "is an empty list: the grid would have no runs")
        out = [setting.convert(item, self.source) for item in items]
        self.no_repeats(setting.where, items, out)
        return out

    def no_repeats(self, where: str, given: list[Any], canonical: list[Any]) -> None:
        seen: dict[Any, Any] = {}
        for raw, value in zip(given, canonical):
            if value in seen:
                same = f" ({seen[value]!r} and {raw!r} are the same)" if seen[value] != raw else ""
                raise self.fail(where, f"lists {value!r} twice{same}: remove one")
            seen[value] = raw


def validate(raw: Mapping[str, Any], source: str = "experiment") -> Experiment:
    """A checked :class:`Experiment` from a parsed TOML mapping."""
    c = _Checker(source)
    top = c.table(raw, "")
    if "name" not in top:
        raise c.fail("name", f"must be set to {settings.NAME.name}")
    sections = {s: c.table(top, s) for s in SECTIONS if s}
    sections[""] = top

    experiment = {
        s.key: s.convert(top.get(s.in_file, s.default), source)
        for s in settings.SCHEMA
        if s.scope == "experiment" and s.section == ""
    }
    values, axes = _run_settings(c, sections)
    workloads = _workloads(c, top) if "workload" in top else ()

    tune_cfg = _tune_section(c, sections["tune"], axes["seed"]) if "tune" in top else None
    opts = _optimizers(c, top, tuning=tune_cfg is not None)

    exp = Experiment(
        experiment["name"], experiment["description"], values, axes, opts, tune_cfg, workloads
    )
    n_runs = exp.n_runs  # counted, never built, before the limit is checked
    if n_runs > settings.MAX_RUNS:
        raise c.fail(
            "grid",
            f"has {n_runs:,} runs, more than the {settings.MAX_RUNS:,} allowed; shrink the lists",
        )
    if tune_cfg is not None:
        _validate_tuning(exp, c.fail)
    _check_repeats(c, exp)
    return exp


def _run_settings(
    c: _Checker, sections: Mapping[str, Mapping[str, Any]]
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The run settings of the file's sections: one value each, or an axis's list."""
    values: dict[str, Any] = {}
    axes: dict[str, list[Any]] = {}
    for setting in settings.SCHEMA:
        if setting.section in ("budget", "tune") or setting.scope == "experiment":
            continue  # below: the budget is one rule over its keys, tune is optional
        given = sections[setting.section]
        if setting.axis:
            if setting.in_file in given:
                axes[setting.key] = c.values(setting, given[setting.in_file])
            else:
                axes[setting.key] = [setting.default]
            continue
        values[setting.key] = setting.convert(given.get(setting.in_file, setting.default), c.source)

    budget = {
        s.key: s.convert(sections["budget"][s.in_file], c.source)
        for s in SECTIONS["budget"]
        if s.in_file in sections["budget"]
    }
    values.update(settings.resolve_budget(budget))
    values["hang_seconds"] = budget.get("hang_seconds", BY_KEY["hang_seconds"].default)
    settings.check_evaluations(values["every"], values["max_iter"], f"{c.source}: [eval] every")
    _check_data(c, values, axes, c.source)
    return values, axes


# What a [[workload]] table may set: the sections of its problem, and its target.
WORKLOAD_SECTIONS = ("data", "model", "grid", "budget", "eval")
TARGET = Option(
    None, "the validation accuracy its cells' times to target are measured at",
    low=0.0, low_open=True, high=1.0, kind=float, optional=True,
)  # fmt: skip


def _workloads(c: _Checker, top: Mapping[str, Any]) -> tuple[Workload, ...]:
    """The ``[[workload]]`` tables, each the top level's sections with its own
    laid over them: a section's keys replace the top level's one by one, but a
    ``[budget]`` replaces the whole budget and ``[data] options`` the whole
    options table (they belong to one dataset). The seeds are the study's."""
    tables = top["workload"]
    if not (isinstance(tables, list) and tables and all(isinstance(t, Mapping) for t in tables)):
        raise c.fail(
            "workload",
            "must be an array of tables: [[workload]] with [workload.data] dataset = ...",
        )
    out: list[Workload] = []
    for i, table in enumerate(tables, 1):
        where = f"[[workload]] #{i}"
        unknown = sorted(map(str, set(table) - {*WORKLOAD_SECTIONS, "target"}))
        if unknown:
            raise c.fail(
                where,
                f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"accepted: {', '.join((*WORKLOAD_SECTIONS, 'target'))}",
            )
        inner = _Checker(f"{c.source}: {where}")
        own = {s: inner.table(table, s) for s in WORKLOAD_SECTIONS}
        if "seeds" in own["grid"]:
            raise inner.fail(
                "[grid] seeds", "is the study's: give it at the top level, once for every workload"
            )
        sections = {s: dict(c.table(top, s)) for s in SECTIONS if s}
        sections[""] = top
        for section, keys in own.items():
            if section == "budget" and keys:
                sections["budget"] = {**_kept_of_budget(sections["budget"]), **keys}
                continue
            if section == "data" and "dataset" in keys and "options" not in keys:
                sections["data"].pop("options", None)  # another dataset's options
            sections[section].update(keys)
        values, axes = _run_settings(inner, sections)
        try:
            target = TARGET.convert(table.get("target"))
        except ValueError as exc:
            raise inner.fail("target", f"must be {exc}; got {table.get('target')!r}") from None
        workload = Workload(values, axes["hidden"], axes["batch_size"], target)
        if any(w.name == workload.name for w in out):
            raise inner.fail(
                "[data]", f"names the workload {workload.name} again: give each dataset one "
                "[[workload]] table, with all its networks and batch sizes",
            )  # fmt: skip
        out.append(workload)
    return tuple(out)


def _tune_section(
    c: _Checker, section: Mapping[str, Any], trial_seeds: list[int]
) -> dict[str, Any]:
    """The checked ``[tune]`` table: its finals run on seeds the trials never used."""
    tune_cfg = {
        s.key: s.convert(section.get(s.in_file, s.default), c.source) for s in SECTIONS["tune"]
    }
    if tune_cfg["final_seeds"] is None:
        raise c.fail("[tune] final_seeds", "must be set: the seeds that rerun the best trial")
    seen = sorted(set(tune_cfg["final_seeds"]) & set(trial_seeds))
    if seen:
        raise c.fail(
            "[tune] final_seeds",
            f"shares seeds {', '.join(map(str, seen))} with [grid] seeds, the trials' seeds: "
            "the finals must run on seeds the choice never saw",
        )
    return tune_cfg


def _check_repeats(c: _Checker, exp: Experiment) -> None:
    """No run twice: two ``[[optimizer]]`` tables (or a default spelled out beside
    it left unset) that name one setting would count its seeds twice; under
    ``[tune]``, where choices are per optimizer, a name may appear once."""
    first: dict[str, int] = {}
    first_workload = exp.workloads[0]
    hidden, batch = first_workload.hidden[0], first_workload.batch_size[0]
    seed = exp.axes["seed"][0]
    for i, opt in enumerate(exp.optimizers, 1):
        if exp.tune is not None:
            if opt.name in first:
                raise c.fail(
                    f"[[optimizer]] #{i}",
                    f"tunes {opt.name} again (as #{first[opt.name]} does); under [tune] each "
                    "optimizer is tuned once: give one table per name",
                )
            first[opt.name] = i
            continue
        for options in opt.expand():
            spec = exp.spec(
                opt.name, options, workload=first_workload, hidden=hidden, batch_size=batch,
                seed=seed,
            )  # fmt: skip
            if spec.config_id in first:
                raise c.fail(
                    f"[[optimizer]] #{i}",
                    f"repeats the setting {spec.label} (of [[optimizer]] #{first[spec.config_id]}):"
                    " its runs would count twice; give each setting once",
                )
            first[spec.config_id] = i


def _check_data(
    c: _Checker, values: Mapping[str, Any], axes: Mapping[str, list], source: str
) -> None:
    """What the settings of [data] and [model] must agree on."""
    data = {k: values[k] for k in ("train", "validation", "test")}
    used = [s for s in data.values() if s]
    if len(set(used)) != len(used):
        raise c.fail("[data]", f"train, validation and test must be different splits; got {used}")
    if values["path"] == "":
        raise c.fail("[data] path", "must name the file or folder the dataset reads")
    from nnbench import data as data_mod

    info = data_mod.get(values["dataset"])
    if values["path"] is not None and not info.takes_path:
        raise c.fail("[data] path", f"is not taken by dataset {values['dataset']!r}")
    try:  # canonical, the defaults left out: what identity hashes
        values["data_options"] = info.given(values["data_options"])
    except ConfigError as exc:
        raise c.fail("[data.options]", str(exc)) from None
    shape = info.shape_of(values["data_options"])
    if shape is not None:
        for arch in axes["hidden"]:
            settings.check_size((shape[0], *arch, shape[1]), f"{source}: [model] hidden")


def _optimizers(c: _Checker, top: Mapping[str, Any], tuning: bool) -> list[OptimizerGrid]:
    raw_opts = top.get("optimizer")
    if raw_opts is None:
        raise c.fail(
            "[[optimizer]]",
            "no optimizer given; add at least one [[optimizer]] table "
            "with a name (see `nnbench list`)",
        )
    if not isinstance(raw_opts, list) or not all(isinstance(o, Mapping) for o in raw_opts):
        raise c.fail("optimizer", "must be an array of tables: [[optimizer]] with name = ...")
    out = []
    for i, table in enumerate(raw_opts, 1):
        where = f"[[optimizer]] #{i}"
        table = dict(table)
        name = table.pop("name", None)
        if not isinstance(name, str):
            raise c.fail(where, 'needs name = "..." (see `nnbench list`)')
        try:
            cls = optimizers.get(name)
        except ConfigError as exc:
            raise c.fail(where, str(exc)) from None
        unknown = sorted(map(str, set(table) - set(cls.options)))
        if unknown:
            raise c.fail(
                where,
                f"{name}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                f"it accepts {', '.join(cls.options) or 'no options'}",
            )
        grid: dict[str, list[Any]] = {}
        spaces: dict[str, Any] = {}
        for key, value in table.items():
            if isinstance(value, Mapping):
                if not tuning:
                    raise c.fail(
                        f"{where} {key}",
                        "a search space needs a [tune] section (a list is a grid)",
                    )
                spaces[key] = parse_space(value, cls.options[key], f"{where} {key}", c.fail)
                continue
            items = value if isinstance(value, list) else [value]
            if not items:
                raise c.fail(f"{where} {key}", "is an empty list: the grid would have no runs")
            canonical = []
            for item in items:
                try:
                    canonical.append(cls.options[key].convert(item))
                except ValueError as exc:
                    raise c.fail(
                        where,
                        f"{name}: option {key}={item!r} is invalid; it takes {exc} "
                        f"(default {cls.options[key].default!r})",
                    ) from None
            c.no_repeats(f"{where} {key}", items, canonical)
            grid[key] = canonical
        out.append(OptimizerGrid(name, grid, spaces))
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """The raw mapping of an experiment file; syntax errors name the line."""
    path = Path(path)
    if path.exists() and not path.is_dir() and not is_regular_file(path):
        raise ConfigError(f"{path}: not a regular file; give an experiment file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such experiment file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not an experiment file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be an experiment file") from None


def load_experiment(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Experiment:
    """Read, override (``{"grid.seeds": [1, 2]}``-style keys) and validate a file."""
    raw = read_toml(path)
    return validate(apply_overrides(raw, overrides or {}), str(path))


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted keys replaced: ``budget.max_epochs``, ``optimizer``.

    Budget keys replace the file's whole budget: ``--epochs 3`` means three
    epochs, not three epochs or the file's 100 iterations. In a file with
    ``[[workload]]`` tables an override reaches every workload: a workload's own
    value of that key (its budget, for a budget key) gives way to it.
    """
    out = _copy(raw)
    given = {k: v for k, v in overrides.items() if v is not None}
    if any(k.startswith("budget.") and k != "budget.hang_seconds" for k in given):
        out["budget"] = _kept_of_budget(out.get("budget"))
    for dotted, value in given.items():
        *path, key = dotted.split(".")
        node = out
        for part in path:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"cannot override {dotted}: {part} is not a table")
        node[key] = value
    _give_way(out.get("workload"), given)
    return out


def _kept_of_budget(budget: Any) -> dict[str, Any]:
    """What of a budget table another budget keeps: its hang_seconds (how long a
    silent run may take, not a limit on the run); the limits go whole."""
    hang = budget.get("hang_seconds") if isinstance(budget, Mapping) else None
    return {} if hang is None else {"hang_seconds": hang}


def _give_way(workloads: Any, overrides: Mapping[str, Any]) -> None:
    """Each workload's own values of the overridden keys, dropped: it takes the
    top level's, where the override now is."""
    if not isinstance(workloads, list):
        return
    for table in workloads:
        if not isinstance(table, dict):
            continue  # validation says what is wrong with it
        for dotted in overrides:
            section, _, key = dotted.partition(".")
            own = table.get(section)
            if not isinstance(own, dict):
                continue
            if section == "budget" and key != "hang_seconds":
                table.pop("budget")
            else:
                own.pop(key.split(".")[0], None)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
