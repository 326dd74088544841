"""Argument helpers shared by the command modules: comma-separated lists, hyper-parameter JSON, the
scale choice, the torch options, and OpenMP's wait policy. Imports only the standard library and the zero-cost modules."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from aemt.constants import SCALES
from aemt.errors import UserError


def comma_list(text: str | None, option: str) -> list[str]:
    """`a, b,c` -> ['a', 'b', 'c']; an empty list is a UserError naming the option."""
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        raise UserError(f"{option} needs a comma-separated list, got {text!r}")
    return items


def numbers(text: str | None, option: str, kind: type) -> list:
    """A comma-separated list of numbers of type `kind` (int or float)."""
    out = []
    for item in comma_list(text, option):
        try:
            out.append(kind(item))
        except ValueError:
            raise UserError(f"{option}: {item!r} is not a valid {kind.__name__}") from None
    return out


def add_scale(
    parser: argparse.ArgumentParser,
    required: bool = True,
    help: str = "label scale: sims ([-1, 1]) or mosei ([-3, 3]); picks the metric definitions",
) -> None:
    """`--scale sims|mosei` (the label range and metric definitions, SPEC §7); default None."""
    parser.add_argument("--scale", required=required, default=None, choices=SCALES, help=help)


def add_torch_args(parser: argparse.ArgumentParser, hparams: bool = True) -> None:
    """`--hparams` (with `hparams`), `--threads` and `--device` of the torch commands."""
    if hparams:
        parser.add_argument(
            "--hparams",
            default="{}",
            help='JSON text or a .json file: {"model": {...}, "train": {...}}',
        )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")


def parse_hparams(text: str) -> dict:
    """Inline JSON, or the path of a JSON file: {"model": {...}, "train": {...}}."""
    source = "--hparams"
    if not text.lstrip().startswith("{"):
        path = Path(text)
        if not path.exists():
            raise UserError(f"--hparams: {text!r} is neither JSON text nor an existing file")
        source, text = str(path), path.read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(f"{source}: invalid JSON ({err})") from err
    if not isinstance(value, dict):
        raise UserError(f"{source}: expected a JSON object with 'model' and 'train' sections")
    return value


def limit_threads(threads: int) -> None:
    """Size the numerical libraries' thread pools (OpenMP, MKL, OpenBLAS) to `threads` (>= 1); must run
    before numpy or torch start them."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(max(1, threads))


def quiet_openmp() -> None:
    """Sleeping (not spinning) OpenMP workers, unless the user chose otherwise; must run before torch
    is imported. On a shared 2-core machine spinning workers made a training step up to 10x slower."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
