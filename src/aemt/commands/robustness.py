"""`aemt robustness`: fine-tuned checkpoints under missing modalities (per-step random dropping at rates
0.0-1.0, whole modalities absent), then the summary over runs.

    aemt robustness run --model results/demo/finetune/aemt/1111/model.pt \
        --aligned-dir results/demo/aligned --out results/demo/robustness/aemt/1111.csv
    aemt robustness summary --runs results/demo/robustness/*/*.csv --scale sims --out-dir results/demo
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_scale, numbers, quiet_openmp

DEFAULT_MASK_SEEDS = "1111,1112,1113"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "robustness",
        help="evaluate fine-tuned models with modalities missing (rates 0-1, absent modalities)",
        description=(
            "Evaluate fine-tuned checkpoints on the TEST split with input steps dropped (masked and "
            "zeroed) at random, at rates 0.0, 0.1, ..., 1.0 in all three modalities with fixed mask "
            "seeds, and with each modality and each pair absent (`run`); then stack the runs into "
            "robustness.csv and write robustness.md with the area under each metric-vs-rate curve, "
            "mean ± std over seeds (`summary`)."
        ),
    )
    sub = p.add_subparsers(dest="part", metavar="PART", required=True)

    r = sub.add_parser(
        "run",
        help="evaluate checkpoints -> one CSV (variant, seed, protocol, rate, metrics)",
        description=(
            "Rate 0 reproduces each run's metrics.json (a warning says when it does not: another "
            "device type or batch size than at training). The variant, seed and scale come from the "
            "checkpoint."
        ),
    )
    r.add_argument(
        "--model", required=True, nargs="+", type=Path, help="finetune/<variant>/<seed>/model.pt"
    )
    r.add_argument("--aligned-dir", required=True, type=Path, help="results/<ds>/aligned")
    r.add_argument("--out", required=True, type=Path, help="CSV to write")
    r.add_argument(
        "--mask-seeds",
        default=DEFAULT_MASK_SEEDS,
        help=f"comma-separated seeds of the drop masks (default {DEFAULT_MASK_SEEDS})",
    )
    r.add_argument(
        "--batch-size", type=int, help="evaluation batch (default: the run's, 4 x finetune batch)"
    )
    r.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    r.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    r.set_defaults(handler=run_eval)

    s = sub.add_parser("summary", help="robustness.csv + robustness.md from the per-run CSVs")
    s.add_argument("--runs", required=True, nargs="+", type=Path, help="CSVs of `robustness run`")
    add_scale(s)
    s.add_argument("--out-dir", required=True, type=Path, help="results/<dataset>")
    s.add_argument("--dataset", help="dataset name in titles (default: the output folder's name)")
    s.add_argument("--mask-seeds", help="the mask seeds the runs used (named in the notes)")
    s.set_defaults(handler=run_summary)


def run_eval(args: argparse.Namespace) -> int:
    quiet_openmp()
    from aemt.evaluate.robustness import RobustnessConfig, evaluate_checkpoints
    from aemt.io import save_csv

    cfg = RobustnessConfig(
        mask_seeds=tuple(numbers(args.mask_seeds, "--mask-seeds", int)),
        batch_size=args.batch_size,
    )
    frame = evaluate_checkpoints(args.model, args.aligned_dir, cfg, args.threads, args.device)
    save_csv(args.out, frame)
    print(f"wrote {args.out} ({len(frame)} rows)")
    return 0


def run_summary(args: argparse.Namespace) -> int:
    from aemt.evaluate.robustness import read_tables
    from aemt.io import save_csv
    from aemt.report.robustness import write_robustness_markdown

    frame = read_tables(args.runs, args.scale)
    dataset = args.dataset or args.out_dir.resolve().name
    seeds = numbers(args.mask_seeds, "--mask-seeds", int) if args.mask_seeds else None
    csv, md = args.out_dir / "robustness.csv", args.out_dir / "robustness.md"
    save_csv(csv, frame)
    print(write_robustness_markdown(frame, args.scale, md, dataset, seeds))
    print(f"\nwrote {csv} and {md}")
    return 0
