"""The ``nnbench`` command line: parse, call the library, print.

A user's mistake (a bad flag value, an unknown optimizer, a damaged data
file) is printed as one line, ``nnbench: error: ...``, with exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tomllib
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from nnbench.errors import NnbenchError

EXIT_USAGE = 2


def parse_value(text: str) -> Any:
    """A flag value read as a TOML value (``0.1``, ``true``, ``[1, 2]``), else as text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` from ``--option``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), parse_value(value.strip())


def _number(text: str, ok: Callable[[float], bool], what: str) -> float:
    """A finite number from a flag, or a usage error saying what was expected."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return int(value) if value.is_integer() and "." not in text else value


def positive_number(text: str) -> float:
    return _number(text, lambda v: v > 0, "a number > 0")


def non_negative(text: str) -> float:
    return _number(text, lambda v: v >= 0, "a number >= 0")


def probability(text: str) -> float:
    return float(_number(text, lambda v: 0 < v <= 1, "an accuracy in (0, 1]"))


def _ints(text: str, low: int) -> list[int]:
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        values = []
    if not values:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")
    if min(values) < low:
        what = "positive integers" if low == 1 else f"integers >= {low}"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def int_list(text: str) -> list[int]:
    """``25,10`` -> ``[25, 10]`` (the hidden layers of one network)."""
    return _ints(text, low=1)


def seed_list(text: str) -> list[int]:
    return _ints(text, low=0)


def number_list(text: str) -> list[float]:
    return [positive_number(v) for v in text.split(",") if v.strip()]


def name_list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def eval_schedule(text: str) -> int | str:
    if text == "epoch":
        return text
    return int(_number(text, lambda v: v >= 1 and v.is_integer(), "'epoch' or an integer >= 1"))


# -- commands ----------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from nnbench import optimizers

    for name, cls in optimizers.available().items():
        print(f"{name}: {cls.summary}")
        for key, opt in cls.options.items():
            print(f"    {key} = {opt.default!r}  ({opt.describe_range()}) {opt.doc}")
    for name, error in optimizers.plugin_errors().items():
        print(f"{name}: plugin failed to load: {error}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    from nnbench import data

    root = data.fetch_mnist(
        args.data_dir,
        force=args.force,
        progress=lambda m: print(m, file=sys.stderr),
        show_bar=sys.stderr.isatty(),
    )
    print(f"MNIST is in {root}")
    return 0


def cmd_data_info(args: argparse.Namespace) -> int:
    from nnbench import data

    info = data.mnist_info(args.data_dir)
    print(f"cache: {info['cache_dir']}")
    if not info["files"]:
        print("nothing cached; run `nnbench data fetch mnist`")
    for f in info["files"]:
        digest = f"sha256 {f['sha256']}" if f["sha256"] else "(derived)"
        print(f"  {f['path']:<44} {f['bytes']:>12,d} bytes  {digest}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from nnbench import data, optimizers
    from nnbench.mlp import MLP
    from nnbench.train import Budget, seed_rngs, train

    ds = data.load_dataset(
        args.dataset,
        data_dir=args.data_dir,
        mmap=True,
        progress=lambda m: print(m, file=sys.stderr),
    )
    optimizer = optimizers.make(args.optimizer, dict(args.option))
    model = MLP(
        (ds.n_features, *args.hidden, ds.n_classes),
        activation=args.activation,
        output=args.output,
        l2=args.l2,
        dtype=args.dtype,
    )
    if args.max_iter is None and args.epochs is None and args.max_seconds is None:
        args.max_iter = 100  # the post's maxiter when no budget is given
    init_rng, batch_rng = seed_rngs(args.seed)
    theta = model.init(init_rng, args.init)
    result = train(
        model,
        theta,
        ds.train,
        optimizer,
        budget=Budget(args.max_iter, args.epochs, None, args.max_seconds),
        rng=batch_rng,
        batch_size=args.batch_size,
        valid=ds.valid,
        test=ds.test,
        eval_every=args.eval_every,
        tol=args.tol,
    )
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
        f"{optimizer.label} on {ds.name} {model.layout.sizes}: {result.status}; "
        f"validation accuracy {last['val_accuracy']:.4f}, "
        f"{last['train_seconds']:.3f} s training"
    )
    return 0


def grid_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags that replace parts of an experiment file (dotted keys)."""
    over: dict[str, Any] = {
        "name": args.name,
        "data.dataset": args.dataset,
        "data.dtype": args.dtype,
        "model.hidden": args.hidden,
        "model.activation": args.activation,
        "model.output": args.output,
        "grid.batch_size": args.batch_sizes,
        "grid.seeds": args.seeds,
        "budget.max_iter": args.max_iter,
        "budget.max_epochs": args.epochs,
        "budget.max_grad_evals": args.max_grad_evals,
        "budget.max_seconds": args.max_seconds,
        "eval.every": args.eval_every,
    }
    if args.optimizers:
        tables = []
        for name in args.optimizers:
            table: dict[str, Any] = {"name": name}
            for key, value in args.option:
                opt_name, dot, opt_key = key.partition(".")
                if not dot:
                    raise NnbenchError(
                        f"--option {key}=... needs the optimizer's name with "
                        f"--optimizers: --option {name}.{key}=VALUE"
                    )
                if opt_name == name:
                    table[opt_key] = value
            tables.append(table)
        over["optimizer"] = tables
    elif args.option:
        raise NnbenchError("--option needs --optimizers (to say which optimizer it sets)")
    return over


def print_grid_table(out_dir: Any) -> None:
    """Final validation accuracy and time per configuration, over seeds."""
    from nnbench import results

    frame = results.load(out_dir)
    if frame.empty:
        return
    last = frame.sort_values("iteration").groupby("run_id").tail(1)
    table = last.groupby(["label", "hidden", "batch_size"], sort=True).agg(
        runs=("run_id", "size"),
        ok=("status", lambda s: int(s.isin(["completed", "converged", "stopped"]).sum())),
        val_acc=("val_accuracy", "mean"),
        val_sd=("val_accuracy", "std"),
        test_acc=("test_accuracy", "mean"),
        seconds=("train_seconds", "mean"),
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))


def cmd_run(args: argparse.Namespace) -> int:
    from nnbench import grid, runner

    overrides = grid_overrides(args)
    if args.file:
        experiment = grid.load_experiment(args.file, overrides)
    else:
        if not args.optimizers:
            raise NnbenchError(
                "give an experiment file (nnbench run experiments/blog.toml) or at least "
                "--optimizers to build a grid from flags"
            )
        raw = grid.apply_overrides({"name": "cli", "budget": {"max_iter": 100}}, overrides)
        experiment = grid.validate(raw, "command line")
    summary = runner.run_experiment(
        experiment,
        out_dir=args.out,
        n_jobs=args.jobs,
        force=args.force,
        backend=args.backend,
        scheduler=args.scheduler,
        data_dir=args.data_dir,
        log=None if args.quiet else lambda m: print(m, file=sys.stderr),
        progress_bar=sys.stderr.isatty() and not args.quiet,
        threads=args.threads,
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "nothing new"
    print(
        f"{experiment.name}: {summary.n_runs} runs ({summary.n_skipped} already done; "
        f"{counts}); results in {summary.out_dir}",
        file=sys.stderr,
    )
    if summary.interrupted:
        print(
            "interrupted: finished runs are kept; run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    print_grid_table(summary.out_dir)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from nnbench import report

    path = report.build_report(args.results, args.out, target=args.target)
    print(f"wrote {path} and {path.with_suffix('.md')}, figures in {path.parent / 'figures'}")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from nnbench import check

    path = check.write_baseline(args.results, args.output)
    print(f"wrote baseline {path}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from nnbench import check

    result = check.check(args.results, args.baseline, tol=args.tol, sigmas=args.sigmas)
    print(check.format_check(result))
    return 0 if result.ok else 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem and where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"nnbench: error: {message} (see `{self.prog} --help`)\n")


# -- the parser --------------------------------------------------------------------


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

    p = sub.add_parser("list", help="list the optimizers with their options")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("data", help="fetch MNIST into the cache, or show what is cached")
    data_sub = p.add_subparsers(
        dest="data_command", metavar="ACTION", required=True, parser_class=_Parser
    )
    f = data_sub.add_parser("fetch", help="download and verify MNIST into the cache")
    f.add_argument("dataset", choices=["mnist"])
    f.add_argument("--force", action="store_true", help="fetch again even if cached")
    f.set_defaults(func=cmd_data_fetch)
    i = data_sub.add_parser("info", help="what is cached, where, with checksums")
    i.set_defaults(func=cmd_data_info)
    for q in (f, i):
        q.add_argument(
            "--data-dir",
            help="cache directory (default: $NNBENCH_DATA_DIR or the user's cache directory)",
        )

    p = sub.add_parser("train", help="train one network and print its evaluations")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "digits", "synthetic"])
    p.add_argument("--data-dir", help="MNIST cache directory")
    p.add_argument("--hidden", type=int_list, default=[25], help="hidden sizes, e.g. 500,300")
    p.add_argument("--activation", default="sigmoid", choices=["sigmoid", "tanh", "relu"])
    p.add_argument("--output", default="sigmoid", choices=["sigmoid", "softmax"])
    p.add_argument("--l2", type=float, default=0.0, help="L2 penalty")
    p.add_argument("--init", default="auto", choices=["auto", "blog", "glorot", "he"])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("-o", "--optimizer", default="gd", help="optimizer name (`nnbench list`)")
    p.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="optimizer option, repeatable",
    )
    p.add_argument(
        "--batch-size",
        type=positive_number,
        default=50,
        help="rows per minibatch, or a fraction of the rows when < 1",
    )
    p.add_argument("--max-iter", type=int, default=None, help="budget in iterations")
    p.add_argument("--epochs", type=positive_number, default=None, help="budget in epochs")
    p.add_argument(
        "--max-seconds", type=positive_number, default=None, help="budget in training seconds"
    )
    p.add_argument(
        "--eval-every",
        type=eval_schedule,
        default="epoch",
        help="evaluate every N iterations, or 'epoch'",
    )
    p.add_argument("--tol", type=float, default=None, help="stop when the cost changes less")
    p.add_argument("--seed", type=int, default=1234)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="run an experiment grid (file and/or flags)")
    p.add_argument("file", nargs="?", help="experiment file (TOML), e.g. experiments/blog.toml")
    p.add_argument("-j", "--jobs", type=int, default=1, help="parallel jobs (default 1)")
    p.add_argument("--out", help="results folder (default results/<experiment name>)")
    p.add_argument("--force", action="store_true", help="rerun runs that are already done")
    p.add_argument(
        "--backend", default="loky", choices=["loky", "multiprocessing", "threading", "dask"]
    )
    p.add_argument(
        "--scheduler",
        help="Dask scheduler address (tcp://host:8786); without "
        "it --backend dask starts a local cluster",
    )
    p.add_argument("--data-dir", help="MNIST cache directory")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS threads per run (default 1; results depend on it bitwise)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    g = p.add_argument_group("grid (each replaces that part of the file)")
    g.add_argument("--name", help="experiment name (names the results folder)")
    g.add_argument("--dataset", choices=["mnist", "digits", "synthetic"])
    g.add_argument("--dtype", choices=["float64", "float32"])
    g.add_argument("--optimizers", type=name_list, help="e.g. gd,adam,cg")
    g.add_argument(
        "--option",
        type=parse_option,
        action="append",
        default=[],
        metavar="OPT.KEY=VALUE",
        help="e.g. adam.learning_rate=[0.01,0.001]",
    )
    g.add_argument(
        "--hidden",
        type=int_list,
        action="append",
        help="an architecture, e.g. 500,300; repeat for several",
    )
    g.add_argument("--activation", choices=["sigmoid", "tanh", "relu"])
    g.add_argument("--output", choices=["sigmoid", "softmax"])
    g.add_argument("--batch-sizes", type=number_list, help="e.g. 50,100")
    g.add_argument("--seeds", type=seed_list, help="e.g. 1,2,3")
    g.add_argument("--epochs", type=positive_number, help="budget in epochs")
    g.add_argument("--max-iter", type=int, help="budget in iterations")
    g.add_argument("--max-grad-evals", type=int, help="budget in gradient evaluations")
    g.add_argument("--max-seconds", type=positive_number, help="budget in training seconds")
    g.add_argument("--eval-every", type=eval_schedule, help="N iterations, or 'epoch'")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="tables and figures from a results folder")
    p.add_argument("results", help="results folder, e.g. results/blog")
    p.add_argument("-o", "--out", help="where to write (default: the results folder)")
    p.add_argument(
        "--target",
        type=probability,
        help="validation accuracy for time-to-target (default: per cell, 99%% "
        "of the best final accuracy)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("baseline", help="write the final accuracies as a baseline")
    p.add_argument("results", help="results folder")
    p.add_argument("-o", "--output", required=True, help="baseline file (JSON) to write")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("check", help="exit 1 if an accuracy dropped below the baseline")
    p.add_argument("results", help="results folder")
    p.add_argument("--baseline", required=True, help="baseline file from `nnbench baseline`")
    p.add_argument(
        "--tol",
        type=non_negative,
        help="absolute tolerance on the mean accuracy (default: from the spread)",
    )
    p.add_argument(
        "--sigmas",
        type=positive_number,
        default=3.0,
        help="without --tol: allowed drop in baseline standard deviations",
    )
    p.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the exit quiet
        return 0
    except (NnbenchError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"nnbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("nnbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
