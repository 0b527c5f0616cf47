"""Every bug the mutation studies plant still finds the one line it patches.

A patch whose line the source no longer holds cannot be planted: the study
would stop at it, or, worse, a study that skipped it would count one bug
fewer. The studies run for many minutes (`benchmarks/mutations.py`,
`benchmarks/stat_mutations.py`, `benchmarks/compare_false_alarms.py`); this
checks, in a moment, that each patch's line occurs exactly once.
"""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _module(name):
    sys.path.insert(0, str(BENCHMARKS))  # stat_mutations imports mutations by name
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))


def _sites():
    mutations = _module("mutations")
    stat = _module("stat_mutations")
    alarms = _module("compare_false_alarms")
    for p in (*mutations.BUGS, *mutations.HARMLESS_PATCHES, *stat.BUGS, *stat.HARMLESS):
        if p.old:  # an empty patch is the unpatched control
            yield p.name, p.file, p.old
    for name, (file, old, _) in mutations.STEP_SITES.items():
        yield f"{name} step error", file, old
    yield "compare's false-alarm bug", alarms.BUG[0], alarms.BUG[1]


@pytest.mark.parametrize(("name", "file", "old"), list(_sites()), ids=lambda v: str(v)[:40])
def test_every_planted_bug_finds_its_line_once(name, file, old):
    text = (ROOT / "nnbench" / file).read_text()
    assert text.count(old) == 1, f"{name!r}: its line occurs {text.count(old)} times in {file}"
