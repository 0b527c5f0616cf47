"""The ``nnbench`` command line: parse, call the library, print.

A user's mistake (a bad flag value, an unknown optimizer, a damaged data
file) is printed as one line, ``nnbench: error: ...``, with exit status 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections.abc import Sequence
from typing import Any

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


def int_list(text: str) -> list[int]:
    """``25,10`` -> ``[25, 10]`` (the hidden layers of one network)."""
    try:
        values = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers separated by commas, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return int(value) if value.is_integer() and "." not in text else value


def eval_schedule(text: str) -> int | str:
    if text == "epoch":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 'epoch' or an integer >= 1, got {text!r}")
    return value


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
        print(f"  {f['path']:<24} {f['bytes']:>11,d} bytes  sha256 {f['sha256']}")
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


# -- the parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from nnbench import __version__

    parser = argparse.ArgumentParser(
        prog="nnbench", description="Compare neural-network optimizers on small models."
    )
    parser.add_argument("--version", action="version", version=f"nnbench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list the optimizers with their options")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("data", help="fetch MNIST into the cache, or show what is cached")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (
        getattr(args, "max_iter", 0) is None
        and getattr(args, "epochs", 0) is None
        and getattr(args, "max_seconds", 0) is None
    ):
        args.max_iter = 100  # the post's maxiter when no budget is given
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
