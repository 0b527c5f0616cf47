"""The ``nnbench`` command line: parse, call the library, print.

The flags of ``nnbench run`` and ``nnbench train`` are made from the settings
schema (:mod:`nnbench.settings`), which checks their values too. A user's
mistake (a bad flag value, an unknown optimizer, a damaged data file) is
printed as one line, ``nnbench: error: ...``, with exit status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tomllib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from nnbench import settings
from nnbench.errors import ConfigError, NnbenchError
from nnbench.status import Status

EXIT_RERUN_FAILED = 1  # a --force rerun failed; the earlier result was kept
EXIT_USAGE = 2
EXIT_FIGURE_FAILED = 3  # the report was written, but a figure could not be drawn
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


# -- flag values -------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A flag value read as a TOML value (``0.1``, ``true``, ``[1, 2]``), else as text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from ``--option``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value.strip())


def setting_type(setting: settings.Setting, many: bool = False) -> Callable[[str], Any]:
    """The argparse type of a setting's flag: one value, or a comma list when ``many``.

    The text is offered to the schema as it is, then read as a TOML value, so
    ``--name 2024`` stays a name and ``--epochs 3`` is a number.
    """

    def one(text: str) -> Any:
        if setting.key == "hidden":
            return _architecture(text)
        # a list setting (--final-seeds 101,102) is given as its items, comma-separated
        items = [parse_value(part.strip()) for part in text.split(",")]
        for candidate in (text, parse_value(text), items):
            try:
                return setting.option.convert(candidate)
            except ValueError:
                continue
        raise argparse.ArgumentTypeError(
            f"expected {setting.option.describe_range(unset=False)}, got {text!r}"
        )

    def convert(text: str) -> Any:
        if not many:
            return one(text)
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected values separated by commas, got {text!r}")
        return [one(item) for item in items]

    convert.__name__ = setting.key  # argparse names the type in some messages
    return convert


def _architecture(text: str) -> tuple[int, ...]:
    """``25,10`` -> ``(25, 10)``; ``none`` -> no hidden layer."""
    if text.strip().lower() == "none":
        return ()
    try:
        units = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        units = []
    if not units:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes like 500,300 (or none), got {text!r}"
        )
    try:
        return settings.ARCHITECTURE.convert(units)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected {settings.ARCHITECTURE.name}, got {text!r}"
        ) from None


def _number(text: str, ok: Callable[[float], bool], what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def probability(text: str) -> float:
    return _number(text, lambda v: 0 < v <= 1, "an accuracy in (0, 1]")


def positive(text: str) -> float:
    return _number(text, lambda v: v > 0, "a number > 0")


def name_list(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text!r}")
    return names


def nonempty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a path, got an empty one")
    return text


# -- commands ----------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from nnbench import backends, data, optimizers
    from nnbench.report import figures

    for name, cls in optimizers.available().items():
        print(f"{name}: {cls.summary}")
        for key, opt in cls.options.items():
            space = f"; tuned over {opt.search}" if opt.search is not None else ""
            print(f"    {key} = {opt.default!r}  ({opt.describe_range()}{space}) {opt.doc}")
    for name, error in optimizers.plugin_errors().items():
        print(f"{name}: plugin failed to load: {error}")
    print("\ndatasets: " + ", ".join(data.available()))
    for name, error in data.plugin_errors().items():
        print(f"{name}: dataset plugin failed to load: {error}")
    print("backends: " + ", ".join(backends.available()))
    print("figures: " + ", ".join(figures.available()))
    for name, error in figures.plugin_errors().items():
        print(f"{name}: figure plugin failed to load: {error}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    rows = settings.describe()
    if args.markdown:
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + " --- |" * len(keys))
        for row in rows:
            print("| " + " | ".join(row[k].replace("|", "\\|") for k in keys) + " |")
        return 0
    for row in rows:
        flags = " / ".join(f for f in (row["flag (run)"], row["flag (train)"]) if f)
        print(f"{row['setting']} = {row['default']}" + (f"   [{flags}]" if flags else ""))
        print(f"    {row['meaning']}; accepts {row['accepts']}")
        print(f"    default because: {row['why this default']}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from nnbench import data

    info = data.get(args.dataset)
    if info.fetch is None:
        raise NnbenchError(
            f"dataset {args.dataset!r} needs no fetching; these do: {', '.join(data.fetchable())}"
        )
    root = info.fetch(
        args.data_dir,
        force=args.force,
        progress=lambda m: print(m, file=sys.stderr),
        show_bar=sys.stderr.isatty(),
    )
    print(f"{args.dataset} is in {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from nnbench import data

    info = data.cache_info(args.data_dir)
    print(f"cache: {info['cache_dir']}")
    fetch = " or ".join(f"`nnbench data fetch {name}`" for name in data.fetchable())
    if not info["files"]:
        print(f"nothing cached; run {fetch}")
    for f in info["files"]:
        if f.get("damaged"):
            print(f"  {f['path']:<44} damaged manifest: {fetch} with --force")
            continue
        if f.get("temporary"):
            print(f"  {f['path']:<44} {f['bytes']:>12,d} bytes  left by a killed writer; "
                  "the next run removes it")  # fmt: skip
            continue
        kind = "(derived) " if f.get("derived") else ""
        print(f"  {f['path']:<44} {f['bytes']:>12,d} bytes  {kind}sha256 {f['sha256']}")
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from nnbench import data

    for name, info in data.available().items():
        shape = info.shape_of({})
        size = f" ({shape[0]} features, {shape[1]} classes)" if shape else ""
        print(f"{name}: {info.summary}{size}")
        for key, opt in info.options.items():
            print(f"    {key} = {opt.default!r}  ({opt.describe_range()}) {opt.doc}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nnbench import data
    from nnbench.build import build_run, run_values

    given = {
        s.key: getattr(args, s.key)
        for s in settings.SCHEMA
        if s.flags[1] and getattr(args, s.key, None) is not None
    }
    if args.data_option:
        given["data_options"] = dict(args.data_option)
    values = run_values(**given)
    ds = data.load_dataset(
        values["dataset"],
        data_dir=args.data_dir,
        mmap=True,
        path=values["path"],
        progress=lambda m: print(m, file=sys.stderr),
        options=values["data_options"],
    )
    splits = {"train": ds.train, "valid": ds.valid, "test": ds.test}
    run = build_run(values, args.optimizer, splits, ds.n_classes, dict(args.option))
    result = run()
    frame = result.frame()
    cols = [
        "iteration",
        "epoch",
        "grad_evals",
        "train_cost",
        "val_accuracy",
        "test_accuracy",
        "train_seconds",
    ]
    print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    last = result.rows[-1]
    print(
        f"{run.optimizer.label} on {ds.name} {run.model.layout.sizes}: {result.status}; "
        f"validation accuracy {last['val_accuracy']:.4f}, "
        f"{last['train_seconds']:.3f} s training"
    )
    return 0


def grid_overrides(
    args: argparse.Namespace, file_optimizers: Sequence[Any] | None = None
) -> dict[str, Any]:
    """The flags that replace parts of an experiment file, by dotted key.

    ``--optimizers a,b`` keeps the file's ``[[optimizer]]`` tables of those
    names, their options included (a name the file lacks gets its defaults);
    ``--option a.key=value`` then sets that option in every table of ``a``.
    """
    over: dict[str, Any] = {
        s.dotted: getattr(args, s.key)
        for s in settings.SCHEMA
        if s.flags[0] and getattr(args, s.key, None) is not None
    }
    if "model.hidden" in over:
        over["model.hidden"] = [list(a) for a in over["model.hidden"]]
    for key, value in getattr(args, "data_option", []):
        over[f"data.options.{key}"] = value
    if args.optimizers:
        given = [t for t in (file_optimizers or []) if isinstance(t, dict)]
        tables: list[dict[str, Any]] = []
        for name in args.optimizers:
            mine = [dict(t) for t in given if t.get("name") == name]
            tables += mine or [{"name": name}]
        by_name: dict[str, list[dict[str, Any]]] = {}
        for t in tables:
            by_name.setdefault(t["name"], []).append(t)
        for key, value in args.option:
            opt_name, dot, opt_key = key.partition(".")
            if not dot:
                raise NnbenchError(
                    f"--option {key}=... needs the optimizer's name: "
                    f"--option {args.optimizers[0]}.{key}=VALUE"
                )
            if opt_name not in by_name:
                raise NnbenchError(
                    f"--option {key}: {opt_name!r} is not among --optimizers "
                    f"{','.join(args.optimizers)}"
                )
            if opt_key == "name":
                raise NnbenchError(
                    f"--option {key}: name is not an option; give the optimizer in --optimizers"
                )
            for table in by_name[opt_name]:
                table[opt_key] = value
        over["optimizer"] = tables
    elif args.option:
        raise NnbenchError("--option needs --optimizers (to say which optimizer it sets)")
    return over


def print_grid_table(out_dir: Any) -> None:
    """Final validation accuracy and time per configuration, over seeds."""
    from nnbench import results, tune

    frame = tune.reported(results.load(out_dir), tune.read_choices(out_dir))
    if frame.empty:
        return
    last = results.final_rows(frame)
    # by configuration: two with one label (another budget, say) stay two rows
    table = last.groupby(["name", "workload", "hidden", "batch_size", "config_id"], sort=True).agg(
        runs=("run_id", "size"),
        ok=("status", lambda s: sum(Status(str(v)).is_ok for v in s)),
        val_acc=("val_accuracy", "mean"),
        val_sd=("val_accuracy", "std"),
        test_acc=("test_accuracy", "mean"),
        seconds=("train_seconds", "mean"),
    )
    table.index = table.index.droplevel("config_id")
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def cmd_run(args: argparse.Namespace) -> int:
    from nnbench import study
    from nnbench.experiment import apply_overrides, read_toml, validate

    if args.file:
        raw = read_toml(args.file)
        overrides = grid_overrides(args, raw.get("optimizer"))
        experiment = validate(apply_overrides(raw, overrides), str(args.file))
    else:
        overrides = grid_overrides(args)
        if not args.optimizers:
            raise NnbenchError(
                "give an experiment file (nnbench run experiments/blog.toml) or at least "
                "--optimizers to build a grid from flags"
            )
        experiment = validate(apply_overrides({"name": "cli"}, overrides), "command line")
    if args.plan:
        return _plan(experiment, args.pilot)
    summary = study.run_experiment(
        experiment,
        out_dir=args.out,
        force=args.force,
        merge=args.merge,
        prune=args.prune,
        progress_bar=sys.stderr.isatty() and not args.quiet,
        **execution(args),
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing new"
    kept = f"; {summary.n_kept} failed rerun(s) kept the earlier result" if summary.n_kept else ""
    print(
        f"{experiment.name}: {summary.n_runs} runs ({summary.n_skipped} already done; "
        f"{counts}{kept}); results in {summary.out_dir}",
        file=sys.stderr,
    )
    if summary.interrupted:
        print(
            "stopped: the finished runs are kept; run the same command again to continue",
            file=sys.stderr,
        )
        return EXIT_TERMINATED if summary.terminated else EXIT_INTERRUPTED
    if not args.quiet:
        print_grid_table(summary.out_dir)
    if summary.n_kept:
        print(
            f"nnbench: error: {summary.n_kept} forced rerun(s) failed, and their earlier "
            "results were kept: the folder does not show what this code does; see the "
            "failures above, or rerun into a fresh --out to record them",
            file=sys.stderr,
        )
        return EXIT_RERUN_FAILED
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nnbench import report

    built = report.build(args.results, args.out, target=args.target, figures=args.figures)
    path = built.path
    print(f"wrote {path} and {path.with_suffix('.md')}, figures in {path.parent / 'figures'}")
    for name, error in built.failed.items():
        print(f"nnbench: figure {name} could not be drawn: {error}", file=sys.stderr)
    return EXIT_FIGURE_FAILED if built.failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from nnbench import export

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = export.export(args.results, args.out, formats, target=args.target)
    folder = Path(args.out) if args.out else Path(args.results) / "export"
    tables = sorted({p.stem for p in written if p.parent == folder})
    layout = sum(1 for p in written if p.name == "eval_measurements.csv")
    print(
        f"wrote {len(written)} files to {folder}: {', '.join(tables)} as "
        f"{', '.join(formats)}; AlgoPerf's layout in {folder / 'algoperf'} ({layout} trials)"
    )
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from nnbench import baseline as baseline_mod

    if not args.output:
        raise NnbenchError("give the baseline file to write: nnbench baseline RESULTS --out FILE")
    path = baseline_mod.write_baseline(
        args.results, args.output, effect=args.effect, **execution(args)
    )
    baseline = json.loads(path.read_text())
    kinds = [c["kind"] for c in baseline["configurations"]]
    cal = baseline["calibration"]
    print(
        f"wrote baseline {path}: {len(kinds)} configurations, "
        f"{kinds.count('stable')} rounding-stable, {kinds.count('chaotic')} chaotic; "
        f"rounding measured by {', '.join(cal['variants'])}"
    )
    for note in cal.get("notes", []):
        print(f"  note: {note}")
    for line in baseline_mod.describe_needs(baseline):
        print(f"  {line}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from nnbench import check

    result = check.check(
        args.results,
        args.baseline,
        strict=args.strict,
        alpha=args.alpha,
        metric=args.metric,
        fail_unresolved=args.fail_unresolved,
    )
    print(check.format_check(result))
    return 0 if result.ok else 1


def _plan(experiment: Any, pilot: str | None) -> int:
    from nnbench import plan

    folder = Path(pilot) if pilot else plan.default_pilot(experiment)
    if folder is not None and not (folder / "runs").is_dir():
        raise NnbenchError(f"--pilot {folder}: no results folder there (it has no runs/)")
    print(plan.format_plan(experiment, plan.plan(experiment, folder), folder))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from nnbench import compare

    comparison = compare.compare(
        args.a,
        args.b,
        metric=args.metric,
        margin=args.margin,
        alpha=args.alpha,
        target=args.target,
        ignore_options=args.ignore_options,
        baseline=args.baseline,
        all_metrics=args.all_metrics,
        calibration=args.calibration,
    )
    print(compare.format_comparison(comparison))
    return compare.exit_code(comparison, args.fail_on)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"nnbench: error: {_printable(message)} (see `{self.prog} --help`)\n")


# An error quotes what it was given; beyond this many characters it keeps its
# start and its end (where the fix is), and says how much it left out.
MAX_ERROR = 800


def _printable(text: str) -> str:
    """``text`` on one line: control characters (a stray ``\\r`` in an argument, say)
    written as their escapes, and at most :data:`MAX_ERROR` characters, so an
    error stays one readable line."""
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(line) <= MAX_ERROR:
        return line
    half = MAX_ERROR // 2
    return f"{line[:half]} ... ({len(line) - 2 * half:,} characters not shown) ... {line[-half:]}"


# -- the parser --------------------------------------------------------------------------


def add_setting_flags(parser: argparse.ArgumentParser, command: int) -> None:
    """The schema's flags for ``run`` (command 0) or ``train`` (command 1)."""
    group = parser.add_argument_group(
        "settings (`nnbench config` lists them)"
        + (": each replaces that part of the file" if command == 0 else "")
    )
    for s in settings.SCHEMA:
        flag = s.flags[command]
        if not flag:
            continue
        many = s.axis and command == 0
        kwargs: dict[str, Any] = {
            "dest": s.key,
            "metavar": s.key.upper(),
            "help": s.option.doc + (" (comma list)" if many and s.key != "hidden" else ""),
            "type": setting_type(s, many=many and s.key != "hidden"),
        }
        if s.key == "hidden":  # written as on the command line, not as in a file
            kwargs["help"] = "hidden layer sizes, e.g. 500,300 (or none)"
            if many:
                kwargs["action"] = "append"
                kwargs["help"] = "an architecture, e.g. 500,300 (or none); repeat for several"
        if s.key == "data_options":  # one option a flag, repeatable
            group.add_argument(
                "--data-option",
                type=parse_option,
                action="append",
                default=[],
                metavar="KEY=VALUE",
                help="a dataset option (`nnbench data list`), repeatable",
            )
            continue
        group.add_argument(flag, **kwargs)
        for old in DEPRECATED_FLAGS.get(flag, ()):
            group.add_argument(old, **{**kwargs, **deprecated(flag)})


