"""`aemt aggregate`: metrics over seeds -> summary.csv / summary.md / ablation.md, or a sensitivity plot.

    aemt aggregate --metrics results/demo/finetune/*/*/metrics.json --scale sims --out-dir results/demo \
        --train-meta results/demo/aligned/train/meta.csv --test-meta results/demo/aligned/test/meta.csv
    aemt aggregate --dataset-dir results/demo --variants aemt,mult --seeds 1111,1112 --scale sims
    aemt aggregate --sensitivity lambda1 --prefix sens_l1_ --scale sims --out-dir results/demo \
        --metrics results/demo/finetune/sens_l1_*/1111/metrics.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_scale, comma_list, numbers
from aemt.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="aggregate fine-tuning metrics over seeds (tables, ablation, sensitivity plot)",
        description=(
            "Read the runs' finetune/<variant>/<seed>/metrics.json (--metrics, or --dataset-dir with "
            "--variants and --seeds) and write summary.csv, summary.md and ablation.md (mean ± std "
            "over seeds, ddof = 0, tables x100) into --out-dir, then print the mean ± std table. "
            "With --sensitivity, write sensitivity_<param>.csv/.png instead."
        ),
    )
    p.add_argument("--metrics", nargs="+", type=Path, help="metrics.json files of the runs")
    p.add_argument("--dataset-dir", type=Path, help="results/<dataset>: find runs by name instead")
    p.add_argument("--variants", help="with --dataset-dir: comma-separated variant names")
    p.add_argument("--seeds", help="with --dataset-dir: comma-separated integer seeds")
    add_scale(p)
    p.add_argument("--out-dir", type=Path, help="where to write (default: --dataset-dir)")
    p.add_argument("--dataset", help="dataset name in titles (default: the output folder's name)")
    p.add_argument("--train-meta", type=Path, help="aligned train meta.csv (train-mean baseline)")
    p.add_argument("--test-meta", type=Path, help="aligned test meta.csv (train-mean baseline)")
    p.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave the 'predict the train mean' row out of ablation.md",
    )
    p.add_argument(
        "--sensitivity",
        metavar="PARAM",
        help="sensitivity mode: name of the swept parameter (e.g. lambda1, lambda2)",
    )
    p.add_argument(
        "--prefix",
        help="sensitivity mode: runs are finetune/<prefix><value>/<seed> (e.g. sens_l1_)",
    )
    p.set_defaults(handler=run)


def _runs(args: argparse.Namespace) -> list[Path]:
    from aemt.evaluate.summary import run_paths

    if args.metrics:
        return list(args.metrics)
    if args.dataset_dir is None:
        raise UserError(
            "give the runs: --metrics FILE..., or --dataset-dir with --variants/--seeds"
        )
    variants = comma_list(args.variants, "--variants")
    return run_paths(args.dataset_dir, variants, numbers(args.seeds, "--seeds", int))


def run(args: argparse.Namespace) -> int:
    from aemt.evaluate.summary import read_runs, train_mean_baseline

    paths = _runs(args)
    out_dir = args.out_dir or args.dataset_dir
    if out_dir is None:
        raise UserError("--out-dir is needed with --metrics")
    dataset = args.dataset or Path(out_dir).resolve().name
    if args.sensitivity:
        return _sensitivity(args, paths, Path(out_dir), dataset)
    from aemt.evaluate.summary import write_summary_csv
    from aemt.report.markdown import write_summary_markdown

    runs = read_runs(paths, args.scale)
    train_meta, test_meta = args.train_meta, args.test_meta
    if args.dataset_dir is not None and train_meta is None and test_meta is None:
        aligned = args.dataset_dir / "aligned"
        train_meta, test_meta = aligned / "train" / "meta.csv", aligned / "test" / "meta.csv"
    baseline = None
    if not args.no_baseline and train_meta is not None and test_meta is not None:
        baseline = train_mean_baseline(train_meta, test_meta, args.scale)
    csv = write_summary_csv(Path(out_dir) / "summary.csv", runs, args.scale)
    seeds = list(dict.fromkeys(int(s) for s in runs["seed"]))
    md = write_summary_markdown(
        runs,
        args.scale,
        seeds,
        baseline,
        Path(out_dir) / "summary.md",
        Path(out_dir) / "ablation.md",
        dataset,
    )
    print(md.table)
    print(f"\nwrote {csv}, {md.summary_md} and {md.ablation_md}")
    return 0


def _sensitivity(args: argparse.Namespace, paths: list[Path], out_dir: Path, dataset: str) -> int:
    from aemt.evaluate.summary import collect, sensitivity_frame
    from aemt.io import save_csv
    from aemt.report.markdown import markdown_table
    from aemt.report.sensitivity import plot_sensitivity
    from aemt.report.tables import sensitivity_table

    if args.prefix is None:
        raise UserError("--sensitivity needs --prefix (the variant prefix, e.g. sens_l1_)")
    per_seed = collect(paths, args.scale)
    frame = sensitivity_frame(per_seed, args.sensitivity, args.prefix, args.scale)
    csv = out_dir / f"sensitivity_{args.sensitivity}.csv"
    save_csv(csv, frame)
    n_seeds = per_seed["seed"].nunique()
    png = plot_sensitivity(
        frame, args.sensitivity, args.scale, n_seeds, dataset, csv.with_suffix(".png")
    )
    print(markdown_table(sensitivity_table(frame, args.sensitivity, args.scale)))
    print(f"\nwrote {csv} and {png}")
    return 0
