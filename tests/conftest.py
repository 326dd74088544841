"""Shared pytest fixtures: repository paths and the optional real-clip folder (../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AEMT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real research clips, when present beside the repository (never copied into it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real `snakemake` run of the whole DAG on the tiny generated dataset of config/test.yaml.

    Builds the default target (through `aggregate`), the `sensitivity` sweeps, `robustness` and the
    `report` figures once per test session, in a copy of the workflow files; tests inspect
    `<returned dir>/results/tiny/...`.
    """
    from tests._workflow_helpers import TINY_TARGETS, copy_workflow, snakemake

    work = copy_workflow(tmp_path_factory.mktemp("workflow"))
    snakemake(work, "--cores", "2", *TINY_TARGETS, "--configfile", "config/test.yaml")
    return work