# Flags renamed for clarity, kept one release as deprecated aliases: the network's
# output layer was --output, which read as a file to write.
DEPRECATED_FLAGS = {"--output-layer": ("--output",)}


class _Deprecated(argparse.Action):
    """A flag kept for one release: it works, and says which flag replaces it."""

    def __init__(self, option_strings: Sequence[str], dest: str, replacement: str = "",
                 **kwargs: Any) -> None:  # fmt: skip
        kwargs.pop("action", None)
        super().__init__(option_strings, dest, **kwargs)
        self.replacement = replacement

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        warnings.warn(
            f"{option_string} is deprecated and goes in the next release; use {self.replacement}",
            NnbenchDeprecationWarning,
            stacklevel=2,
        )
        if self.nargs == 0:
            values = self.const
        setattr(namespace, self.dest, values)


class NnbenchDeprecationWarning(UserWarning):
    """A flag or name that still works but goes in the next release."""


def deprecated(replacement: str) -> dict[str, Any]:
    """argparse keywords of a deprecated alias of ``replacement`` (hidden from --help)."""
    return {"action": _Deprecated, "replacement": replacement, "help": argparse.SUPPRESS}


def execution(args: argparse.Namespace) -> dict[str, Any]:
    """What the execution flags (:func:`add_execution_flags`) ask of the runner."""
    return {
        "n_jobs": args.jobs,
        "backend": args.backend,
        "scheduler": args.scheduler,
        "data_dir": args.data_dir,
        "threads": args.threads,
        "log": None if args.quiet else lambda m: print(m, file=sys.stderr),
        "stack": not args.no_stack,
    }


