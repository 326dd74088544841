"""The `aemt` command line: one sub-command per pipeline stage.

Each sub-command lives in `aemt.commands.<name>` and exposes `register(subparsers)`; those modules
import only argparse at top level and pull in heavy libraries (torch, mediapipe, ...) inside the
handler, so `aemt --help` and every stage start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from aemt import __version__
from aemt.errors import UserError

# Order here is the order shown in `aemt --help`.
COMMAND_MODULES = (
    "demo",
    "manifest",
    "asr",
    "extract",
    "align",
    "pretrain",
    "finetune",
    "aggregate",
    "robustness",
    "report",
    "predict",
    "mmsa",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aemt", description="AE-MT multimodal sentiment analysis pipeline."
    )
    parser.add_argument("--version", action="version", version=f"aemt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"aemt.commands.{name}")
        except ModuleNotFoundError as err:  # a command module not written yet
            if err.name == f"aemt.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except UserError as err:
        print(f"aemt {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":
    raise SystemExit(main())
