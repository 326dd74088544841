"""`aemt aggregate`: metrics over seeds -> summary.csv / summary.md / ablation.md, or a sensitivity plot.

    aemt aggregate --dataset-dir results/demo --variants aemt,mult --seeds 1111,1112 --scale sims
    aemt aggregate --dataset-dir results/demo --sensitivity lambda1 --values 0,0.2,0.4 \
        --prefix sens_l1_ --seeds 1111 --scale sims
"""

from __future__ import annotations

import argparse

from aemt.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "aggregate",
        help="aggregate fine-tuning metrics over seeds (tables, ablation, sensitivity plot)",
        description=(
            "Read <dataset-dir>/finetune/<variant>/<seed>/metrics.json and write summary.csv, "
            "summary.md and ablation.md (mean ± std over seeds, ddof = 0, tables x100), then print "
            "the mean ± std table. With --sensitivity, write sensitivity_<param>.csv/.png instead."
        ),
    )
    p.add_argument("--dataset-dir", required=True, help="results/<dataset> directory")
    p.add_argument("--variants", help="comma-separated variant names (summary mode)")
    p.add_argument("--seeds", required=True, help="comma-separated integer seeds, e.g. 1111,1112")
    p.add_argument("--scale", required=True, choices=("sims", "mosei"), help="metric scale")
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
    p.add_argument("--values", help="sensitivity mode: comma-separated values of PARAM")
    p.add_argument(
        "--prefix",
        help="sensitivity mode: variant prefix; runs are finetune/<prefix><format(value, 'g')>/<seed>",
    )
    p.set_defaults(handler=run)


def _split(text: str | None, option: str) -> list[str]:
    items = [item.strip() for item in (text or "").split(",") if item.strip()]
    if not items:
        raise UserError(f"{option} needs a comma-separated list, got {text!r}")
    return items


def _numbers(text: str | None, option: str, kind: type) -> list:
    out = []
    for item in _split(text, option):
        try:
            out.append(kind(item))
        except ValueError:
            raise UserError(f"{option}: {item!r} is not a valid {kind.__name__}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from aemt import aggregate

    seeds = _numbers(args.seeds, "--seeds", int)
    if args.sensitivity:
        if args.prefix is None:
            raise UserError("--sensitivity needs --prefix (the variant prefix, e.g. sens_l1_)")
        values = _numbers(args.values, "--values", float)
        out = aggregate.write_sensitivity(
            args.dataset_dir, args.sensitivity, values, args.prefix, seeds, args.scale
        )
        print(out.table)
        print(f"\nwrote {out.csv} and {out.png}")
        return 0
    variants = _split(args.variants, "--variants")
    baseline = (
        None if args.no_baseline else aggregate.train_mean_baseline(args.dataset_dir, args.scale)
    )
    out = aggregate.write_summary(args.dataset_dir, variants, seeds, args.scale, baseline)
    print(out.table)
    print(f"\nwrote {out.summary_csv}, {out.summary_md} and {out.ablation_md}")
    return 0