def add_execution_flags(p: argparse.ArgumentParser) -> None:
    """How runs are executed: ``nnbench run``'s, and ``nnbench baseline``'s reruns."""
    from nnbench import backends

    p.add_argument("-j", "--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument(
        "--backend",
        default=backends.DEFAULT,
        help=f"what dispatches the runs: {', '.join(backends.available())}",
    )
    p.add_argument(
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786); without it --backend dask "
        "starts a local cluster",
    )
    p.add_argument("--data-dir", type=nonempty, help="data cache folder")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads per run (default 1; results depend on it bitwise)",
    )
    p.add_argument(
        "--no-stack",
        action="store_true",
        help="run every tuning trial in its own process (by default, trials of one "
        "optimizer, cell and seed train together, each bit for bit as alone)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _parser_data(sub: Any) -> None:
    p = sub.add_parser("data", help="fetch MNIST into the cache, show what is cached")
    data_sub = p.add_subparsers(
        dest="data_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    f = data_sub.add_parser("fetch", help="download and verify MNIST into the cache")
    f.add_argument("dataset", help="a dataset to fetch into the cache (`nnbench data list`)")
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.set_defaults(func=cmd_data_fetch)
    i = data_sub.add_parser("info", help="what is cached, where, with checksums")
    i.set_defaults(func=cmd_data_info)
    data_sub.add_parser("list", help="the datasets").set_defaults(func=cmd_data_list)
    for q in (f, i):
        q.add_argument(
            "--data-dir",
            type=nonempty,
            help="cache folder (default: $NNBENCH_DATA_DIR, else the user's cache folder)",
        )


def _parser_train(sub: Any) -> None:
    p = sub.add_parser("train", help="train one network and print its evaluations")
    p.add_argument("--optimizer", default="gd", help="optimizer name (`nnbench list`)")
    p.add_argument("-o", dest="optimizer", **deprecated("--optimizer"))
    p.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="optimizer option, repeatable",
    )
    p.add_argument("--data-dir", type=nonempty, help="data cache folder")
    add_setting_flags(p, 1)
    p.set_defaults(func=cmd_train)


def _parser_run(sub: Any) -> None:
    p = sub.add_parser("run", help="run an experiment grid (file and/or flags)")
    p.add_argument("file", nargs="?", help="experiment file (TOML), e.g. experiments/blog.toml")
    p.add_argument("--out", type=nonempty, help="results folder (default results/NAME)")
    p.add_argument("--force", action="store_true", help="rerun runs that are already done")
    p.add_argument(
        "--merge", action="store_true", help="add the runs to a folder of another experiment"
    )
    p.add_argument(
        "--prune",
        action="store_true",
        help="once the study is complete, delete the folder's runs of an earlier version of it",
    )
    add_execution_flags(p)
    p.add_argument("--optimizers", type=name_list, help="e.g. gd,adam,cg (replaces the file's)")
    p.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="OPT.KEY=VALUE",
        help="e.g. adam.learning_rate=[0.01,0.001]",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="run nothing: say what the planned seeds can show (the smallest p-value of each "
        "test, whether a verdict is possible, the difference found with 80%% power)",
    )
    p.add_argument(
        "--pilot",
        help="with --plan: a results folder whose noise the plan uses (default results/NAME)",
    )
    add_setting_flags(p, 0)
    p.set_defaults(func=cmd_run)


