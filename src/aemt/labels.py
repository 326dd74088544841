"""label.csv / unlabeled.csv: reading and validation (rules mirrored in
`workflow/schemas/labels.schema.yaml`).

`read_labels` / `read_unlabeled` return one row per clip and raise `UserError`s naming file, line and
column: a missing column, a duplicate clip key (naming both rows), a `mode` outside train / valid / test,
a label outside the dataset's scale, non-UTF-8 bytes (with their offset) or malformed CSV.
`read_csv_rows` / `require_columns` are the line-numbered CSV reader and column check they use.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aemt.errors import UserError

if TYPE_CHECKING:  # imported where used: callers that only count rows need not pay pandas' start-up
    import pandas as pd

SPLITS = ("train", "valid", "test")
UNLABELED = "unlabeled"
SCALES = {"sims": 1.0, "mosei": 3.0}
UNIMODAL = ("label_T", "label_A", "label_V")
LABEL_VALUES = ("label", *UNIMODAL)
LABEL_COLUMNS = ("video_id", "clip_id", "text", *LABEL_VALUES, "annotation", "mode")
REQUIRED_LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
REQUIRED_UNLABELED_COLUMNS = ("video_id", "clip_id", "text")
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
