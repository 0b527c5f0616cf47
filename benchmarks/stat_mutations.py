"""The mutation study of the statistics: do the fast tier's tests catch planted bugs?

Usage: python benchmarks/stat_mutations.py [--only NAME,...] [--skip-harmless]
       [--harmless NAME,...] [--out results/stat-mutations.md]

Rerun the whole study with ``python benchmarks/stat_mutations.py`` (about 16
minutes on 2 cores); one bug or a few with ``--only "NAME,NAME"`` (the names
of the table; printed, not written, unless ``--out`` is given).

Each planted bug is one textual patch of nnbench's statistics (``stats.py``,
``compare.py``, ``report/tables.py``, ``plan.py``), applied to a copy of the
package (``Patch`` and ``patched_copy`` of ``benchmarks/mutations.py``: the
patched text must occur exactly once in its file). The statistics tests of
the fast tier then run with that copy first on ``PYTHONPATH``::

    python -m pytest -q -x -p no:cacheprovider --import-mode=importlib \\
        tests/test_stats.py tests/test_compare.py tests/test_report.py \\
        tests/test_plan.py tests/test_check.py tests/test_verdict_rules.py

from a temporary folder, not from the repository: pytest's default import
mode puts the repository (the folder above ``tests/``, a package) first on
``sys.path``, and ``python -m`` the working folder, either of which would
import the unpatched ``nnbench`` and hide every bug. Before the bugs, the
study checks that the copy is the one imported (``nnbench.__file__`` in a
subprocess, and a copy that raises on import must fail the tests).

A bug is *caught* when that run fails; the table names the first test that
failed. Each harmless variant (the unpatched copy, a refactor that computes
the same numbers another way) must pass: a failure is a false alarm.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mutations import Patch, patched_copy

# ruff: noqa: E501 - a patch is source as it stands, whatever its length

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_stats.py",
    "tests/test_compare.py",
    "tests/test_report.py",
    "tests/test_plan.py",
    "tests/test_check.py",
    "tests/test_verdict_rules.py",  # the tests this study added (when present)
]
PYTEST = ["-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "--import-mode=importlib"]

BUGS = [
    # -- changed constants --
    Patch(
        "t interval at 99% beyond 3 values",
        "t_interval: the report's intervals too wide",
        "stats.py",
        "half = float(special.stdtrit(n - 1, 0.5 + level / 2))",
        "half = float(special.stdtrit(n - 1, 0.5 + (0.99 if n > 3 else level) / 2))",
    ),
    Patch(
        "accuracy margin 0.002 -> 0.02",
        "compare: default margin of val_accuracy",
        "compare.py",
        '"val_accuracy": 0.002,',
        '"val_accuracy": 0.02,',
    ),
    Patch(
        "time margin 25% -> 5%",
        "compare: default margin of CPU seconds to target",
        "compare.py",
        '"train_cpu_seconds_to_target": "25%",',
        '"train_cpu_seconds_to_target": "5%",',
    ),
    Patch(
        "AlgoPerf max ratio 4 -> 5",
        "AlgoPerf: cut-off of slow times",
        "stats.py",
        "ALGOPERF_MAX_RATIO = 4.0",
        "ALGOPERF_MAX_RATIO = 5.0",
    ),
    Patch(
        "AlgoPerf 100 points -> 50",
        "AlgoPerf: the profile's grid of tau",
        "stats.py",
        "ALGOPERF_POINTS = 100",
        "ALGOPERF_POINTS = 50",
    ),
    Patch(
        "IQM bootstrap percentiles 2.5/97.5 -> 5/95",
        "report: the IQM's interval a 90% one",
        "report/tables.py",
        '                "low": float(np.percentile(reps, 2.5)),\n                "high": float(np.percentile(reps, 97.5)),\n            }\n        )\n    pi_rows = []',
        '                "low": float(np.percentile(reps, 5)),\n                "high": float(np.percentile(reps, 95)),\n            }\n        )\n    pi_rows = []',
    ),
    Patch(
        "score bootstrap quantiles 2.5/97.5 -> 5/95",
        "report: the AlgoPerf score's interval a 90% one",
        "report/tables.py",
        '"low": reps.quantile(0.025),\n            "high": reps.quantile(0.975),',
        '"low": reps.quantile(0.05),\n            "high": reps.quantile(0.95),',
    ),
    Patch(
        "IQM quartile 0.25 -> 0.2 (a 20% trimmed mean)",
        "iqm",
        "stats.py",
        "np.clip(np.minimum(edges[1:], 0.75) - np.maximum(edges[:-1], 0.25), 0.0, None) / 0.5",
        "np.clip(np.minimum(edges[1:], 0.8) - np.maximum(edges[:-1], 0.2), 0.0, None) / 0.6",
    ),
    # -- a lost step of a procedure --
    Patch(
        "noise floor ignored in floored_t",
        "floored_t: equal moves become certainty",
        "stats.py",
        "se = max(sd, floor) / math.sqrt(n)",
        "se = sd / math.sqrt(n)",
    ),
    Patch(
        "Holm without the running maximum",
        "holm: adjusted p-values not monotone",
        "stats.py",
        "running = max(running, min(1.0, min(m - rank, cap) * float(p[i])))",
        "running = min(1.0, min(m - rank, cap) * float(p[i]))",
    ),
    Patch(
        "Holm's step-down a fixed multiplier (Bonferroni)",
        "holm: every step multiplied by the cap",
        "stats.py",
        "running = max(running, min(1.0, min(m - rank, cap) * float(p[i])))",
        "running = max(running, min(1.0, cap * float(p[i])))",
    ),
    Patch(
        "equivalence tests out of Holm's family",
        "decide: equivalence p-values unadjusted",
        "stats.py",
        "adjusted = holm(ps, most_true=len(tests)) if tests else np.array([])",
        "adjusted = np.concatenate([holm(ps[: len(tests)]), ps[len(tests) :]]) if tests else np.array([])",
    ),
    Patch(
        "study verdicts: every cell-and-seed difference a unit",
        "verdicts_of: seeds' cells taken as independent",
        "report/tables.py",
        "d = np.array([np.mean(v) for _, v in sorted(by_seed.items())])",
        "d = np.array([x for _, v in sorted(by_seed.items()) for x in v])",
    ),
    Patch(
        "chance level ignored in normalised scores",
        "normalised_scores: raw accuracy",
        "report/tables.py",
        'out["score"] = (last[metric].to_numpy(dtype=float) - chance) / (1.0 - chance)',
        'out["score"] = last[metric].to_numpy(dtype=float)',
    ),
    Patch(
        "alpha not split between the study and its cells",
        "verdicts_of: 2 alpha over both tables",
        "report/tables.py",
        "return _holm_verdicts(study, alpha / 2, step), _holm_verdicts(per_cell, alpha / 2, step)",
        "return _holm_verdicts(study, alpha, step), _holm_verdicts(per_cell, alpha, step)",
    ),
    Patch(
        "report's test chosen at alpha instead of Holm's first level",
        "_holm_verdicts: sign-flip where it can never decide",
        "report/tables.py",
        "    level = alpha / len(rows)\n",
        "    level = alpha\n",
    ),
    Patch(
        "plan: the study's pairs get all of alpha",
        "plan: alpha not split",
        "plan.py",
        "pairs, ALPHA / 2, seeds, study_noise))",
        "pairs, ALPHA, seeds, study_noise))",
    ),
    Patch(
        "plan: compare's noise without the sqrt(2) of two draws",
        "plan: compare's detectable difference",
        "plan.py",
        "compare_noise = seed_sd * math.sqrt(2) if",
        "compare_noise = seed_sd if",
    ),
    # -- tie rules --
    Patch(
        "sign-flip: ties not extreme",
        "sign_flip_p: p-values too small",
        "stats.py",
        "extreme += int(np.count_nonzero(np.abs(base + rest) >= cut))",
        "extreme += int(np.count_nonzero(np.abs(base + rest) > observed))",
    ),
    Patch(
        "a difference of exactly the margin is not enough",
        "decide: abs(mean) > margin",
        "stats.py",
        "if p_holm < alpha and abs(d.mean) >= d.margin:",
        "if p_holm < alpha and abs(d.mean) > d.margin:",
    ),
    Patch(
        "probability of improvement: ties count 0",
        "improvement_rows",
        "stats.py",
        "return greater + 0.5 * ties",
        "return greater",
    ),
    # -- degrees of freedom --
    Patch(
        "floored_t with n degrees of freedom",
        "floored_t: df n - 1 -> n",
        "stats.py",
        'return _t_result("paired t", n, mean, se, n - 1, margin, floored)',
        'return _t_result("paired t", n, mean, se, n, margin, floored)',
    ),
    Patch(
        "Welch with the pooled degrees of freedom",
        "welch_t: df na + nb - 2",
        "stats.py",
        "df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))",
        "df = na + nb - 2",
    ),
    # -- margin direction --
    Patch(
        "TOST margins swapped",
        "two one-sided tests: (mean + margin) <-> (mean - margin)",
        "stats.py",
        "above = float(special.stdtr(df, -(mean + margin) / se))  # H0: mean <= -margin\n        below = float(special.stdtr(df, (mean - margin) / se))",
        "above = float(special.stdtr(df, -(mean - margin) / se))  # H0: mean <= -margin\n        below = float(special.stdtr(df, (mean + margin) / se))",
    ),
    Patch(
        "better and worse inverted",
        "decide: the verdict's sign",
        "stats.py",
        'verdict = "better" if (d.mean > 0) == higher_better else "worse"',
        'verdict = "better" if (d.mean > 0) != higher_better else "worse"',
    ),
    Patch(
        "better means higher whatever the metric",
        "decide: higher_better ignored (costs, times)",
        "stats.py",
        'verdict = "better" if (d.mean > 0) == higher_better else "worse"',
        'verdict = "better" if d.mean > 0 else "worse"',
    ),
    # -- compare's pairing and failures --
    Patch(
        "unpaired runs of equal count tested as paired",
        "decide: Welch's fallback a paired t",
        "stats.py",
        "            result = welch_t(a, b, floor, margin)",
        "            result = floored_t(b - a, floor, margin) if len(a) == len(b) else welch_t(a, b, floor, margin)",
    ),
    Patch(
        "a seed with no finite value only in B decides nothing",
        "compare: the 'lost' rule removed",
        "compare.py",
        "        if lost:  # a seed with a value in A and none in B: as a failure, worse\n",
        "        if False:  # a seed with a value in A and none in B: as a failure, worse\n",
    ),
    # -- the choice of test --
    Patch(
        "always sign-flip",
        "choose_test: 2 / 2^n <= level -> < 1 (the report's tests and the plan)",
        "stats.py",
        'return "sign-flip" if 2.0 / 2**n <= level else "t (floored)"',
        'return "sign-flip" if 2.0 / 2**n < 1 else "t (floored)"',
    ),
]

HARMLESS = [
    Patch("the unpatched copy", "control", "stats.py", "", ""),  # old "" is never used
    Patch(
        "Holm vectorised (np.maximum.accumulate)",
        "refactor",
        "stats.py",
        '    running = 0.0\n    for rank, i in enumerate(tested[np.argsort(p[tested], kind="stable")]):\n        running = max(running, min(1.0, min(m - rank, cap) * float(p[i])))\n        adjusted[i] = running\n',
        '    order = tested[np.argsort(p[tested], kind="stable")]\n    steps = np.minimum(m - np.arange(m), cap)\n    adjusted[order] = np.maximum.accumulate(np.minimum(1.0, steps * p[order]))\n',
    ),
    Patch(
        "t interval's quantile by scipy.stats.t.ppf",
        "rounding",
        "stats.py",
        "half = float(special.stdtrit(n - 1, 0.5 + level / 2))",
        "half = float(stats.t.ppf(0.5 + level / 2, n - 1))",
    ),
    Patch(
        "probability of improvement as (1 + P(X > Y) - P(X < Y)) / 2",
        "rounding",
        "stats.py",
        "return greater + 0.5 * ties",
        "return 0.5 * (1.0 + greater - (x[:, :, None] < y[:, None, :]).mean(axis=(1, 2)))",
    ),
    # within the rounding allowance of ``cut``, ``>`` and ``>=`` count the same patterns
    Patch(
        "sign-flip: >= cut -> > cut",
        "equivalent (cut is below the observed sum)",
        "stats.py",
        "extreme += int(np.count_nonzero(np.abs(base + rest) >= cut))",
        "extreme += int(np.count_nonzero(np.abs(base + rest) > cut))",
    ),
]


NOTES = """
## Notes

