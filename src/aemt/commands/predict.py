"""`aemt predict`: score new clips with a fine-tuned checkpoint (same extraction and alignment).

Example:
    aemt predict --checkpoint results/demo/finetune/aemt/1111/model.pt clip1.mp4 clip2.mp4 \\
        --transcripts transcripts.csv --out predictions.csv

Transcripts: `--text "..."` (one video only), or `--transcripts CSV` with columns `video` (path or
file name) and `text`; a video without one is transcribed with speech recognition (the checkpoint's
recognizer, `auto` = Whisper tiny.en for English; status `empty_text` when no word is heard).
Prints a table (video, score, class, polarity, status) to stdout; `--out` also writes it as CSV.
Exit status 0 when at least one clip got a score, 1 when none did (e.g. all videos unreadable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict sentiment scores of new clips with a fine-tuned checkpoint",
        description="Extract features of each VIDEO exactly as the checkpoint's training data was "
        "extracted (settings read from the checkpoint), align them, and print the predicted score, "
        "class and polarity per clip. A checkpoint whose feature configuration differs from what "
        "this run would extract is refused before anything is computed.",
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="fine-tuned model.pt")
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s) to score")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--text", help="transcript of the (single) VIDEO")
    source.add_argument("--transcripts", type=Path, help="CSV with columns video, text")
    parser.add_argument("--out", type=Path, help="also write the table to this CSV file")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="default: cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=32, help="clips per forward pass")
    parser.add_argument(
        "--text-model",
        default=None,
        help="local folder (or hub name) of the text model the checkpoint was trained with, when "
        "it lives elsewhere on this machine (checked by weights sha256)",
    )
    parser.add_argument(
        "--asr-model",
        default=None,
        help="Whisper model (name or local CTranslate2 folder) for clips without text and for word "
        "timings (default: the one recorded in the checkpoint, else auto)",
    )
    parser.add_argument(
        "--model-asset",
        default=None,
        help="face_landmarker.task the checkpoint was trained with, when it lives elsewhere "
        "(checked by sha256)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import os

    os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging
    from aemt.errors import UserError
    from aemt.io import save_csv
    from aemt.predict import PredictConfig, predict_videos

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1 (got {args.batch_size})")
    texts = transcripts_for(args.videos, args.text, args.transcripts)
    cfg = PredictConfig(
        device=args.device,
        threads=args.threads,
        batch_size=args.batch_size,
        text_model=args.text_model,
        model_asset=args.model_asset,
        asr_model=args.asr_model,
    )
    table = predict_videos(args.checkpoint, args.videos, texts, cfg)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
    if args.out is not None:
        save_csv(args.out, table)
        print(f"predict: {len(table)} clip(s) -> {args.out}", file=sys.stderr)
    return 0 if table["score"].notna().any() else 1


def transcripts_for(
    videos: list[str | Path], text: str | None = None, transcripts: str | Path | None = None
) -> list[str]:
    """One transcript per video: `text` (single video only), rows of a `video,text` CSV, or '' (then
    predict transcribes the video's speech).

    A CSV row matches a video by path (relative paths taken from the CSV's folder or the current
    one); a row giving a bare file name also matches the one video of that name. Two rows for one
    video, or one name for several videos, is an error. Unmatched videos get '' (warned).
    """
    from aemt.errors import UserError

    if text is not None and transcripts is not None:
        raise UserError("give either --text or --transcripts, not both")
    if text is not None:
        if len(videos) != 1:
            raise UserError(
                f"--text gives one transcript but {len(videos)} videos were given; use "
                "--transcripts CSV (columns video, text) for several videos"
            )
        return [text]
    found: list[str | None] = [None] * len(videos)
    if transcripts is not None:
        found = _match_csv(Path(transcripts), videos)
    for video, value in zip(videos, found, strict=True):
        if value is None:
            where = f" in {transcripts}" if transcripts is not None else ""
            print(
                f"warning: {video}: no transcript{where}; its speech will be transcribed",
                file=sys.stderr,
            )
    return [value or "" for value in found]


def _match_csv(path: Path, videos: list[str | Path]) -> list[str | None]:
    from aemt.errors import UserError
    from aemt.io import read_csv_rows, require_columns  # UTF-8 and line-numbered errors

    if not path.is_file():
        raise UserError(f"{path}: transcripts file not found")
    header, rows = read_csv_rows(path)
    require_columns(path, header, ("video", "text"))
    by_path: dict[Path, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    texts: dict[int, str] = {}
    for line, row in rows:
        name = row["video"].strip()
        if not name:
            raise UserError(f"{path}: line {line}, column 'video': empty; give a path or file name")
        given = Path(name).expanduser()
        places = [given] if given.is_absolute() else [path.parent / given, Path.cwd() / given]
        for place in {p.resolve() for p in places}:
            by_path.setdefault(place, []).append(line)
        if given.name == name:  # a bare file name (no folder) also matches by name
            by_name.setdefault(name, []).append(line)
        texts[line] = row["text"]
    out: list[str | None] = []
    names = [Path(v).name for v in videos]
    for video, name in zip(videos, names, strict=True):
        lines = by_path.get(Path(video).expanduser().resolve())
        if not lines and by_name.get(name):
            lines = by_name[name]
            if names.count(name) > 1:
                raise UserError(
                    f"{path}: line {lines[0]} names {name!r}, which matches {names.count(name)} "
                    "of the given videos; write their paths in column 'video' to tell them apart"
                )
        if lines and len(lines) > 1:
            raise UserError(
                f"{path}: lines {', '.join(map(str, lines))} all match video {video}; give each "
                "video once (use paths instead of file names to tell them apart)"
            )
        out.append(texts[lines[0]] if lines else None)
    return out
