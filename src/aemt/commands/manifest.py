"""`aemt manifest`: validate a dataset's label files, probe its videos, write manifest.csv."""

from __future__ import annotations

import argparse

from aemt.commands._args import add_scale


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "manifest",
        help="validate label.csv (+ unlabeled.csv), probe the videos, write the clip manifest",
        description=(
            "Validate <root>/<labels> (and the optional unlabeled file), probe every video with "
            "PyAV and write one row per clip with its split, extraction shard, duration and status."
        ),
    )
    parser.add_argument(
        "--root", required=True, help="dataset folder holding the label file and videos"
    )
    parser.add_argument("--labels", default="label.csv", help="label file, relative to --root")
    parser.add_argument(
        "--unlabeled", default=None, help="optional unlabeled file, relative to --root"
    )
    parser.add_argument(
        "--video-pattern",
        default="Raw/{video_id}/{clip_id}.mp4",
        help="video path relative to --root, with {video_id} / {clip_id} placeholders",
    )
    add_scale(parser)
    parser.add_argument("--shard-size", type=int, default=64, help="clips per extraction shard")
    parser.add_argument("--out", required=True, help="output manifest.csv")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from aemt.dataset.manifest import write_manifest

    write_manifest(
        args.root,
        args.labels,
        args.unlabeled,
        args.video_pattern,
        args.scale,
        args.shard_size,
        args.out,
    )
    return 0
