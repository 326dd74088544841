"""`aemt robustness`: fine-tuned checkpoints under missing modalities (per-step random dropping at rates
0.0-1.0, whole modalities absent) -> one CSV; `aemt report robustness-tables` stacks the runs.

    aemt robustness --model results/demo/finetune/aemt/1111/model.pt \
        --aligned-dir results/demo/aligned --out results/demo/robustness/aemt/1111.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_torch_args, numbers, quiet_openmp

DEFAULT_MASK_SEEDS = "1111,1112,1113"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "robustness",
        help="evaluate fine-tuned models with modalities missing (rates 0-1, absent modalities)",
        description=(
            "Evaluate fine-tuned checkpoints on the TEST split with input steps dropped (masked and "
            "zeroed) at random, at rates 0.0, 0.1, ..., 1.0 in all three modalities with fixed mask "
            "seeds, and with each modality and each pair absent; write one CSV (variant, seed, "
            "protocol, rate, metrics). Rate 0 reproduces each run's metrics.json (a warning says "
            "when it does not: another device type or batch size than at training). The variant, "
            "seed and scale come from the checkpoint. `aemt report robustness-tables` stacks the "
            "runs into robustness.csv / robustness.md."
        ),
    )
    p.add_argument(
        "--model", required=True, nargs="+", type=Path, help="finetune/<variant>/<seed>/model.pt"
    )
    p.add_argument("--aligned-dir", required=True, type=Path, help="results/<ds>/aligned")
    p.add_argument("--out", required=True, type=Path, help="CSV to write")
    p.add_argument(
        "--mask-seeds",
        default=DEFAULT_MASK_SEEDS,
        help=f"comma-separated seeds of the drop masks (default {DEFAULT_MASK_SEEDS})",
    )
    p.add_argument(
        "--batch-size", type=int, help="evaluation batch (default: the run's, 4 x finetune batch)"
    )
    add_torch_args(p, hparams=False)
    p.set_defaults(handler=run_eval)


def run_eval(args: argparse.Namespace) -> int:
    quiet_openmp()
    from aemt.evaluate.robustness_run import RobustnessConfig, evaluate_checkpoints
    from aemt.io import save_csv

    cfg = RobustnessConfig(
        mask_seeds=tuple(numbers(args.mask_seeds, "--mask-seeds", int)),
        batch_size=args.batch_size,
    )
    frame = evaluate_checkpoints(args.model, args.aligned_dir, cfg, args.threads, args.device)
    save_csv(args.out, frame)
    print(f"wrote {args.out} ({len(frame)} rows)")
    return 0
