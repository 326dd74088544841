"""The package tree shows the pipeline: one sub-package per stage, few top-level modules, no import cycle,
contract names in a module that imports nothing, and no file over 400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
PACKAGE = SRC / "aemt"
STAGES = ("dataset", "features", "align", "models", "train", "evaluate", "report")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """aemt modules imported anywhere in `path` (module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def test_top_level_holds_entry_points_and_shared_helpers_only():
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(modules) <= 10, modules
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert set(STAGES) <= packages, packages
    for stage in (*STAGES, "commands"):
        assert ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_contract_names_live_in_a_module_that_imports_nothing():
    tree = ast.parse((PACKAGE / "constants.py").read_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {"MODALITIES", "FEATURE_DIR", "SPLITS", "SCALES", "EXCLUDED", "MANIFEST_COLUMNS"}
    names |= {"PRETRAIN_HISTORY", "FINETUNE_HISTORY", "META_COLUMNS", "STATUSES"}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "constants.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                defined = {t.id for t in node.targets if isinstance(t, ast.Name)} & names
                assert not defined, f"{path.relative_to(REPO_ROOT)} defines {defined} again"


def test_no_file_over_400_lines():
    roots = [PACKAGE, REPO_ROOT / "tests", REPO_ROOT / "benchmarks", REPO_ROOT / "rules"]
    long = {
        str(p.relative_to(REPO_ROOT)): n
        for root in roots
        for p in root.rglob("*")
        if p.suffix in (".py", ".smk") and (n := len(p.read_text().splitlines())) > 400
    }
    assert not long, long
