"""`aemt import-mmsa` / `aemt export-mmsa`: MMSA feature pickles <-> aligned tensors.

    aemt import-mmsa unaligned_50.pkl --dataset mosei --trust-pickle [--out-root results]
        [--align-length 50] [--scale sims|mosei]
    aemt export-mmsa --aligned-dir results/demo/aligned --out demo_mmsa.pkl [--splits train,valid,test]

The implementation is `aemt.align.mmsa` (imported inside the handlers so start-up stays fast).
"""

from __future__ import annotations

import argparse

from aemt.commands._args import add_scale, comma_list


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "import-mmsa",
        help="convert an MMSA / MMSA-FET feature pickle into aligned tensors",
        description=(
            "Read an MMSA pickle (train/valid/test: id, raw_text, text (N,T,768 BERT states), "
            "audio, vision, *_lengths, regression_labels[_T/A/V]) and write "
            "<out-root>/<dataset>/aligned/<split>/ as the alignment stage does. Unaligned audio / "
            "vision are averaged into --align-length equal time bins; text is padded/truncated. "
            "No 'unlabeled' split is written: pretraining then uses the train split only. "
            "Pickles can run code when loaded: --trust-pickle is required."
        ),
    )
    p.add_argument("pkl", metavar="PKL", help="MMSA feature file (.pkl)")
    p.add_argument("--dataset", required=True, help="dataset name (results/<dataset>/aligned)")
    p.add_argument("--out-root", default="results", help="results root (default: results)")
    p.add_argument(
        "--align-length", type=int, default=50, help="bins / tokens per clip (default: 50)"
    )
    add_scale(
        p,
        required=False,
        help="label scale; default: inferred (all |label| <= 1 -> sims, else mosei)",
    )
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load the pickle (it can execute code): only for files from a source you trust",
    )
    p.set_defaults(handler=run_import)

    q = subparsers.add_parser(
        "export-mmsa",
        help="write aligned tensors as an MMSA-compatible feature pickle",
        description=(
            "Write results/<dataset>/aligned/<split>/ as an MMSA pickle (HIGHEST_PROTOCOL): per "
            "split id, raw_text, text, audio, vision, audio_lengths/vision_lengths (valid bins), "
            "regression_labels[_T/A/V], annotations, plus text_mask/audio_mask/vision_mask (aemt "
            "extension, ignored by MMSA) and a top-level 'config' (our info.json)."
        ),
    )
    q.add_argument("--aligned-dir", required=True, help="results/<dataset>/aligned")
    q.add_argument("--out", required=True, help="output .pkl file")
    q.add_argument(
        "--splits",
        default="train,valid,test",
        help="comma-separated labelled splits (default: train,valid,test)",
    )
    q.set_defaults(handler=run_export)


def run_import(args: argparse.Namespace) -> int:
    from aemt.align import mmsa

    rep = mmsa.import_mmsa(
        args.pkl,
        args.out_root,
        args.dataset,
        align_length=args.align_length,
        trust_pickle=args.trust_pickle,
        scale=args.scale,
    )
    counts = ", ".join(f"{s} {n}" for s, n in rep.counts.items())
    print(f"wrote {rep.out_dir} ({counts} clips; scale {rep.scale}; dims {rep.dims})")
    if any(rep.nonfinite.values()):
        print(f"replaced non-finite values (-inf / NaN) by 0: {rep.nonfinite}")
    if rep.clipped_lengths:
        print(f"{rep.clipped_lengths} *_lengths were longer than the stored sequence (clipped)")
    if rep.missing_splits:
        print(f"note: the file has no {'/'.join(rep.missing_splits)} split")
    print("note: no 'unlabeled' split written; pretraining uses the train split only")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from aemt.align.mmsa_export import export_mmsa

    splits = comma_list(args.splits, "--splits")
    rep = export_mmsa(args.aligned_dir, args.out, splits)
    counts = ", ".join(f"{s} {n}" for s, n in rep.counts.items())
    print(f"wrote {rep.out_pkl} ({counts} clips; dims {rep.dims})")
    return 0
