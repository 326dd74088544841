"""`aemt pretrain`: pretrain the per-modality autoencoders (+ consistency detection) on aligned tensors."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from aemt.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the modality autoencoders (train + unlabeled splits)",
        description="Pretrain per-modality autoencoders with reconstruction + modality-consistency "
        "detection. Writes OUT/model.pt and OUT/history.csv; resumes from OUT/last.pt.",
    )
    p.add_argument("--aligned-dir", required=True, type=Path, help="results/<ds>/aligned")
    p.add_argument("--out-dir", required=True, type=Path, help="results/<ds>/pretrain/<name>")
    p.add_argument(
        "--hparams",
        default="{}",
        help='JSON text or a .json file: {"model": {...}, "train": {...}}',
    )
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.set_defaults(handler=run)


def quiet_openmp() -> None:
    """Sleeping (not spinning) OpenMP workers, unless the user chose otherwise; must run before torch
    is imported. On a shared 2-core machine spinning workers made a training step up to 10x slower."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def parse_hparams(text: str) -> dict:
    """Inline JSON, or the path of a JSON file."""
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


def run(args: argparse.Namespace) -> int:
    quiet_openmp()
    from aemt.train.pretrain import run_pretrain

    run_pretrain(
        args.aligned_dir,
        args.out_dir,
        parse_hparams(args.hparams),
        args.threads,
        device=args.device,
    )
    return 0
