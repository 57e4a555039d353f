"""The layout's rules, checked on the code itself: who may import whom, sizes, stage names.

See the layout table in README.md. A rule broken on purpose goes in an allow-list here, with
its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO

pytestmark = pytest.mark.unit

CODE = ("schemas", "transforms", "pipelines", "runners")
# (package, the packages of ours it may import)
MAY_IMPORT = {
    "schemas": {"schemas"},
    "transforms": {"schemas", "transforms"},
    "runners": {"schemas", "runners"},
    "pipelines": {"schemas", "transforms", "runners", "pipelines"},
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
# functions kept longer, and why
LONG_FUNCTIONS: dict[str, str] = {}


def _modules(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (REPO / top).rglob("*.py"))


def _ours(node: ast.AST) -> list[str]:
    """The packages of ours an import names (gristmill.<package>...)."""
    names = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module]
    return [n.split(".")[1] for n in names if n.startswith("gristmill.") and n.count(".") >= 1]


@pytest.mark.parametrize("top", CODE)
def test_each_folder_imports_only_what_the_layout_allows(top):
    for path in _modules(top):
        for node in ast.walk(ast.parse(path.read_text())):
            for package in _ours(node):
                assert package in MAY_IMPORT[top], (
                    f"{path.relative_to(REPO)} imports gristmill.{package}"
                )


def test_no_module_or_function_is_too_long():
    too_long = []
    for path in _modules(*CODE, "bench", "gristmill"):
        rel = path.relative_to(REPO).as_posix()
        text = path.read_text()
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{rel}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                key = f"{rel}:{node.name}"
                if lines > MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS:
                    too_long.append(f"{key}: {lines} lines")
    assert not too_long, too_long


def test_pipelines_name_no_stage():
    """A new stage is one module and one registry line: nothing else in pipelines/ may name a
    stage or its section. Two names are also the release contract's: `tokenizer` (the
    manifest's field) and `refresh` (the job mode: its command and manifest section).
    pipelines/refresh.py is the driver side of the dedup_parent stage (the parent release,
    its lineage and tokenizer), so it knows that stage."""
    from gristmill.pipelines import registry

    names = {s.name for s in registry.stages()} | {s.section for s in registry.stages()}
    names -= {"tokenizer", "refresh"}
    found = []
    for path in _modules("pipelines"):
        rel = path.relative_to(REPO).as_posix()
        if rel in ("pipelines/registry.py", "pipelines/refresh.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not found, found
