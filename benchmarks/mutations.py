"""The mutation study: the regression gate against planted bugs and harmless changes.

Usage: python benchmarks/mutations.py [--out results/mutations.md] [--only NAME,...]
       [--skip-power] [--power-optimizers NAME,...] [--skip-harmless]
       [--harmless NAME,...] [--skip-tolerance]

Each planted bug is a patch of one line of nnbench's source, applied to a copy
of the package; ``.ci/gate`` then runs the CI grid with that copy first on
``PYTHONPATH`` and checks it strictly against the committed baseline. A bug
is *caught* when the gate fails. Each harmless variant (another way to run
the same code, or a change that only moves rounding) must pass: a failure is
a false alarm. The step-size study plants errors of 1%, 2%, 5% and 10% in
each first-order optimizer's step and reports the smallest the gate
catches; the tolerance study loosens and tightens each tolerance of scipy's
CG and L-BFGS-B by factors of 2, 10 and 100. Harmless variants include every
other BLAS kernel family this CPU runs (``OPENBLAS_CORETYPE``: another CPU's
rounding). The table goes to ``--out``; the summary is in the README.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# ruff: noqa: E501 - a patch is a line of source as it stands, whatever its length

ROOT = Path(__file__).resolve().parent.parent
GATE = ROOT / ".ci" / "gate"


@dataclass(frozen=True)
class Patch:
    name: str
    where: str  # what it breaks, for the table
    file: str  # relative to nnbench/
    old: str
    new: str


BUGS = [
    Patch(
        "gd step 0.9x",
        "gd",
        "optimizers/first_order.py",
        'grads *= column(state["lr"], grads)\n        thetas -= grads\n        return losses\n\n\nclass Momentum',
        'grads *= column(state["lr"], grads) * 0.9\n        thetas -= grads\n        return losses\n\n\nclass Momentum',
    ),
    Patch(
        "momentum: look-ahead dropped",
        "momentum",
        "optimizers/first_order.py",
        '            thetas -= step\n            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads)\n            thetas -= grads\n            step += grads',
        '            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads)\n            thetas -= grads\n            thetas -= step\n            step += grads',
    ),
    Patch(
        "nesterov turned heavy ball",
        "nesterov",
        "optimizers/first_order.py",
        "thetas += mu * v\n        thetas -= grads",
        "thetas += v",
    ),
    Patch(
        "adam without bias correction",
        "adam",
        "optimizers/first_order.py",
        "lr_t = lr * np.sqrt(1 - b2**t) / (1 - b1**t)",
        "lr_t = lr",
    ),
    Patch(
        "rmsprop decay hard-wired to 0.9",
        "rmsprop",
        "optimizers/first_order.py",
        'ms *= opts.column("decay", ms)\n        ms += opts.column("decay", ms, complement) * grads * grads',
        "ms *= 0.9\n        ms += (1 - 0.9) * grads * grads",
    ),
    Patch(
        "adagrad accumulator not summed",
        "adagrad",
        "optimizers/first_order.py",
        "G += grads * grads",
        "G[...] = grads * grads",
    ),
    Patch(
        "cg mb_maxiter off by one",
        "cg, scipy wrapper",
        "optimizers/scipy_based.py",
        'options={"maxiter": self.config["mb_maxiter"]}',
        'options={"maxiter": self.config["mb_maxiter"] + (self.method == "CG")}',
    ),
    Patch(
        "lbfgsb mb_maxiter off by one",
        "lbfgsb, scipy wrapper",
        "optimizers/scipy_based.py",
        'options={"maxiter": self.config["mb_maxiter"]}',
        'options={"maxiter": self.config["mb_maxiter"] - (self.method == "L-BFGS-B")}',
    ),
    Patch(
        "scipy wrapper keeps no copy of the gradient",
        "cg, lbfgsb",
        "optimizers/scipy_based.py",
        "return loss, grad.astype(np.float64, copy=True)",
        "return loss, grad.astype(np.float64, copy=False)",
    ),
    Patch(
        "minibatch order: one permutation for every pass",
        "training loop",
        "train.py",
        "            order = rng.permutation(n_samples)\n            n_batches",
        "            order = order if n_pass else rng.permutation(n_samples)\n            n_batches",
    ),
    Patch(
        "budget: epochs counted one batch early",
        "training loop",
        "train.py",
        'progress["epoch"] = n_pass + (i + 1) / n_batches',
        'progress["epoch"] = n_pass + (i + 2) / n_batches',
    ),
    Patch(
        "gradient: output bias gradient halved",
        "MLP gradient",
        "mlp.py",
        "np.matmul(z, ones, out=g_bias)",
        "np.matmul(z, ones, out=g_bias); g_bias *= 0.5",
    ),
    Patch(
        "activation: sigmoid derivative s instead of s(1 - s)",
        "MLP activation",
        "functions.py",
        "        delta *= a\n        delta -= delta * a",
        "        delta *= a",
    ),
    Patch(
        "evaluation: accuracy from the runner-up class",
        "evaluation",
        "mlp.py",
        "hits = z.argmax(axis=1) == yc",
        "hits = np.argsort(z, axis=1)[:, -2] == yc",
    ),
    # found by an independent review: the gate of 15 bugs passed both
    Patch(
        "heavy ball applies the old velocity",
        "momentum (classical)",
        "optimizers/first_order.py",
        '            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads)\n            step += grads\n            thetas -= step',
        '            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads)\n            thetas -= step\n            step += grads',
    ),
    Patch(
        "CG's gradient tolerance loosened (gtol 1e-5 to 1e-3)",
        "cg, scipy",
        "optimizers/scipy_based.py",
        'options={"maxiter": self.config["mb_maxiter"]}',
        'options={"maxiter": self.config["mb_maxiter"], **({"gtol": 1e-3} if self.method == "CG" else {})}',
    ),
    # one on each path the grids of experiments/ci/ added
    Patch(
        "softmax: the cost picks the logits after exp",
        "softmax output",
        "functions.py",
        "        picked = [float(row[pos].sum(dtype=np.float64)) for row in rows]\n        np.exp(zz, out=zz)",
        "        np.exp(zz, out=zz)\n        picked = [float(row[pos].sum(dtype=np.float64)) for row in rows]",
    ),
    Patch(
        "tanh derivative 1 - a instead of 1 - a^2",
        "tanh activation",
        "functions.py",
        "delta -= delta * a * a",
        "delta -= delta * a",
    ),
    Patch(
        "ReLU passes gradients through inactive units",
        "ReLU activation",
        "functions.py",
        "np.multiply(delta, a > 0, out=delta)",
        "np.multiply(delta, a >= 0, out=delta)",
    ),
    Patch(
        "L2 gradient not divided by the batch rows",
        "L2",
        "mlp.py",
        "g.weights[...] += (self.l2 / n) * layer.weights",
        "g.weights[...] += self.l2 * layer.weights",
    ),
    Patch(
        "Adam's eps raised to float32's machine epsilon in float32 runs",
        "float32",
        "optimizers/first_order.py",
        'runs = opts.floats("learning_rate", "eps", "beta1", "beta2")',
        'runs = [(lr, max(eps, float(np.finfo(thetas.dtype).eps)), b1, b2) for lr, eps, b1, b2 in opts.floats("learning_rate", "eps", "beta1", "beta2")]',
    ),
    Patch(
        "the tuning choice takes the worst trial",
        "tuning choice",
        "tune.py",
        "best = min(means, key=lambda t: (-means[t], t))",
        "best = min(means, key=lambda t: (means[t], t))",
    ),
    Patch(
        "the estimator ignores alpha",
        "estimator",
        "estimator.py",
        'given["hidden"] = self._hidden()',
        'given["hidden"] = self._hidden()\n        given["l2"] = 0.0',
    ),
    Patch(
        "a fraction of the rows rounded instead of floored",
        "batch schedule",
        "train.py",
        "return max(1, math.floor(n_samples * batch_size))",
        "return max(1, round(n_samples * batch_size))",
    ),
    Patch(
        "the batch grows twice after the first pass",
        "batch schedule",
        "train.py",
        "        n_pass += 1\n        size *= growth",
        "        size *= growth\n        n_pass += 1\n        size *= growth ** (n_pass == 1)",
    ),
    Patch(
        "the running loss divides by one minibatch more",
        "running loss (estimator default)",
        "train.py",
        'scores = {"train": [(self.running[p] / self.n_running, np.nan) for p in which]}',
        'scores = {"train": [(self.running[p] / (self.n_running + 1), np.nan) for p in which]}',
    ),
    Patch(
        "tol compares with the first cost instead of the previous",
        "stopping",
        "train.py",
        "if loop.tol is not None and abs(cost - prev) < loop.tol:",
        "if loop.tol is not None and abs(cost - start) < loop.tol:",
    ),
    Patch(
        "log-spaced evaluation points start at 10% of the budget",
        "evaluation schedule",
        "train.py",
        "LOG_FIRST = 0.01",
        "LOG_FIRST = 0.1",
    ),
]

# Changes that only move rounding, or run the same code another way: the gate must pass.
# Bugs in what stacks and runs alone share (one engine), found first by ci-tune's trials.
BUGS += [
    Patch(
        "stacked adam: step 1.001x",
        "stacked trials",
        "optimizers/first_order.py",
        "        grads *= lr_t\n        thetas -= grads",
        "        grads *= lr_t * 1.001\n        thetas -= grads",
    ),
    Patch(
        "stacked schedules: decays ignored",
        "stacked trials (gd, momentum)",
        "optimizers/base.py",
        "        state[key] *= values[factor]",
        "        state[key] *= 1.0",
    ),
    Patch(
        "stacked rmsprop: eps always outside the root",
        "stacked trials (rmsprop)",
        "optimizers/first_order.py",
        'if opts["eps_inside_sqrt"]:',
        "if False:",
    ),
    Patch(
        "stacked nesterov: look-ahead with the old velocity",
        "stacked trials (nesterov)",
        "optimizers/first_order.py",
        "        v *= mu\n        v -= grads\n        thetas += mu * v",
        "        thetas += mu * v\n        v *= mu\n        v -= grads",
    ),
    Patch(
        "stacked evaluation: every member scored as the first",
        "stacked trials (evaluation)",
        "mlp.py",
        "correct[j] += int(np.count_nonzero(hits[j]))",
        "correct[j] += int(np.count_nonzero(hits[0]))",
    ),
    Patch(
        "stacked divergence: a member's loss read from the next",
        "stacked trials (divergence)",
        "train.py",
        "lost = [p for p, loss in enumerate(losses) if not math.isfinite(loss)]",
        "lost = [p for p in range(len(losses)) if not math.isfinite(losses[min(p + 1, len(losses) - 1)])]",
    ),
]
HARMLESS_PATCHES = [
    Patch(
        "sigmoid through scipy.special.expit",
        "rounding",
        "functions.py",
        "    z *= 0.5\n    np.tanh(z, out=z)\n    z *= 0.5\n    z += 0.5\n    return z",
        "    from scipy.special import expit\n\n    return expit(z, out=z)",
    ),
    Patch(
        "cost summed in another order",
        "rounding",
        "functions.py",
        "costs = [cost - total for cost, total in zip(costs, _sums(work, one))]",
        "costs = [cost - float(np.sort(w, axis=None).sum(dtype=np.float64)) for cost, w in zip(costs, [work] if one else work)]",
    ),
    Patch(
        "gd update written another way",
        "refactor",
        "optimizers/first_order.py",
        'grads *= column(state["lr"], grads)\n        thetas -= grads\n        return losses\n\n\nclass Momentum',
        'np.subtract(thetas, column(state["lr"], grads) * grads, out=thetas)\n        return losses\n\n\nclass Momentum',
    ),
]
HARMLESS_FLAGS = [
    ("-j 1", ["-j", "1"], {}),
    ("--threads 2", ["-j", "1", "--threads", "2"], {}),
    ("--backend loky", ["--backend", "loky"], {}),
    ("--backend dask (a local cluster)", ["--backend", "dask"], {}),
    ("--no-stack (every trial alone, not stacked)", ["--no-stack"], {}),
]


def kernel_variants() -> list[tuple[str, list[str], dict[str, str]]]:
    """Another CPU's BLAS kernels: every other OpenBLAS family this CPU runs."""
    from nnbench.calibration import ENV_KEY, kernel_families

    library, current, others = kernel_families()
    key = ENV_KEY.get(library or "")
    return [
        (f"{key}={family} (another CPU's kernels; this one runs {current})", [], {key: family})
        for family in others
    ] if key else []  # fmt: skip


