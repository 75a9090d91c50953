"""The package stays readable: small modules, short functions (the CLI's parser excepted), one
meaning per class name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "worker"
MODULE_MAX_LINES = 400
FUNCTION_MAX_LINES = 60
# One function lists every command and option of the CLI: long by nature, flat to read.
LONG_FUNCTIONS_ALLOWED = {("worker/cli/main.py", "build_parser")}

MODULES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_module_is_at_most_400_lines(path):
    """No module of worker/ is over 400 lines: past that, it holds two concepts."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MODULE_MAX_LINES, f"{_name(path)} has {lines} lines"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_functions_are_at_most_60_lines(path):
    """No function or method of worker/ is over 60 lines, except the allowlisted parser."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > FUNCTION_MAX_LINES
        and (_name(path), node.name) not in LONG_FUNCTIONS_ALLOWED
    ]
    assert not long, f"{_name(path)}: {', '.join(long)}"


def test_the_allowlist_names_only_existing_long_functions():
    """Each allowlisted function exists and is still long: the list never outlives its reason."""
    for module, name in LONG_FUNCTIONS_ALLOWED:
        tree = ast.parse((PACKAGE.parent / module).read_text(encoding="utf-8"))
        found = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name]
        assert found, f"{module}: no function {name}"
        assert any(n.end_lineno and n.end_lineno - n.lineno + 1 > FUNCTION_MAX_LINES for n in found)


def _classes_by_name() -> dict[str, list[str]]:
    """Where each top-level class of worker/ is defined (``module:line``), by name."""
    found: dict[str, list[str]] = {}
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                found.setdefault(node.name, []).append(f"{_name(path)}:{node.lineno}")
    return found


def test_no_class_name_is_defined_twice():
    """A class name means one thing in worker/: two classes of one name are two ideas that a
    reader (and an import) confuses."""
    twice = {name: places for name, places in _classes_by_name().items() if len(places) > 1}
    assert not twice, f"class names defined more than once: {twice}"