- `sign-flip: >= cut -> > cut` is the literal form of "ties not counted as extreme", and
  it is not a bug: `cut` sits a rounding allowance (1e-9 of the sums) below the observed
  sum, so a pattern that ties the observed sum is above `cut` under either comparison;
  the two differ only for a sum exactly equal to `cut`, which no data gives. The planted
  tie bug compares with the observed sum itself (`> observed`), which drops ties.
- The tests added for the bugs the existing tests missed are in
  `tests/test_verdict_rules.py`, each on a case whose answer is worked out by hand;
  without them (the first run of this study) 20 of the 29 bugs were caught.
"""


def check_patches(patches: list[Patch]) -> None:
    """Every patched text occurs exactly once in its file (before anything runs)."""
    for p in patches:
        if not p.old:
            continue
        text = (ROOT / "nnbench" / p.file).read_text()
        count = text.count(p.old)
        assert count == 1, f"{p.name}: the text to patch occurs {count} times in {p.file}"


def run_tests(site: Path, work: Path) -> tuple[bool, str, float]:
    """The fast tier's statistics tests with ``site`` first on PYTHONPATH, from
    ``work`` (not the repository); (passed, the first failure, seconds)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(site), env.get("PYTHONPATH", "")] if p)
    tests = [str(ROOT / t) for t in TESTS if (ROOT / t).exists()]
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *PYTEST, *tests], env=env, cwd=work, capture_output=True, text=True
    )
    secs = time.perf_counter() - t0
    lines = done.stdout.splitlines()
    first = next((ln for ln in lines if re.match(r"(FAILED|ERROR) ", ln)), "")
    if not first and done.returncode:
        first = (lines[-1] if lines else done.stderr.strip()[-160:]) or f"exit {done.returncode}"
    return done.returncode == 0, first, secs


