"""Which runs a change of scipy's tolerances can change at all.

Usage: python benchmarks/tolerance_reach.py EXPERIMENT.toml [--factors 2,0.5,10,0.1,100,0.01]

Runs every CG and L-BFGS-B run of the experiment in this process, once as
nnbench runs it and once per tolerance and factor with that tolerance of
scipy's minimiser scaled, and counts the runs whose rows (every number but
the clocks) changed by one bit or more. A change that moves no run of an
experiment is an equivalent mutant there: no gate can see it, and none needs
to. Also prints the smallest and median gradient (max-norm) scipy ended a
minimisation with: a gradient tolerance acts only where gradients fall to it.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from nnbench.build import build_run
from nnbench.data import load_dataset
from nnbench.experiment import load_experiment

# scipy's defaults: CG gtol 1e-5; L-BFGS-B gtol 1e-5 and ftol 2.22e-9
TOLERANCES = (
    ("CG", "gtol", 1e-5),
    ("L-BFGS-B", "gtol", 1e-5),
    ("L-BFGS-B", "ftol", 2.220446049250313e-09),
)
NAMES = {"CG": "cg", "L-BFGS-B": "lbfgsb"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment")
    parser.add_argument("--factors", default="2,0.5,10,0.1,100,0.01")
    args = parser.parse_args()
    factors = [float(f) for f in args.factors.split(",")]
    exp = load_experiment(args.experiment)
    ds = load_dataset(exp.values["dataset"], mmap=True, options=exp.values["data_options"])
    splits = {"train": ds.train, "valid": ds.valid, "test": ds.test}
    real = optimize.minimize
    override: dict[str, float] = {}
    ends: dict[str, list[float]] = {"CG": [], "L-BFGS-B": []}

    def minimize(fun, x0, *a, method=None, options=None, **kw):
        options = {**(options or {}), **override.get(method, {})}
        result = real(fun, x0, *a, method=method, options=options, **kw)
        ends[method].append(float(np.max(np.abs(result.jac))))
        return result

    optimize.minimize = minimize

    def digest(spec) -> str:
        rows = build_run(spec.values, spec.optimizer, splits, ds.n_classes, spec.options)().rows
        kept = [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]
        return hashlib.sha256(json.dumps(kept, default=str).encode()).hexdigest()

    with threadpool_limits(1):
        for method, key, default in TOLERANCES:
            specs = [s for s in exp.runs() if s.optimizer == NAMES[method]]
            if not specs:
                continue
            override.clear()
            ends[method].clear()
            base = {s.run_id: digest(s) for s in specs}
            g = np.array(ends[method])
            print(
                f"{method}: {len(specs)} runs; minimisations end at |g|max "
                f"{g.min():.2g} (smallest), {np.median(g):.2g} (median)",
                flush=True,
            )
            for f in factors:
                override[method] = {key: default * f}
                moved = sum(digest(s) != base[s.run_id] for s in specs)
                print(f"  {key} x{f:g}: {moved} of {len(specs)} runs changed", flush=True)
    optimize.minimize = real


if __name__ == "__main__":
    main()
