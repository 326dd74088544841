"""The clip records every stage after the manifest works on: `read_manifest` (csv module, no pandas
start-up) gives one `ManifestRow` per clip of `results/<ds>/manifest.csv`; `join_flags` / `split_flags`
convert between a status string and its set of flags; `is_excluded` says whether a status keeps the
clip out of the tensors. Imports no media library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from aemt.constants import EXCLUDED, FLAG_ORDER, LABEL_VALUES, MANIFEST_COLUMNS, OK
from aemt.errors import UserError
from aemt.io import read_csv_rows


def join_flags(flags: list[str] | set[str]) -> str:
    """`;`-joined flags in canonical order, or `ok`."""
    ordered = [f for f in FLAG_ORDER if f in flags] + sorted(set(flags) - set(FLAG_ORDER))
    return ";".join(ordered) or OK


def split_flags(status: str) -> set[str]:
    return {f for f in str(status).split(";") if f and f != OK}


def is_excluded(status: str) -> bool:
    """Whether a status flags the video missing, empty or unreadable (the clip stays out of the tensors)."""
    return bool(split_flags(status) & EXCLUDED)


@dataclass
class ManifestRow:
    """One row of manifest.csv: ids and text as strings, labels float (NaN = none)."""

    key: str
    video_id: str
    clip_id: str
    split: str
    shard: int
    video: str
    duration: float
    text: str
    label: float
    label_T: float
    label_A: float
    label_V: float
    annotation: str
    status: str
    reason: str

    @property
    def flags(self) -> set[str]:
        return split_flags(self.status)


def read_manifest(path: str | Path) -> list[ManifestRow]:
    """Read manifest.csv (docs/contracts.md): one `ManifestRow` per clip, in file order.

    Every cell is read as a string (ids keep their leading zeros); labels become floats (empty = NaN),
    `duration` a float (empty = 0) and `shard` an int. Bad cells raise a UserError naming line and column.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found; run `aemt manifest` (or its Snakemake rule).")
    header, records = read_csv_rows(path)
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}; rerun `aemt manifest`.")
    rows = []
    for line, rec in records:
        values = {c: rec[c] for c in MANIFEST_COLUMNS}
        for col in (*LABEL_VALUES, "duration"):
            values[col] = _cell(path, line, col, rec[col], _float)
        values["duration"] = 0.0 if math.isnan(values["duration"]) else values["duration"]
        values["shard"] = _cell(path, line, "shard", rec["shard"], _integer)
        values["status"] = values["status"] or OK
        rows.append(ManifestRow(**values))
    return rows


def count_shards(path: str | Path) -> int:
    """The number of extraction shards of a manifest (1 + the largest `shard`; 0 when empty)."""
    return 1 + max((row.shard for row in read_manifest(path)), default=-1)


def _float(cell: str) -> float:
    return float(cell) if cell.strip() else math.nan


def _integer(cell: str) -> int:
    value = float(cell)
    if value != int(value):
        raise ValueError(cell)
    return int(value)


def _cell(path: Path, line: int, column: str, cell: str, parse):
    try:
        return parse(cell)
    except (ValueError, OverflowError):
        kind = "an integer" if parse is _integer else "a number"
        raise UserError(
            f"{path}: line {line}, column {column!r}: {cell!r} is not {kind}; rebuild the manifest "
            "with `aemt manifest`."
        ) from None
