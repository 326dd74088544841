"""Dataset input: label-file validation, video probing and the clip manifest.

`read_labels` / `read_unlabeled` validate `label.csv` / `unlabeled.csv` (rules mirrored in
`workflow/schemas/labels.schema.yaml`) and raise `UserError`s naming file, line and column.
`probe_video` checks a clip cheaply with PyAV. `build_manifest` / `write_manifest` produce
`results/<ds>/manifest.csv` (docs/contracts.md, "Manifest"); `read_manifest` reads it back.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import string
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from aemt import __version__
from aemt.errors import UserError
from aemt.io import save_csv, save_json, sha256_file

if TYPE_CHECKING:  # imported where used: readers of the manifest need not pay pandas' start-up
    import pandas as pd

MODALITIES = ("text", "audio", "vision")
FEATURE_DIR = {"text": "text", "audio": "audio", "vision": "visual"}
SPLITS = ("train", "valid", "test")
UNLABELED = "unlabeled"
EXCLUDED = frozenset({"missing_video", "empty_video", "unreadable_video"})
SCALES = {"sims": 1.0, "mosei": 3.0}
FLAG_ORDER = tuple("missing_video empty_video unreadable_video no_audio no_face empty_text".split())
DEFAULT_VIDEO_PATTERN = "Raw/{video_id}/{clip_id}.mp4"
UNIMODAL = ("label_T", "label_A", "label_V")
LABEL_VALUES = ("label", *UNIMODAL)
LABEL_COLUMNS = ("video_id", "clip_id", "text", *LABEL_VALUES, "annotation", "mode")
REQUIRED_LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
REQUIRED_UNLABELED_COLUMNS = ("video_id", "clip_id", "text")
MANIFEST_COLUMNS = (
    *("key", "video_id", "clip_id", "split", "shard", "video", "duration", "text"),
    *(*LABEL_VALUES, "annotation", "status", "reason"),
)
_TABLE_COLUMNS = ("key", "video_id", "clip_id", "text", *LABEL_VALUES, "annotation", "mode", "line")


def count_clips(root: str | Path, labels: str = "label.csv", unlabeled: str | None = None) -> int:
    """Data rows in the label file (+ unlabeled file), without validation (Snakemake parse time)."""
    path = Path(root) / labels
    if not path.is_file():
        raise UserError(f"{path}: label file not found; check the dataset's `root` and `labels`.")
    total = _count_rows(path)
    if unlabeled and (Path(root) / unlabeled).is_file():
        total += _count_rows(Path(root) / unlabeled)
    return total


def _count_rows(path: Path) -> int:
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        try:
            return max(0, sum(not _blank(r) for r in csv.reader(fh)) - 1)
        except csv.Error:  # malformed: the manifest stage reports it; any count will do here
            return 0


def _blank(fields: list[str]) -> bool:
    return all(not f.strip() for f in fields)


def read_csv_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (first line number, row dict) per record; line 1 is the header."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"{path}: file not found; check the dataset's root and file name."
        ) from None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[bom:].decode("utf-8")
    except UnicodeDecodeError as err:
        off = err.start + bom
        line = data.count(b"\n", 0, off) + 1
        col = off - data.rfind(b"\n", 0, off)
        raise UserError(
            f"{path}: not valid UTF-8: byte 0x{data[off]:02x} at byte offset {off} (line {line}, "
            f"byte {col} of that line). Re-save the file as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed.csv`."
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    prev = 0
    try:
        for fields in reader:
            start, prev = prev + 1, reader.line_num
            if _blank(fields):
                continue
            if header is None:
                header = [h.strip() for h in fields]
                dup = [h for h, n in Counter(header).items() if n > 1]
                if dup:
                    raise UserError(f"{path}: line 1 (header): column {dup[0]!r} appears twice.")
                continue
            if len(fields) != len(header):
                span = f" (the record spans lines {start}-{prev}: check for an unclosed quote)"
                raise UserError(
                    f"{path}: line {start}: malformed CSV: expected {len(header)} fields as in the "
                    f"header (line 1) but found {len(fields)}{span if prev > start else ''}. Quote "
                    'fields that contain commas or line breaks ("like, this").'
                )
            rows.append((start, dict(zip(header, fields, strict=True))))
    except csv.Error as err:
        raise UserError(f"{path}: line {reader.line_num}: malformed CSV ({err}).") from None
    if header is None:
        raise UserError(f"{path}: the file is empty; it needs a header line and one row per clip.")
    return header, rows


def require_columns(path: Path, header: list[str], required: tuple[str, ...]) -> None:
    for col in required:
        if col in header:
            continue
        hint = [h for h in header if h.lower() == col.lower()]
        sep = next((s for s in (";", "\t") if any(s in h for h in header)), None)
        msg = f"{path}: missing column {col!r} (header, line 1, has: {', '.join(header)})."
        if hint:
            msg += f" Rename {hint[0]!r} to {col!r} (names are case-sensitive)."
        elif sep:
            msg += f" The file seems to use {sep!r} as separator; save it comma-separated."
        raise UserError(f"{msg} Required columns: {', '.join(required)}.")


def _ids(path: Path, line: int, row: dict[str, str]) -> tuple[str, str]:
    out = []
    for col in ("video_id", "clip_id"):
        value = row[col].strip()
        where = f"{path}: line {line}, column {col!r}"
        if not value:
            raise UserError(f"{where}: empty. Every clip needs a video_id and a clip_id.")
        if "/" in value or "\\" in value or value in (".", ".."):
            raise UserError(f"{where}: {value!r} is not a usable id (no '/', '\\', '.' or '..').")
        out.append(value)
    return out[0], out[1]


def _label(path: Path, line: int, col: str, raw: str, scale: str) -> float | None:
    """Parse one label cell; None when empty."""
    raw = raw.strip()
    if not raw:
        return None
    bound = SCALES[scale]
    where = f"{path}: line {line}, column {col!r}"
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UserError(f"{where}: {raw!r} is not a number; write one in [-{bound:g}, {bound:g}].")
    if abs(value) > bound:
        other = "mosei" if scale == "sims" else "sims"
        raise UserError(
            f"{where}: {value:g} is outside [-{bound:g}, {bound:g}] for scale {scale!r}. Fix the "
            f"value, or set the dataset's scale to {other!r} if that is the label range."
        )
    return value


def _read_table(path: Path, required: tuple[str, ...], parse: Callable) -> pd.DataFrame:
    """Validated rows (columns _TABLE_COLUMNS); `parse(line, row, key, video_id, clip_id)` each."""
    import pandas as pd

    header, rows = read_csv_rows(path)
    require_columns(path, header, required)
    records = []
    for line, row in rows:
        video_id, clip_id = _ids(path, line, row)
        records.append((*parse(line, row, f"{video_id}/{clip_id}", video_id, clip_id), line))
    table = pd.DataFrame.from_records(records, columns=list(_TABLE_COLUMNS))
    dup = table[table["key"].duplicated(keep=False)]
    if len(dup):
        key = dup["key"].iloc[0]
        lines = dup.loc[dup["key"] == key, "line"].tolist()
        raise UserError(
            f"{path}: duplicate clip key {key!r} (columns 'video_id', 'clip_id') on line "
            f"{lines[0]} and line {lines[1]}. Each clip must appear once: remove or rename one row."
        )
    return table


def read_labels(path: str | Path, scale: str) -> pd.DataFrame:
    """Validated label.csv, columns `_TABLE_COLUMNS` (unimodal labels fall back to `label`)."""
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of: {', '.join(SCALES)}.")
    path = Path(path)

    def parse(line: int, row: dict[str, str], key: str, video_id: str, clip_id: str) -> tuple:
        mode = row["mode"].strip()
        if mode not in SPLITS:
            raise UserError(
                f"{path}: line {line}, column 'mode': {mode!r} is not one of train, valid, test. "
                "Fix the value (clips without labels belong in the unlabeled file)."
            )
        label = _label(path, line, "label", row["label"], scale)
        if label is None:
            raise UserError(
                f"{path}: line {line}, column 'label': empty; every labelled clip needs one."
            )
        uni = [_label(path, line, c, row.get(c, ""), scale) for c in UNIMODAL]
        uni = [label if v is None else v for v in uni]
        return (key, video_id, clip_id, row["text"], label, *uni, row.get("annotation", ""), mode)

    table = _read_table(path, REQUIRED_LABEL_COLUMNS, parse)
    if table.empty:
        raise UserError(f"{path}: no data rows after the header; add one row per labelled clip.")
    return table


def read_unlabeled(path: str | Path) -> pd.DataFrame:
    """Validated unlabeled.csv (video_id, clip_id, text); columns as `read_labels`, labels NaN."""
    path = Path(path)

    def parse(line: int, row: dict[str, str], key: str, video_id: str, clip_id: str) -> tuple:
        for col in LABEL_VALUES:
            if row.get(col, "").strip():
                raise UserError(
                    f"{path}: line {line}, column {col!r}: unlabeled clips carry no label (found "
                    f"{row[col].strip()!r}). Move the row to the label file or clear the cell."
                )
        mode = row.get("mode", "").strip()
        if mode not in ("", UNLABELED, "train"):
            raise UserError(
                f"{path}: line {line}, column 'mode': {mode!r} is not allowed here: unlabeled "
                "clips are used for pretraining only. Leave 'mode' empty, or move the row to the "
                "label file."
            )
        no_labels = (math.nan,) * len(LABEL_VALUES)
        return (
            key,
            video_id,
            clip_id,
            row["text"],
            *no_labels,
            row.get("annotation", ""),
            UNLABELED,
        )

    return _read_table(path, REQUIRED_UNLABELED_COLUMNS, parse)


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


def join_flags(flags: list[str] | set[str]) -> str:
    """`;`-joined flags in canonical order, or `ok`."""
    ordered = [f for f in FLAG_ORDER if f in flags] + sorted(set(flags) - set(FLAG_ORDER))
    return ";".join(ordered) or "ok"


def split_flags(status: str) -> set[str]:
    return {f for f in str(status).split(";") if f and f != "ok"}


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
    n_excluded = sum(bool(split_flags(s) & EXCLUDED) for s in manifest["status"])
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


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Read manifest.csv: ids/text as strings (leading zeros kept), labels float (NaN = none)."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; run `aemt manifest` (or its Snakemake rule).")
    manifest = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in MANIFEST_COLUMNS if c not in manifest.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; rerun `aemt manifest`.")
    for col in LABEL_VALUES:
        manifest[col] = pd.to_numeric(manifest[col].replace("", math.nan))
    manifest["duration"] = pd.to_numeric(manifest["duration"].replace("", "0"))
    manifest["shard"] = manifest["shard"].astype(int)
    return manifest
