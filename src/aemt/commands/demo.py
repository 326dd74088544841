"""`aemt demo-data OUT`: write the embedded demo dataset (generated clips, label.csv, unlabeled.csv).

aemt demo-data data/demo
aemt demo-data data/tiny --train 8 --valid 4 --test 4 --unlabeled 4 --seconds 2
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo-data",
        help="write the embedded demo dataset (generated talking-head clips, no download)",
        description=(
            "Write a small CH-SIMS-style dataset into OUT: label.csv, unlabeled.csv, "
            "Raw/<video_id>/<clip_id>.mp4 (real face photos moving, synthetic speech, H.264 + AAC) "
            "and README.txt. Labels carry a planted text / audio / visual signal. Deterministic "
            "given --seed. OUT must be new, empty or an earlier demo dataset (else --force)."
        ),
    )
    p.add_argument("out", metavar="OUT", help="dataset folder to write (e.g. data/demo)")
    p.add_argument("--train", type=int, default=36, help="labelled training clips (default 36)")
    p.add_argument("--valid", type=int, default=12, help="labelled validation clips (default 12)")
    p.add_argument("--test", type=int, default=12, help="labelled test clips (default 12)")
    p.add_argument("--unlabeled", type=int, default=30, help="unlabeled clips (default 30)")
    p.add_argument("--seconds", type=float, default=3.0, help="clip length in s (default 3.0)")
    p.add_argument("--fps", type=int, default=15, help="video frame rate (default 15)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty OUT that is not a demo dataset (other files are left alone)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from aemt.dataset.demo import generate

    start = time.perf_counter()
    labelled = generate(
        Path(args.out),
        n_train=args.train,
        n_valid=args.valid,
        n_test=args.test,
        n_unlabeled=args.unlabeled,
        seconds=args.seconds,
        fps=args.fps,
        seed=args.seed,
        force=args.force,
    )
    print(
        f"demo-data: wrote {len(labelled)} labelled + {args.unlabeled} unlabeled clips to "
        f"{args.out} in {time.perf_counter() - start:.1f} s",
    )
    return 0
