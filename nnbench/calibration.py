"""Rounding variants: the same runs, computed as another machine would compute them.

``nnbench baseline`` measures how far rounding moves each configuration by
running every run again under *variants*:

- ``perturbed`` (every run): each start weight multiplied by ``1 + e u``,
  ``u`` uniform in [-1, 1], ``e`` a few hundred machine epsilons in float64
  and a few in float32 (:data:`PERTURBATION`). It measures how a tiny
  difference grows: the chaos of a configuration, on any machine.
- environment variants (each run gets one, in turn over the seeds): the
  run with 2 BLAS threads (another summation order), and the run under each
  other *kernel family* of the BLAS that this CPU can execute. OpenBLAS
  picks its kernels by CPU; ``OPENBLAS_CORETYPE`` selects another family
  (``Haswell`` is what AMD machines run, ``Sandybridge`` an older family,
  ``SkylakeX`` where AVX-512 exists), and each rounds differently: this is
  what a CI runner or a laptop with another CPU computes. With MKL,
  ``MKL_CBWR`` selects the code path instead (not exercised on the machines
  nnbench is developed on); other BLAS libraries offer no selection, and
  only the perturbation and the threads are measured.

A kernel family is chosen when a BLAS library is loaded, so its runs go to
a child ``nnbench`` process started with the variable set; the family it
really ran is read back from every run's record, and a family the library
did not honour is dropped with a note.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnbench.errors import NnbenchError

# Relative size of the start-weight perturbation. In float64 about 450
# epsilons; in float32 about 8, the size of the differences between kernel
# families there (a float32 run moves 1e-7 to 5e-5 between families, and
# 450 epsilons would move even first-order methods' predictions).
PERTURBATION = {"float64": 1e-13, "float32": 1e-6}

# x86-64 kernel families of OpenBLAS and the CPU flags each needs (Linux's
# /proc/cpuinfo names); a family the CPU lacks would die of an illegal instruction.
OPENBLAS_FAMILIES = (
    ("SkylakeX", {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512cd"}),
    ("Haswell", {"avx2", "fma"}),
    ("Sandybridge", {"avx"}),
)
# MKL's code paths (MKL_CBWR) and the flags each needs.
MKL_FAMILIES = (("AVX2", {"avx2", "fma"}), ("AVX", {"avx"}), ("COMPATIBLE", set()))
ENV_KEY = {"openblas": "OPENBLAS_CORETYPE", "mkl": "MKL_CBWR"}


@dataclass(frozen=True)
class Variant:
    """One way to recompute a run: its name, BLAS threads, environment, perturbation."""

    name: str
    threads: int | None = None  # None: the runs' own
    env: Mapping[str, str] = field(default_factory=dict)
    perturb: bool = False
    family: str | None = None  # the kernel family it asks for, to check it was honoured


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux); empty where they cannot be read."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def blas_library() -> tuple[str | None, str | None]:
    """The BLAS numpy uses here, ``(internal_api, kernel family)``: ``("openblas", "Haswell")``."""
    import numpy  # noqa: F401  (threadpoolctl sees only loaded libraries)
    from threadpoolctl import threadpool_info

    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return lib.get("internal_api"), lib.get("architecture")
    return None, None


def kernel_families(flags: set[str] | None = None) -> tuple[str | None, str | None, list[str]]:
    """``(library, this process's family, the other families this CPU can run)``."""
    library, current = blas_library()
    flags = cpu_flags() if flags is None else flags
    table = {"openblas": OPENBLAS_FAMILIES, "mkl": MKL_FAMILIES}.get(library or "")
    if table is None or not flags:
        return library, current, []
    runnable = [name for name, needs in table if needs <= flags]
    return library, current, [f for f in runnable if (current or "").lower() != f.lower()]


def variants(cores: int | None = None) -> tuple[list[Variant], list[str]]:
    """The environment variants of this machine, and notes on what could not be varied."""
    cores = os.cpu_count() or 1 if cores is None else cores
    out, notes = [], []
    if cores >= 2:
        out.append(Variant("threads-2", threads=2))
    else:
        notes.append("one core: no 2-thread variant")
    library, current, others = kernel_families()
    key = ENV_KEY.get(library or "")
    if key is None:
        notes.append(
            f"BLAS {library or 'unknown'} offers no kernel selection: only the perturbation "
            "and the threads are measured"
        )
    elif not others:
        notes.append(f"{library} on this CPU runs no other kernel family than {current}")
    for family in others:
        out.append(Variant(f"blas-{family}", env={key: family}, family=family))
    return out, notes


def assign(runs: Sequence[tuple[str, int]], env_variants: Sequence[Variant]) -> dict[int, Variant]:
    """Which environment variant recomputes each run (index into ``runs``, which are
    ``(config, seed)`` pairs): the variants in turn over a configuration's seeds,
    starting one further for each configuration, so that every variant covers
    every kind of run and each run costs one recomputation, not one per variant."""
    if not env_variants:
        return {}
    out: dict[int, Variant] = {}
    configs: dict[str, int] = {}
    seen: dict[str, int] = {}
    for i, (config, _seed) in enumerate(runs):
        offset = configs.setdefault(config, len(configs))
        k = seen.get(config, 0)
        seen[config] = k + 1
        out[i] = env_variants[(offset + k) % len(env_variants)]
    return out


def run_variant(
    variant: Variant,
    specs: Sequence[Any],
    folder: Path,
    jobs: int,
    threads: int,
    run_here: Callable[[Sequence[Any], Path, int, int], Any],
) -> None:
    """Run ``specs`` under ``variant`` into ``folder``: here when the variant needs no
    environment of its own, else in a child ``nnbench`` process that has it."""
    n_threads = variant.threads or threads
    if not variant.env:
        run_here(specs, folder, jobs, n_threads)
        return
    from nnbench import results

    done_before = results.stored_runs(folder)
    if all(s.run_id in done_before and done_before[s.run_id].status.is_final for s in specs):
        return  # made before (a baseline of the same results, after Ctrl-C say)
    folder.mkdir(parents=True, exist_ok=True)
    spec_file = folder / "specs.json"
    spec_file.write_text(json.dumps([s.to_dict() for s in specs]))
    # the child imports nnbench (and plugins) from where this process does
    path = os.pathsep.join(os.getcwd() if p == "" else p for p in sys.path)
    env = {**os.environ, **variant.env, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-m", "nnbench.calibration", str(spec_file), str(folder),
         "--jobs", str(jobs), "--threads", str(n_threads)],
        env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode == 130:
        raise KeyboardInterrupt
    if done.returncode != 0:
        raise NnbenchError(
            f"the calibration runs under {variant.name} ended with status {done.returncode}; "
            "run `nnbench baseline` again"
        )


def honoured(variant: Variant, blas: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a run's recorded BLAS libraries ran the family the variant asked for."""
    if variant.family is None:
        return True
    families = {str(lib.get("architecture", "")).lower() for lib in blas}
    return variant.family.lower() in families


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nnbench.calibration SPECS.json FOLDER --jobs J --threads T``: run the
    specs into the folder (how a variant with an environment of its own runs)."""
    import argparse

    from nnbench import runner
    from nnbench.experiment import RunSpec

    parser = argparse.ArgumentParser(prog="python -m nnbench.calibration")
    parser.add_argument("specs")
    parser.add_argument("folder")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    specs = [RunSpec.from_dict(d) for d in json.loads(Path(args.specs).read_text())]
    execution = runner.Execution(n_jobs=args.jobs, threads=args.threads, log=None)
    summary = runner.run_specs(specs, Path(args.folder), {"name": "calibration"}, execution)
    return 130 if summary.interrupted else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
