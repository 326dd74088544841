"""`aemt pretrain`: pretrain the per-modality autoencoders (+ consistency detection) on aligned tensors."""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_torch_args, parse_hparams, quiet_openmp


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain the modality autoencoders (train + unlabeled splits)",
        description="Pretrain per-modality autoencoders with reconstruction + modality-consistency "
        "detection. Writes OUT/model.pt and OUT/history.csv; resumes from OUT/last.pt.",
    )
    p.add_argument("--aligned-dir", required=True, type=Path, help="results/<ds>/aligned")
    p.add_argument("--out-dir", required=True, type=Path, help="results/<ds>/pretrain/<name>")
    add_torch_args(p)
    p.set_defaults(handler=run)


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
