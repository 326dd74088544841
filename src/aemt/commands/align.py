"""`aemt align`: per-clip features of one split -> aligned [N, L, D] tensors, masks, meta.csv."""

from __future__ import annotations

import argparse

from aemt.commands._args import add_scale
from aemt.constants import ALIGN_MODES, ALL_SPLITS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "align",
        help="pool per-clip features of one split into aligned tensors (text/audio/vision .npy)",
        description=(
            "Average audio and visual frames (valid frames only) into --length equal time bins per "
            "clip (or, --mode words, over each text token's word span), truncate/pad text tokens, "
            "and write <out-dir>/{text,audio,vision}{,_mask}.npy, "
            "meta.csv and info.json. Clips with a missing/empty/unreadable video are left out."
        ),
    )
    parser.add_argument("--manifest", required=True, help="results/<ds>/manifest.csv")
    parser.add_argument("--features-dir", required=True, help="results/<ds>/features")
    parser.add_argument(
        "--split",
        required=True,
        choices=ALL_SPLITS,
        help="split to align",
    )
    parser.add_argument("--length", type=int, default=50, help="number of time bins / tokens")
    parser.add_argument(
        "--text-pooling",
        choices=("tokens", "cls"),
        default="tokens",
        help="tokens: token states padded to --length; cls: the [CLS] row only (length 1)",
    )
    parser.add_argument(
        "--mode",
        choices=ALIGN_MODES,
        default="bins",
        help="bins: --length equal time bins per clip; words: one step per text token, audio and "
        "visual frames pooled over the token's word span (needs --asr-dir)",
    )
    parser.add_argument(
        "--asr-dir",
        default=None,
        help="results/<ds>/asr: the per-clip asr records (word times; recorded in info.json)",
    )
    add_scale(
        parser,
        required=False,
        help="label scale recorded in info.json (default: from the manifest's .json sidecar)",
    )
    parser.add_argument("--out-dir", required=True, help="results/<ds>/aligned/<split>")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aemt.align.split import align_split

    align_split(
        args.manifest,
        args.features_dir,
        args.split,
        args.length,
        args.out_dir,
        text_pooling=args.text_pooling,
        scale=args.scale,
        mode=args.mode,
        asr_dir=args.asr_dir,
    )
    return 0