# The scipy minimisers' tolerances, loosened or tightened by a factor: the
# smallest change the gate catches. scipy's defaults: CG gtol 1e-5, L-BFGS-B
# gtol 1e-5 and ftol 2.22e-9.
TOLERANCES = {
    "CG gtol": ("CG", "gtol", 1e-5),
    "L-BFGS-B gtol": ("L-BFGS-B", "gtol", 1e-5),
    "L-BFGS-B ftol": ("L-BFGS-B", "ftol", 2.220446049250313e-09),
}
TOLERANCE_FACTORS = (2.0, 10.0, 100.0)

# How each first-order optimizer's step is scaled to plant a step-size error.
STEP_SITES = {
    "gd": (
        "optimizers/first_order.py",
        'grads *= column(state["lr"], grads)\n        thetas -= grads\n        return losses\n\n\nclass Momentum',
        'grads *= column(state["lr"], grads) * {f}\n        thetas -= grads\n        return losses\n\n\nclass Momentum',
    ),
    "momentum": (
        "optimizers/first_order.py",
        '            thetas -= step\n            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads)',
        '            thetas -= step\n            losses, grads = fun(thetas)\n            grads *= column(state["lr"], grads) * {f}',
    ),
    "nesterov": (
        "optimizers/first_order.py",
        'lr, mu = opts.column("learning_rate", v), opts.column("momentum", v)',
        'lr, mu = opts.column("learning_rate", v) * {f}, opts.column("momentum", v)',
    ),
    "rmsprop": (
        "optimizers/first_order.py",
        '            denom += eps\n        grads /= denom\n        grads *= opts.column("learning_rate", grads)',
        '            denom += eps\n        grads /= denom\n        grads *= opts.column("learning_rate", grads) * {f}',
    ),
    "adagrad": (
        "optimizers/first_order.py",
        '        denom += opts.column("eps", denom)\n        grads /= denom\n        grads *= opts.column("learning_rate", grads)',
        '        denom += opts.column("eps", denom)\n        grads /= denom\n        grads *= opts.column("learning_rate", grads) * {f}',
    ),
    "adam": (
        "optimizers/first_order.py",
        'runs = opts.floats("learning_rate", "eps", "beta1", "beta2")',
        'runs = [(lr * {f}, *rest) for lr, *rest in opts.floats("learning_rate", "eps", "beta1", "beta2")]',
    ),
}
STEP_ERRORS = (0.01, 0.02, 0.05, 0.10)


