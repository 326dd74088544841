"""Atomic file output and small I/O helpers shared by every stage.

Every output is written to a temporary name next to its destination (`.<name>.<pid>.tmp`) and renamed on
success, so an interrupted run never leaves a file that looks complete. A run killed outright (SIGKILL, a
node lost) cannot clean up its temporary file; the next write of the same destination removes it once
its process is gone.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import glob
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aemt.errors import UserError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of `path` left by writers that no longer run; return them."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid)):
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # not ours to delete (permissions): it stays hidden and harmless
                continue
            removed.append(tmp)
    return removed


def save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def save_json(path: str | os.PathLike, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=_json_default) + "\n")


def save_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_rows(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Write a header and rows as CSV atomically, in the dialect pandas' `to_csv` uses (no pandas)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def save_csv(path: str | os.PathLike, frame) -> None:
    """Write a pandas DataFrame as CSV (no index) atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def load_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def config_hash(config: Any) -> str:
    """Stable short hash of a JSON-serialisable configuration."""
    blob = json.dumps(config, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# --------------------------------------------------------------------------- reading CSV files


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
