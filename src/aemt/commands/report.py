"""`aemt report`: the figures and HTML tables that `snakemake --report` gathers into one HTML file.

    aemt report results --metrics results/demo/finetune/*/*/metrics.json --scale sims \
        --out-dir results/demo/report
    aemt report pretrain-curves --histories results/demo/pretrain/transformer/*/history.csv \
        --out results/demo/report/curves/pretrain_transformer.png
    aemt report pretraining --histories results/demo/pretrain/*/*/history.csv \
        --out results/demo/report/pretraining.html
    aemt report finetune-curves --histories results/demo/finetune/aemt/*/history.csv \
        --out results/demo/report/curves/finetune_aemt.png
    aemt report quality --manifest results/demo/manifest.csv --features-dir results/demo/features \
        --transcripts results/demo/transcripts.csv --aligned results/demo/aligned/*/info.json \
        --out-dir results/demo/report
    aemt report copy results/demo/sensitivity_lambda1.png results/demo/report/sensitivity_lambda1.png
    aemt report robustness-tables --runs results/demo/robustness/*/*.csv --scale sims \
        --out-dir results/demo
    aemt report robustness --csv results/demo/robustness.csv --scale sims --out-dir results/demo/report
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aemt.commands._args import add_scale, numbers
from aemt.errors import UserError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="report figures and tables (metrics, ablation, training curves, data quality)",
        description=(
            "Write the files that `snakemake --report report.html report` embeds: HTML tables and "
            "matplotlib PNGs under results/<ds>/report/. One sub-command per report part."
        ),
    )
    sub = p.add_subparsers(dest="part", metavar="PART", required=True)

    r = sub.add_parser(
        "results",
        help="metrics.html, ablation.html, variants.png, best_scatter.png, best_confusion.png",
        description=(
            "Test metrics per seed and mean ± std per variant (x100, ddof = 0), the ablation table, a "
            "bar chart of the variants, and predicted-vs-true / confusion plots of the best variant "
            "(lowest mean validation MAE). Each run's predictions.csv is read beside its metrics.json."
        ),
    )
    r.add_argument("--metrics", required=True, nargs="+", type=Path, help="runs' metrics.json")
    add_scale(r)
    r.add_argument("--out-dir", required=True, type=Path, help="results/<dataset>/report")
    r.add_argument("--train-meta", type=Path, help="aligned train meta.csv (baseline row)")
    r.add_argument("--test-meta", type=Path, help="aligned test meta.csv (baseline row)")
    r.add_argument("--dataset", default="", help="dataset name shown in titles")
    r.set_defaults(handler=run_results)

    c = sub.add_parser(
        "pretrain-curves", help="loss curves of one pretraining configuration, seeds overlaid (PNG)"
    )
    _add_histories(c, "pretrain/<name>/<seed>/history.csv")
    c.add_argument("--name", help="run name shown in the title (default: the history's folder)")
    c.add_argument("--dataset", help="dataset name shown in the title (default: from the path)")
    c.add_argument("--out", required=True, type=Path, help="PNG to write")
    c.set_defaults(handler=run_pretrain_curves)

    d = sub.add_parser(
        "pretraining",
        help="pretraining.html: holdout MCD accuracy and reconstruction vs the mean, per run",
    )
    _add_histories(d, "pretrain/<name>/<seed>/history.csv")
    d.add_argument("--dataset", default="", help="dataset name shown in the title")
    d.add_argument("--out", required=True, type=Path, help="HTML file to write")
    d.set_defaults(handler=run_pretraining)

    f = sub.add_parser("finetune-curves", help="loss / MAE curves of one variant, seeds overlaid")
    _add_histories(f, "finetune/<variant>/<seed>/history.csv")
    f.add_argument("--variant", help="variant name shown in the title (default: the run folder)")
    f.add_argument("--dataset", help="dataset name shown in the title (default: from the path)")
    f.add_argument("--out", required=True, type=Path, help="PNG to write")
    f.set_defaults(handler=run_finetune_curves)

    q = sub.add_parser(
        "quality",
        help="quality.html, quality.png, face_detection.png of one dataset",
        description=(
            "Clips per split and status, face-detection rate per clip, clips with no audio, "
            "transcript lengths, feature dims and the extraction configuration."
        ),
    )
    q.add_argument("--manifest", type=Path, help="manifest.csv (raw-video datasets)")
    q.add_argument("--features-dir", type=Path, help="results/<ds>/features (with --manifest)")
    q.add_argument(
        "--transcripts", type=Path, help="results/<ds>/transcripts.csv (sources, match rates)"
    )
    q.add_argument(
        "--aligned", required=True, nargs="+", type=Path, help="files of aligned/<split>/ folders"
    )
    q.add_argument("--out-dir", required=True, type=Path, help="results/<dataset>/report")
    q.add_argument("--dataset", default="", help="dataset name shown in titles")
    q.add_argument("--worst", type=int, default=15, help="worst face-detection clips to list")
    q.set_defaults(handler=run_quality)

    b = sub.add_parser(
        "robustness",
        help="robustness.html and robustness.png (missing modalities)",
        description=(
            "The tables of robustness.md (areas under the metric-vs-rate curves, absent modalities) "
            "as HTML, and the metrics vs drop rate, one line per variant, ± std bands over seeds."
        ),
    )
    b.add_argument("--csv", required=True, type=Path, help="results/<ds>/robustness.csv")
    add_scale(b)
    b.add_argument("--out-dir", required=True, type=Path, help="results/<dataset>/report")
    b.add_argument("--dataset", default="", help="dataset name shown in titles")
    b.add_argument("--mask-seeds", help="the mask seeds the runs used (named in the notes)")
    b.set_defaults(handler=run_robustness)

    t = sub.add_parser(
        "robustness-tables",
        help="robustness.csv + robustness.md from the per-run CSVs of `aemt robustness`",
    )
    t.add_argument("--runs", required=True, nargs="+", type=Path, help="CSVs of `aemt robustness`")
    add_scale(t)
    t.add_argument("--out-dir", required=True, type=Path, help="results/<dataset>")
    t.add_argument("--dataset", help="dataset name in titles (default: the output folder's name)")
    t.add_argument("--mask-seeds", help="the mask seeds the runs used (named in the notes)")
    t.set_defaults(handler=run_robustness_tables)

    k = sub.add_parser("copy", help="copy a PNG into the report folder (atomic)")
    k.add_argument("src", type=Path, help="a PNG, e.g. results/<ds>/sensitivity_lambda1.png")
    k.add_argument("dst", type=Path, help="destination under results/<ds>/report/")
    k.set_defaults(handler=run_copy)


def run_results(args: argparse.Namespace) -> int:
    from aemt.report.results import write_results

    out = write_results(
        args.metrics,
        args.scale,
        args.out_dir,
        train_meta=args.train_meta,
        test_meta=args.test_meta,
        dataset=args.dataset,
    )
    print(f"{out.best_reason}\nwrote {out.metrics_html.parent}/ (5 files)")
    return 0


def run_pretrain_curves(args: argparse.Namespace) -> int:
    from aemt.report.curves import plot_pretrain

    run_dir = args.histories[0].parent.parent
    name = args.name or run_dir.name
    dataset = args.dataset or _dataset_from(run_dir, levels=2)
    print(f"wrote {plot_pretrain(args.histories, name, dataset, args.out)}")
    return 0


def run_pretraining(args: argparse.Namespace) -> int:
    from aemt.report.pretraining import write_pretraining

    print(f"wrote {write_pretraining(args.histories, args.out, args.dataset)}")
    return 0


def run_finetune_curves(args: argparse.Namespace) -> int:
    from aemt.report.curves import plot_finetune

    run_dir = args.histories[0].parent.parent
    variant = args.variant or run_dir.name
    dataset = args.dataset or _dataset_from(run_dir, levels=2)
    out = plot_finetune(args.histories, variant, dataset, args.out)
    print(f"wrote {out}")
    return 0


def run_quality(args: argparse.Namespace) -> int:
    from aemt.report.quality import QualityConfig, QualitySources, write_quality

    if (args.manifest is None) != (args.features_dir is None):
        raise UserError("--manifest and --features-dir go together (raw-video datasets)")
    folders = list(dict.fromkeys(p if p.is_dir() else p.parent for p in args.aligned))
    sources = QualitySources(args.manifest, args.features_dir, folders, args.transcripts)
    out = write_quality(sources, args.out_dir, args.dataset, QualityConfig(worst=args.worst))
    print(f"{out.n_clips} clips; wrote {out.html}, {out.overview_png}, {out.face_png}")
    return 0


def run_robustness(args: argparse.Namespace) -> int:
    from aemt.evaluate.robustness import read_tables
    from aemt.report.robustness import write_robustness_report

    seeds = _mask_seeds(args)
    frame = read_tables([args.csv], args.scale)
    html, png = write_robustness_report(frame, args.scale, args.out_dir, args.dataset, seeds)
    print(f"wrote {html} and {png}")
    return 0


def run_robustness_tables(args: argparse.Namespace) -> int:
    from aemt.evaluate.robustness import read_tables
    from aemt.io import save_csv
    from aemt.report.robustness import write_robustness_markdown

    frame = read_tables(args.runs, args.scale)
    dataset = args.dataset or args.out_dir.resolve().name
    seeds = _mask_seeds(args)
    csv, md = args.out_dir / "robustness.csv", args.out_dir / "robustness.md"
    save_csv(csv, frame)
    print(write_robustness_markdown(frame, args.scale, md, dataset, seeds))
    print(f"\nwrote {csv} and {md}")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    import shutil

    from aemt.io import atomic_path

    if not args.src.is_file():
        raise UserError(f"{args.src} does not exist; build it first (e.g. snakemake sensitivity)")
    with open(args.src, "rb") as fh:
        if fh.read(8) != PNG_MAGIC:
            raise UserError(f"{args.src} is not a PNG image; rebuild it")
    with atomic_path(args.dst) as tmp:
        shutil.copyfile(args.src, tmp)
    print(f"copied {args.src} -> {args.dst}")
    return 0


def _add_histories(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--histories", required=True, nargs="+", type=Path, help=help)


def _mask_seeds(args: argparse.Namespace) -> list[int] | None:
    """The parsed --mask-seeds (comma-separated integers), or None when not given."""
    return numbers(args.mask_seeds, "--mask-seeds", int) if args.mask_seeds else None


def _dataset_from(path: Path, levels: int) -> str:
    """results/<ds>/pretrain/<name>/history.csv -> <ds> (levels = folders above the file / run dir)."""
    parents = path.resolve().parents
    return parents[levels - 1].name if len(parents) >= levels else ""
