"""The `manifest` stage: probe every video and write one row per clip (`results/<ds>/manifest.csv`).

`probe_video` checks a clip cheaply with PyAV. `build_manifest` / `write_manifest` validate the label files
(:mod:`aemt.dataset.labels`), probe the videos and write the manifest (docs/contracts.md, "Manifest");
Later stages read it back with :mod:`aemt.dataset.clips`.
"""

from __future__ import annotations

import math
import string
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aemt import __version__
from aemt.constants import MANIFEST_COLUMNS, SPLITS, UNLABELED
from aemt.dataset.clips import is_excluded, join_flags
from aemt.dataset.labels import read_labels, read_unlabeled
from aemt.errors import UserError
from aemt.io import save_csv, save_json, sha256_file

if TYPE_CHECKING:  # imported where used: readers of the manifest need not pay pandas' start-up
    import pandas as pd

DEFAULT_VIDEO_PATTERN = "Raw/{video_id}/{clip_id}.mp4"


def probe_video(path: str | Path) -> tuple[float, list[str], str]:
    """(duration_s, flags, reason) of one video: open it, decode one frame, check its tail."""
    import av

    path = Path(path)
    if not path.is_file():
        return 0.0, ["missing_video"], f"video file not found: {path}"
    if path.stat().st_size == 0:
        return 0.0, ["empty_video"], f"video file is empty (0 bytes): {path}"
    try:
        with av.open(str(path)) as container:
            return _probe_container(container)
    except (av.FFmpegError, OSError, ValueError, RuntimeError, EOFError) as err:
        return _unreadable(f"cannot decode {path}: {err}")


def _unreadable(reason: str) -> tuple[float, list[str], str]:
    return 0.0, ["unreadable_video"], reason


def _probe_container(container) -> tuple[float, list[str], str]:
    if not container.streams.video:
        return _unreadable("the file has no video stream")
    stream = container.streams.video[0]
    tb = stream.time_base
    if container.duration:
        duration = container.duration / 1_000_000
    elif stream.duration and tb:
        duration = float(stream.duration * tb)
    else:
        return _unreadable("the container reports no duration")
    if next(container.decode(stream), None) is None:
        return _unreadable("no decodable video frame")
    # Truncation check: demux (no decoding) from ~1 s before the end; packets must reach the end.
    frame_s = 1.0 / float(stream.average_rate) if stream.average_rate else 0.1
    start = stream.start_time or 0
    if stream.duration and tb:
        expected, tol = float(stream.duration * tb), max(2 * frame_s, 0.05)
    else:
        expected, tol = duration, max(2 * frame_s, 0.5)
    if tb:  # seek in stream time-base units, then read packet headers only
        container.seek(start + max(0, int((expected - 1.0) / tb)), stream=stream, backward=True)
        packets = [p for p in container.demux(stream) if p.pts is not None and p.size > 0]
        end = max((float((p.pts + (p.duration or 0) - start) * tb) for p in packets), default=0.0)
        if end < expected - tol:
            return _unreadable(
                f"video data ends at {end:.2f} s but the container says {expected:.2f} s: the file "
                "looks truncated; copy or re-encode it again"
            )
    if not container.streams.audio:
        return duration, ["no_audio"], "the video has no audio stream"
    return duration, [], ""


def _check_pattern(pattern: str) -> None:
    fields = {f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None}
    if not fields or not fields <= {"video_id", "clip_id"}:
        raise UserError(
            f"video pattern {pattern!r}: use the placeholders {{video_id}} and/or {{clip_id}} only "
            f'(e.g. "{DEFAULT_VIDEO_PATTERN}").'
        )