def patched_copy(tmp: Path, patch: Patch | None) -> Path:
    """A copy of the package, with ``patch`` applied; the folder to put on PYTHONPATH."""
    site = tmp / "site"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(ROOT / "nnbench", site / "nnbench")
    if patch is not None:
        path = site / "nnbench" / patch.file
        text = path.read_text()
        if text.count(patch.old) != 1:
            raise SystemExit(f"{patch.name}: the line to patch is not found once in {patch.file}")
        path.write_text(text.replace(patch.old, patch.new))
    return site


def gate(
    site: Path | None, flags: list[str], extra_env: dict[str, str] | None = None
) -> tuple[bool, str, float]:
    """Run .ci/gate (with ``site`` first on PYTHONPATH); (passed, what it said, seconds)."""
    env = dict(os.environ, **(extra_env or {}))
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    done = subprocess.run([str(GATE), *flags], env=env, capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    problems = [
        line.strip()
        for line in lines
        if (line.startswith("  ") and not line.startswith("  note:"))
        or (line.startswith("== the estimator") and not line.endswith("point by point"))
        or (line.startswith("== scipy's") and not line.endswith("call by call"))
        or (line.startswith("== stacks") and not line.endswith("every stackable optimizer"))
    ]
    last = problems[0] if problems else (lines[-1] if lines else done.stderr.strip()[-160:])
    return done.returncode == 0, last, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/mutations.md")
    parser.add_argument("--only", help="run only these planted bugs (names, comma-separated)")
    parser.add_argument("--skip-power", action="store_true", help="no step-size study")
    parser.add_argument(
        "--power-optimizers", help="the step-size study for these optimizers only (comma-separated)"
    )
    parser.add_argument("--skip-harmless", action="store_true", help="no harmless variants")
    parser.add_argument("--harmless", help="only these harmless variants (names, comma-separated)")
    parser.add_argument("--skip-tolerance", action="store_true", help="no tolerance study")
    args = parser.parse_args()
    only = set(args.only.split(",")) if args.only else None
    lines = [
        "## Planted bugs",
        "",
        "| bug | where | caught | what the gate said |",
        "|---|---|---|---|",
    ]
    n_caught = n_bugs = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for bug in BUGS:
            if only and bug.name not in only:
                continue
            passed, said, secs = gate(patched_copy(tmp, bug), [])
            n_bugs += 1
            n_caught += not passed
            lines.append(
                f"| {bug.name} | {bug.where} | {'no' if passed else 'yes'} | "
                f"{said[:160].replace('|', '/')} |"
            )
            print(lines[-1], f"({secs:.0f} s)", flush=True)
        harmless = [
            "",
            "## Harmless variants",
            "",
            "| variant | kind | passed | what the gate said |",
            "|---|---|---|---|",
        ]
        n_alarms = n_harmless = 0
        if not args.skip_harmless:
            variants = [(p.name, p.where, p, [], {}) for p in HARMLESS_PATCHES]
            variants += [(n, "another way to run", None, f, e) for n, f, e in HARMLESS_FLAGS]
            variants += [(n, "another CPU", None, f, e) for n, f, e in kernel_variants()]
            if args.harmless:
                variants = [v for v in variants if v[0] in args.harmless.split(",")]
            for name, where, patch, flags, env in variants:
                site = patched_copy(tmp, patch) if patch is not None else None
                passed, said, secs = gate(site, flags, env)
                n_harmless += 1
                n_alarms += not passed
                harmless.append(
                    f"| {name} | {where} | {'yes' if passed else 'NO'} | "
                    f"{said[:160].replace('|', '/')} |"
                )
                print(harmless[-1], f"({secs:.0f} s)", flush=True)
        power = [
            "",
            "## Smallest step-size error caught",
            "",
            "| optimizer | " + " | ".join(f"{e:.0%}" for e in STEP_ERRORS) + " | smallest |",
            "|---|" + "---|" * (len(STEP_ERRORS) + 1),
        ]
        if not args.skip_power:
            for opt, (file, old, new) in STEP_SITES.items():
                if args.power_optimizers and opt not in args.power_optimizers.split(","):
                    continue
                cells, smallest = [], None
                for error in STEP_ERRORS:
                    patch = Patch(
                        f"{opt} step {1 + error:g}x", opt, file, old, new.format(f=1 + error)
                    )
                    passed, _, _ = gate(patched_copy(tmp, patch), [])
                    cells.append("missed" if passed else "caught")
                    if not passed and smallest is None:
                        smallest = f"{error:.0%}"
                power.append(f"| {opt} | " + " | ".join(cells) + f" | {smallest or 'none'} |")
                print(power[-1], flush=True)
        tolerance = [
            "",
            "## Smallest tolerance change caught (scipy's minimisers)",
            "",
            "| tolerance | "
            + " | ".join(f"x{f:g}, x1/{f:g}" for f in TOLERANCE_FACTORS)
            + " | smallest |",
            "|---|" + "---|" * (len(TOLERANCE_FACTORS) + 1),
        ]
        if not args.skip_tolerance:
            for name, (method, key, default) in TOLERANCES.items():
                cells, smallest = [], None
                for factor in TOLERANCE_FACTORS:
                    caught = []
                    for f in (factor, 1 / factor):
                        patch = Patch(
                            f"{name} x{f:g}", method, "optimizers/scipy_based.py",
                            'options={"maxiter": self.config["mb_maxiter"]}',
                            'options={"maxiter": self.config["mb_maxiter"], '
                            f'**({{"{key}": {default * f!r}}} if self.method == "{method}" else {{}})}}',
                        )  # fmt: skip
                        passed, _, _ = gate(patched_copy(tmp, patch), [])
                        caught.append(not passed)
                    cells.append(" / ".join("caught" if c else "missed" for c in caught))
                    if all(caught) and smallest is None:
                        smallest = f"x{factor:g}"
                tolerance.append(f"| {name} | " + " | ".join(cells) + f" | {smallest or 'none'} |")
                print(tolerance[-1], flush=True)
    summary = (
        f"\n{n_caught} of {n_bugs} planted bugs caught; {n_alarms} false alarm(s) in "
        f"{n_harmless} harmless variants.\n"
    )
    print(summary)
    note = (
        "\nEach row: the patch applied to a copy of the package, then `.ci/gate` (the grids "
        "of `experiments/ci/`, each checked with `nnbench check --strict` against its "
        "`results/ci/<grid>.json`, and the estimator's parity with the runs). Made by "
        "`python benchmarks/mutations.py` "
        f"(Python {sys.version.split()[0]}, {os.cpu_count()} cores).\n"
    )
    if args.out:
        Path(args.out).write_text(
            "# The regression gate against planted bugs\n"
            + summary
            + "\n"
            + "\n".join(lines + harmless + power + tolerance)
            + "\n"
            + note
        )


if __name__ == "__main__":
    main()
