"""`aemt finetune`: fine-tune AE-MT (or random-init MulT) for one variant and seed."""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_scale, add_torch_args, parse_hparams, quiet_openmp


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune AE-MT for one variant and seed",
        description="Fine-tune AE-MT on the train split, select on valid, evaluate test once. Writes "
        "OUT/model.pt, predictions.csv, metrics.json, history.csv; resumes from OUT/last.pt.",
    )
    p.add_argument("--aligned-dir", required=True, type=Path, help="results/<ds>/aligned")
    p.add_argument(
        "--out-dir", required=True, type=Path, help="results/<ds>/finetune/<variant>/<seed>"
    )
    p.add_argument(
        "--pretrained", required=True, help="pretraining model.pt, or 'none' for random init"
    )
    p.add_argument("--variant", required=True, help="variant name (recorded in metrics.json)")
    p.add_argument("--seed", required=True, type=int)
    add_scale(p)
    add_torch_args(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    quiet_openmp()
    from aemt.train.finetune import run_finetune

    pretrained = None if args.pretrained.lower() == "none" else Path(args.pretrained)
    run_finetune(
        args.aligned_dir,
        args.out_dir,
        parse_hparams(args.hparams),
        pretrained,
        args.scale,
        args.variant,
        args.seed,
        args.threads,
        device=args.device,
    )
    return 0
