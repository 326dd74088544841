"""Run the asr stage over one shard of the manifest: resumable, one bad clip never stops the shard.

Per clip: `<out>/<video_id>/<clip_id>.json` (docs/contracts.md, "Transcripts"), written atomically. A
clip is done when its record exists with this run's configuration hash and was made from the same label
text and duration (resume); records of unreadable clips are retried. Excluded clips (missing / empty /
unreadable video) get no record. The model loads once per shard, on the first clip that needs it. The
done-file `shard_<K>.csv` (transcripts.csv columns, one row per clip of the shard) is written last.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aemt.asr.recognizer import AsrOptions, Recognizer
from aemt.asr.table import record_path, table_row
from aemt.asr.transcript import (
    check_mode,
    label_digest,
    needs_recognition,
    record_hash,
    transcribe_clip,
)
from aemt.constants import TRANSCRIPT_COLUMNS
from aemt.errors import UserError
from aemt.features.base import Clip
from aemt.features.media import MediaError
from aemt.features.runner import excluded_flags, read_shard
from aemt.io import load_json, save_json, save_rows


def finished_record(path: Path, clip: Clip, digest: str) -> dict[str, Any] | None:
    """The record of a clip that is complete for this configuration and label text, else None."""
    if not path.is_file():
        return None
    try:
        record = load_json(path)
    except (OSError, ValueError):
        return None
    if record.get("config_hash") != digest or record.get("label_digest") != label_digest(clip):
        return None
    if "unreadable_video" in str(record.get("status", "")).split(";"):
        return None  # retried: the file may have been replaced since
    return record


def excluded_record(clip: Clip, language: str) -> dict[str, Any]:
    """The done-file row of an excluded clip (no record file): its label text, its status."""
    flags = ";".join(excluded_flags(clip.status))
    return {"key": clip.key, "text": clip.text.strip(), "source": "label", "language": language,
            "status": flags}  # fmt: skip


def failed_record(clip: Clip, language: str, mode: str, digest: str, err: BaseException) -> dict:
    return {"key": clip.key, "text": clip.text.strip(), "source": "label", "language": language,
            "status": "unreadable_video", "mode": mode, "words": [], "config_hash": digest,
            "label_digest": label_digest(clip), "error": f"{type(err).__name__}: {err}"}  # fmt: skip


def asr_shard(
    manifest_path: str | Path,
    shard: int,
    out_dir: str | Path,
    done_path: str | Path,
    mode: str,
    options: AsrOptions,
) -> list[tuple]:
    """Transcribe every clip of `shard`; returns the done-file rows (TRANSCRIPT_COLUMNS)."""
    from tqdm import tqdm

    started = time.perf_counter()
    check_mode(mode)
    clips = read_shard(manifest_path, shard)
    recognizer = Recognizer(options) if mode != "never" else None  # resolves the model, no load
    digest = record_hash(mode, recognizer)
    records: dict[str, dict[str, Any]] = {}
    todo: list[Clip] = []
    for clip in clips:
        path = record_path(out_dir, clip.video_id, clip.clip_id)
        if excluded_flags(clip.status):
            records[clip.key] = excluded_record(clip, options.language)
        elif (found := finished_record(path, clip, digest)) is not None:
            records[clip.key] = found
        else:
            todo.append(clip)
    heard = sum(needs_recognition(mode, c) for c in todo)
    bar = tqdm(total=len(todo), desc=f"asr shard {shard}", unit="clip", file=sys.stderr)
    try:
        for clip in todo:
            try:
                record = transcribe_clip(clip, mode, options.language, recognizer)
            except MediaError as err:  # the clip's file cannot be opened or decoded
                record = failed_record(clip, options.language, mode, digest, err)
                print(f"warning: {clip.key}: {record['error']}", file=sys.stderr)
            except UserError:
                raise  # configuration problems (the model) stop the shard
            except Exception as err:  # noqa: BLE001 - one bad clip: record it and go on
                record = failed_record(clip, options.language, mode, digest, err)
                print(f"warning: {clip.key} ({clip.video}): {record['error']}", file=sys.stderr)
            save_json(record_path(out_dir, clip.video_id, clip.clip_id), record)
            records[clip.key] = record
            bar.update(1)
    finally:
        bar.close()
    table = [table_row(records[c.key]) for c in clips]
    save_rows(done_path, TRANSCRIPT_COLUMNS, table)
    sources = Counter(r[2] for r in table)
    print(
        f"asr shard {shard} ({mode}): {len(clips)} clips ({len(clips) - len(todo)} already done or "
        f"excluded, {heard} recognised now), transcripts from {dict(sources)}, "
        f"{time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return table