def build_manifest(
    root: str | Path,
    labels: str = "label.csv",
    unlabeled: str | None = None,
    video_pattern: str = DEFAULT_VIDEO_PATTERN,
    scale: str = "sims",
    shard_size: int = 64,
) -> pd.DataFrame:
    """Validate the label files, probe every video: one row per clip (columns MANIFEST_COLUMNS)."""
    import pandas as pd
    from tqdm import tqdm

    root = Path(root)
    if shard_size < 1:
        raise UserError(f"shard size must be at least 1 (got {shard_size}).")
    _check_pattern(video_pattern)
    table = read_labels(root / labels, scale)
    if unlabeled:
        upath = root / unlabeled
        if upath.is_file():
            extra = read_unlabeled(upath)
            both = extra[extra["key"].isin(set(table["key"]))]
            if len(both):
                key, line = both["key"].iloc[0], both["line"].iloc[0]
                lab_line = table.loc[table["key"] == key, "line"].iloc[0]
                raise UserError(
                    f"clip {key!r} is in {root / labels} (line {lab_line}) and in {upath} (line "
                    f"{line}): a clip is either labelled or unlabeled. Remove one of the rows."
                )
            table = pd.concat([table, extra], ignore_index=True)
        else:
            print(
                f"warning: unlabeled file {upath} not found; no unlabeled clips.", file=sys.stderr
            )
    table["video"] = [
        str(root / video_pattern.format(video_id=v, clip_id=c))
        for v, c in zip(table["video_id"], table["clip_id"], strict=True)
    ]
    same = table[table["video"].duplicated(keep=False)]
    if len(same):
        raise UserError(
            f"video pattern {video_pattern!r} maps clips {same['key'].iloc[0]!r} and "
            f"{same['key'].iloc[1]!r} to the same file {same['video'].iloc[0]}; include both ids."
        )
    clips = list(zip(table["video"], table["text"], strict=True))
    probed = [_clip_status(*c) for c in tqdm(clips, "probe videos", unit="clip", file=sys.stderr)]
    duration, status, reason = zip(*probed, strict=True) if probed else ((), (), ())
    shard = np.arange(len(table)) // shard_size
    table = table.assign(split=table["mode"], shard=shard, duration=duration, status=status)
    return table.assign(reason=reason)[list(MANIFEST_COLUMNS)]


def _clip_status(video: str, text: str) -> tuple[float, str, str]:
    """(duration, status, reason) of one clip: video probe flags + `empty_text`."""
    duration, flags, reason = probe_video(video)
    parts = [reason] if reason else []
    if not text.strip():
        flags, parts = [*flags, "empty_text"], [*parts, "empty transcript"]
    return duration, join_flags(flags), "; ".join(parts)


def write_manifest(
    root: str | Path,
    labels: str,
    unlabeled: str | None,
    video_pattern: str,
    scale: str,
    shard_size: int,
    out: str | Path,
) -> pd.DataFrame:
    """Build the manifest, write `out` (+ provenance `<stem>.json`), print a summary to stderr."""
    manifest = build_manifest(root, labels, unlabeled, video_pattern, scale, shard_size)
    out = Path(out)
    flags = Counter(f for s in manifest["status"] for f in (s.split(";")))
    n_excluded = sum(is_excluded(s) for s in manifest["status"])
    splits = {s: int((manifest["split"] == s).sum()) for s in (*SPLITS, UNLABELED)}
    upath = Path(root) / unlabeled if unlabeled else None
    upath = upath if upath and upath.is_file() else None
    n_shards = math.ceil(len(manifest) / shard_size)
    provenance = dict(scale=scale, root=str(root), labels=str(Path(root) / labels))
    provenance.update(labels_sha256=sha256_file(Path(root) / labels), video_pattern=video_pattern)
    provenance.update(unlabeled=upath, unlabeled_sha256=upath and sha256_file(upath))
    provenance.update(shard_size=shard_size, n_shards=n_shards, n_clips=len(manifest))
    provenance.update(n_excluded=n_excluded, split_counts=splits, status_counts=dict(flags))
    save_json(out.with_suffix(".json"), {**provenance, "aemt_version": __version__})
    save_csv(out, manifest)
    counts = ", ".join(f"{k} {v}" for k, v in splits.items())
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(flags.items()))
    print(
        f"manifest: {len(manifest)} clips in {n_shards} shard(s) of {shard_size} -> {out}\n"
        f"  split: {counts}\n  status: {statuses}\n"
        f"  left out of training (missing/empty/unreadable video): {n_excluded}",
        file=sys.stderr,
    )
    for split in SPLITS:
        if splits[split] == 0:
            print(f"  warning: split {split!r} has no clips.", file=sys.stderr)
    return manifest