def _parser_export(sub: Any) -> None:
    p = sub.add_parser("export", help="every table of the report as CSV, JSON or LaTeX")
    p.add_argument("results", help="results folder, e.g. results/extended")
    p.add_argument("--out", type=nonempty, help="where to write (default RESULTS/export)")
    p.add_argument(
        "--format",
        default="csv",
        help="csv (default), json, latex, or several: csv,json,latex",
    )
    p.add_argument(
        "--target",
        type=probability,
        help="the validation accuracy to reach (default: 99%% of each cell's best median)",
    )
    p.set_defaults(func=cmd_export)


def _parser_report(sub: Any) -> None:
    p = sub.add_parser("report", help="tables and figures from a results folder")
    p.add_argument("results", help="results folder, e.g. results/blog")
    p.add_argument("--out", type=nonempty, help="where to write (default: the folder)")
    p.add_argument("-o", dest="out", type=nonempty, **deprecated("--out"))
    p.add_argument(
        "--target",
        type=probability,
        help="validation accuracy for time-to-target (default: per cell, 99%% "
        "of the best final accuracy)",
    )
    p.add_argument("--figures", type=name_list, help="which figures (`nnbench list` names them)")
    p.set_defaults(func=cmd_report)


def _parser_baseline(sub: Any) -> None:
    p = sub.add_parser(
        "baseline", help="a baseline of a results folder, its rounding measured by rerunning"
    )
    p.add_argument("results", help="results folder")
    p.add_argument("--out", dest="output", type=nonempty, help="baseline file to write")
    p.add_argument("-o", "--output", dest="output", type=nonempty, **deprecated("--out"))
    add_execution_flags(p)
    p.add_argument(
        "--effect",
        type=probability,
        default=0.02,
        help="the accuracy drop a chaotic configuration's seeds must be able to show (0.02)",
    )
    p.set_defaults(func=cmd_baseline)


