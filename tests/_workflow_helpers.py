"""Run the Snakemake workflow on a copy of the workflow files in a temporary directory."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "rules", "workflow", "config", "profiles", "envs")
# Targets built once per test session by the `tiny_run` fixture (tests/conftest.py).
TINY_TARGETS = ("all", "sensitivity", "robustness", "report")


def read_yaml(path: str | Path) -> dict:
    """A YAML file, by its path relative to the repository root (or an absolute one)."""
    return yaml.safe_load((REPO_ROOT / path).read_text())


def _merge(base: dict, extra: dict) -> dict:
    """Snakemake's --configfile overlay: nested dicts merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config(*overlays: str) -> dict:
    """config/config.yaml with the overlays `config/<name>` merged in order, as Snakemake does."""
    cfg = read_yaml("config/config.yaml")
    for name in overlays:
        cfg = _merge(cfg, read_yaml(f"config/{name}"))
    return cfg


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow definition (not results or data) into `dest` and return it."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO_ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
    """Run snakemake from the venv in `workdir`; raise with the tail of its output on failure."""
    exe = Path(sys.executable).with_name("snakemake")
    # Rules call the `aemt` command: put the interpreter's bin folder (the venv's) first on PATH.
    env = dict(os.environ, PATH=f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(exe), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        logs = (
            "\n".join(
                f"--- {p}\n{p.read_text()[-3000:]}"
                for p in sorted((workdir / "logs").rglob("*.log"))
            )
            if (workdir / "logs").is_dir()
            else ""
        )
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode})\n"
            f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}\n{logs[-8000:]}"
        )
    return proc
