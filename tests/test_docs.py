"""The documents name only what exists: docs/architecture.md's module map is the
package's modules, each once; every `nnbench COMMAND`, every repository path and
every `module.name` of nnbench the README and docs/ mention exists; every relative
link resolves."""

import argparse
import importlib
import re
from pathlib import Path

import pytest

import nnbench
from nnbench.cli import build_parser

FILE_SUFFIXES = {"md", "html", "py", "toml", "json", "png", "svg", "csv", "parquet", "gz",
                 "npy", "txt", "tex", "pkl", "cfg", "lock"}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(nnbench.__file__).parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def module_map() -> dict[str, list[str]]:
    """The map's entries: a module file, or a package with the modules it lists
    (its description, and the indented lines under it, name them, comma-separated)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = text.split("```\nnnbench/\n", 1)[1].split("```", 1)[0]
    entries: dict[str, list[str]] = {}
    current = ""
    for line in block.splitlines():
        if re.match(r"  \S", line):
            current, _, rest = line.strip().partition(" ")
            assert current not in entries, f"{current} is in the map twice"
            entries[current] = []
        else:
            rest = line
        if current.endswith("/"):
            for item in re.sub(r"\([^)]*\)", "", rest).split(","):
                if item.strip():
                    entries[current].append(item.split()[0])
    return entries


def test_the_module_map_is_the_package_each_module_once():
    entries = module_map()
    files = {p.name for p in PACKAGE.glob("*.py")}
    packages = {p.name + "/" for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert set(entries) == files | packages
    for package in packages:
        listed = entries[package]
        assert len(listed) == len(set(listed)), f"{package} lists a module twice"
        assert set(listed) == {p.stem for p in (PACKAGE / package).glob("*.py")}, package


def commands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_every_command_path_link_and_name_a_document_mentions_exists(path):
    text = path.read_text()
    known = commands()
    for command in re.findall(r"`nnbench ([a-z][a-z-]*)", text):
        assert command in known, f"{path.name}: nnbench {command} is not a command"
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name}: the link {target} leads nowhere"
    for mentioned in re.findall(
        r"`((?:nnbench|benchmarks|experiments|tests|docs|results|\.ci)/[^`\s<>*]+)`", text
    ):
        mentioned = mentioned.split(":")[0].split("::")[0].rstrip("/")
        assert (ROOT / mentioned).exists(), f"{path.name}: {mentioned} does not exist"
    for dotted in re.findall(r"`([a-z_]+(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?:\(|`)", text):
        if dotted.rsplit(".", 1)[1] in FILE_SUFFIXES:
            continue  # a file's name, not a module's attribute
        assert _resolves(dotted), f"{path.name}: {dotted} names nothing in nnbench"


def _resolves(dotted: str) -> bool:
    """Whether ``module.name...`` is a module of nnbench and its attributes; a first
    part that is no module of nnbench is not nnbench's to check."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = "nnbench." + ".".join(parts[:i])
        try:
            obj = importlib.import_module(name)
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return parts[0] not in _MODULES


_MODULES = {p.stem for p in PACKAGE.glob("*.py")} | {
    p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()
}
