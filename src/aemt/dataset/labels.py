"""label.csv / unlabeled.csv: reading and validation (rules mirrored in
`workflow/schemas/labels.schema.yaml`).

`read_labels` / `read_unlabeled` return one row per clip and raise `UserError`s naming file, line and
column: a missing column, a duplicate clip key (naming both rows), a `mode` outside train / valid / test,
a label outside the dataset's scale, non-UTF-8 bytes (with their offset) or malformed CSV (the
line-numbered reader is `aemt.io.read_csv_rows`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aemt.constants import (
    LABEL_VALUES,
    REQUIRED_LABEL_COLUMNS,
    REQUIRED_UNLABELED_COLUMNS,
    SCALE_BOUNDS,
    SPLITS,
    UNIMODAL,
    UNLABELED,
)
from aemt.errors import UserError
from aemt.io import read_csv_rows, require_columns

if TYPE_CHECKING:  # imported where used
    import pandas as pd

_TABLE_COLUMNS = ("key", "video_id", "clip_id", "text", *LABEL_VALUES, "annotation", "mode", "line")


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
    bound = SCALE_BOUNDS[scale]
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
    if scale not in SCALE_BOUNDS:
        raise UserError(f"unknown scale {scale!r}; use one of: {', '.join(SCALE_BOUNDS)}.")
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