def _parser_check(sub: Any) -> None:
    p = sub.add_parser("check", help="exit 1 when the results regressed from a baseline")
    p.add_argument("results", help="results folder")
    p.add_argument("--baseline", required=True, help="baseline file from `nnbench baseline`")
    p.add_argument(
        "--strict",
        action="store_true",
        help="any change beyond rounding fails, up or down, and so does a configuration "
        "whose seeds cannot resolve its tests (nnbench's own CI)",
    )
    p.add_argument(
        "--fail-unresolved",
        action="store_true",
        help="fail when a chaotic configuration moved and its seeds cannot tell "
        "rounding from a change (reported otherwise)",
    )
    p.add_argument(
        "--alpha", type=probability, default=0.01, help="significance of the paired tests (0.01)"
    )
    p.add_argument(
        "--metric",
        default="val_accuracy",
        choices=["val_accuracy", "test_accuracy"],
        help="the final metric judged (default val_accuracy)",
    )
    p.set_defaults(func=cmd_check)


def _parser_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="seed-paired comparison of two results folders")
    p.add_argument("a", help="results folder A (before)")
    p.add_argument("b", help="results folder B (after)")
    p.add_argument(
        "--metric",
        default="val_accuracy",
        help="the final metric that decides: val_accuracy (default), test_accuracy, train_cost; "
        "with --target also grad_evals_to_target, train_cpu_seconds_to_target",
    )
    p.add_argument(
        "--margin",
        help="the smallest difference that matters, never estimated from the runs compared: "
        "a number (default 0.002 of an accuracy), N%% of A's mean (default 1%% of a cost, "
        "5%% of gradient evaluations, 25%% of a time), or spread: the standard deviation of "
        "each configuration's seeds in --calibration",
    )
    p.add_argument(
        "--calibration",
        help="a results folder (another run of A's experiment) whose seeds' spread is "
        "--margin spread",
    )
    p.add_argument("--target", type=probability, help="also compare the time to this accuracy")
    p.add_argument(
        "--alpha",
        type=probability,
        default=0.05,
        help="the chance of any false better, worse or equivalent verdict on a metric, "
        "over every configuration (Holm-corrected; 0.05)",
    )
    p.add_argument(
        "--baseline",
        help="a baseline of A (`nnbench baseline`): differences within its measured floors "
        "are rounding",
    )
    p.add_argument(
        "--all-metrics",
        action="store_true",
        help="every metric decides, not only --metric",
    )
    p.add_argument(
        "--ignore-options",
        action="store_true",
        help="pair configurations that differ only in the optimizer's options",
    )
    p.add_argument(
        "--fail-on",
        default="worse",
        choices=["worse", "different", "never"],
        help="exit 1 when the deciding metric got worse (default); when anything is not "
        "identical or equivalent, or seeds or configurations are on one side only; or never",
    )
    p.set_defaults(func=cmd_compare)