def check_shadowing(tmp: Path) -> None:
    """The patched copy, not the editable install, is what the tests import."""
    site = patched_copy(tmp, None)
    env = dict(os.environ, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    where = subprocess.run(
        [sys.executable, "-c", "import nnbench.stats; print(nnbench.stats.__file__)"],
        env=env, cwd=tmp, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(site), f"nnbench imported from {where}, not {site}"
    print(f"the copy is imported: {where}", flush=True)
    canary = Patch(
        "canary", "", "stats.py", "ALGOPERF_POINTS = 100",
        'ALGOPERF_POINTS = 100\nraise RuntimeError("the patched copy was imported")',
    )  # fmt: skip
    passed, said, _ = run_tests(patched_copy(tmp, canary), tmp)
    assert not passed, "a copy that raises on import passed: the tests do not import the copy"
    print(f"a copy that raises on import fails the tests: {said}", flush=True)


def cell(text: str) -> str:
    return text.replace("|", "/")


def first_test(said: str) -> str:
    """``FAILED tests/x.py::test_y - message`` -> ``tests/x.py::test_y``."""
    m = re.match(r"(?:FAILED|ERROR) (?:\S*?/)?(tests/\S+)", said)
    return m.group(1) if m else said[:120]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only these planted bugs (names, comma-separated)")
    parser.add_argument("--skip-harmless", action="store_true", help="no harmless variants")
    parser.add_argument("--harmless", help="only these harmless variants (names, comma-separated)")
    parser.add_argument(
        "--out", help="the table (default results/stat-mutations.md for a whole study)"
    )
    args = parser.parse_args()
    assert all("," not in p.name for p in BUGS + HARMLESS), "--only splits names on commas"
    only = set(args.only.split(",")) if args.only else None
    if only and only - {b.name for b in BUGS}:
        parser.error(f"no such bug: {', '.join(sorted(only - {b.name for b in BUGS}))}")
    bugs = [b for b in BUGS if not only or b.name in only]
    harmless = [] if args.skip_harmless else HARMLESS
    if args.harmless:
        harmless = [h for h in HARMLESS if h.name in args.harmless.split(",")]
    if only and not args.harmless:
        harmless = []
    check_patches(bugs + harmless)
    out = args.out or (None if only else str(ROOT / "results" / "stat-mutations.md"))
    rows = ["| bug | what it breaks | caught | first test that failed | seconds |",
            "|---|---|---|---|---|"]  # fmt: skip
    hrows = ["| variant | kind | passed | first test that failed | seconds |",
             "|---|---|---|---|---|"]  # fmt: skip
    n_caught = n_alarms = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        check_shadowing(tmp)
        for bug in bugs:
            passed, said, secs = run_tests(patched_copy(tmp, bug), tmp)
            n_caught += not passed
            caught = "no" if passed else "yes"
            rows.append(
                f"| {cell(bug.name)} | {cell(bug.where)} | {caught} | "
                f"{cell(first_test(said)) if not passed else ''} | {secs:.0f} |"
            )
            print(rows[-1], flush=True)
            if not passed:
                print(f"    {said[:200]}", flush=True)
        for h in harmless:
            passed, said, secs = run_tests(patched_copy(tmp, h if h.old else None), tmp)
            n_alarms += not passed
            hrows.append(
                f"| {cell(h.name)} | {cell(h.where)} | {'yes' if passed else 'NO'} | "
                f"{cell(first_test(said)) if not passed else ''} | {secs:.0f} |"
            )
            print(hrows[-1], flush=True)
    summary = (
        f"{n_caught} of {len(bugs)} planted bugs caught; "
        f"{len(harmless) - n_alarms} of {len(harmless)} harmless variants passed "
        f"({n_alarms} false alarm(s))."
    )
    print(summary)
    if out:
        command = "python benchmarks/stat_mutations.py" + (
            f" --only {args.only!r}" if args.only else ""
        )
        tests = " ".join(t for t in TESTS if (ROOT / t).exists())
        Path(out).write_text(
            "# The statistics tests against planted bugs\n\n"
            f"{summary}\n\n"
            f"Made by `{command}` on {datetime.date.today().isoformat()} (Python "
            f"{sys.version.split()[0]}, {os.cpu_count()} cores). Each bug is one textual "
            "patch of a copy of `nnbench` (`benchmarks/stat_mutations.py` lists them); the "
            "fast tier's statistics tests then run with the copy first on `PYTHONPATH`, "
            "from a temporary folder:\n\n"
            f"    python -m pytest -q -x -p no:cacheprovider --import-mode=importlib {tests}\n\n"
            "A bug is caught when that run fails; the first failing test is named. Before the "
            "bugs the study checks that the copy is what the tests import (`nnbench.__file__` "
            "in a subprocess; a copy that raises on import fails the run): pytest's default "
            "import mode, or running from the repository, imports the unpatched package and "
            "would catch nothing.\n\n"
            "## Planted bugs\n\n" + "\n".join(rows) + "\n\n"
            "## Harmless variants (must pass)\n\n" + "\n".join(hrows) + "\n" + NOTES
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