def build_parser() -> argparse.ArgumentParser:
    from nnbench import __version__

    parser = _Parser(
        prog="nnbench", description="Compare neural-network optimizers on small models."
    )
    parser.add_argument("--version", action="version", version=f"nnbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )
    sub.add_parser(
        "list", help="the optimizers with their options; datasets, backends, figures"
    ).set_defaults(func=cmd_list)
    p = sub.add_parser("config", help="every run setting: default, reason, flag")
    p.add_argument("--markdown", action="store_true", help="as a Markdown table")
    p.set_defaults(func=cmd_config)
    parts = (_parser_data, _parser_train, _parser_run, _parser_report, _parser_export,
             _parser_baseline, _parser_check, _parser_compare)  # fmt: skip
    for add in parts:
        add(sub)
    return parser


def _warn(message: Warning | str, category: type, *args: Any, **kwargs: Any) -> None:
    """A warning as one line, like the errors: ``nnbench: warning: ...``."""
    print(f"nnbench: warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    with warnings.catch_warnings():
        if "--debug" not in argv:  # parsing warns too (a deprecated flag)
            warnings.showwarning = _warn
        args = parser.parse_args(argv)
        return _call(args)


def _call(args: argparse.Namespace) -> int:
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit quiet
        return 0
    except (NnbenchError, ConfigError, ValueError, OSError, MemoryError) as exc:
        if args.debug:
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            message = f"out of memory ({message}): the run asks for more than this machine has"
        print(f"nnbench: error: {_printable(' '.join(message.split()))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nnbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
