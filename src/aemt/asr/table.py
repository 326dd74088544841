"""The transcript tables: the asr stage's done-file per shard (`asr/shard_<KKKK>.csv`) and their merge,
`results/<ds>/transcripts.csv`, both with the columns `aemt.constants.TRANSCRIPT_COLUMNS`; and reading
one back as {key: text} (the text extractor's `--transcripts`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aemt.constants import TRANSCRIPT_COLUMNS
from aemt.errors import UserError
from aemt.io import read_csv_rows, require_columns, save_rows


def table_row(record: dict[str, Any]) -> tuple:
    """One transcripts.csv row from a per-clip record (empty cells for missing numbers)."""
    return (
        record["key"],
        record["text"],
        record["source"],
        record["language"],
        _cell(record.get("mean_logprob")),
        _cell(record.get("match_rate")),
        _cell(record.get("asr_words")),
        record["status"],
    )


def _cell(value: float | None) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else repr(value)


def read_transcripts(path: str | Path) -> dict[str, str]:
    """{clip key: transcript text} of a transcripts.csv (or of one asr shard done-file)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: transcripts file not found; run `aemt asr` (its Snakemake rule).")
    header, rows = read_csv_rows(path)
    require_columns(path, header, ("key", "text"))
    texts: dict[str, str] = {}
    for line, row in rows:
        if row["key"] in texts:
            raise UserError(f"{path}: line {line}: clip {row['key']!r} appears twice.")
        texts[row["key"]] = row["text"]
    return texts


def merge_transcripts(manifest: str | Path, shards: Sequence[str | Path], out: str | Path) -> int:
    """Concatenate the asr done-files in manifest order into `out`; returns the number of rows."""
    from aemt.dataset.clips import read_manifest

    rows: dict[str, list[str]] = {}
    source: dict[str, Path] = {}  # the done-file each key came from
    for path in map(Path, shards):
        header, records = read_csv_rows(path)
        require_columns(path, header, TRANSCRIPT_COLUMNS)
        for line, rec in records:
            if rec["key"] in rows:
                raise UserError(
                    f"{path}: line {line}: clip {rec['key']!r} appears twice (also in "
                    f"{source[rec['key']]}); delete the stale shard file and rerun the asr stage."
                )
            rows[rec["key"]], source[rec["key"]] = [rec[c] for c in TRANSCRIPT_COLUMNS], path
    keys = [row.key for row in read_manifest(manifest)]
    missing = [k for k in keys if k not in rows]
    if missing:
        raise UserError(
            f"{len(missing)} clip(s) of {manifest} are in no asr done-file (first: {missing[0]!r}); "
            "pass every shard's asr/shard_<KKKK>.csv, or rerun the asr stage."
        )
    save_rows(out, TRANSCRIPT_COLUMNS, [rows[k] for k in keys])
    return len(keys)


def record_path(asr_dir: str | Path, video_id: str, clip_id: str) -> Path:
    """Where the asr stage keeps one clip's record: `<asr_dir>/<video_id>/<clip_id>.json`."""
    return Path(asr_dir) / video_id / f"{clip_id}.json"


def read_record(asr_dir: Path, video_id: str, clip_id: str) -> dict[str, Any]:
    """One clip's asr record (`record_path`); a UserError names a missing one."""
    from aemt.io import load_json

    path = record_path(asr_dir, video_id, clip_id)
    try:
        return load_json(path)
    except FileNotFoundError:
        raise UserError(
            f"{path}: no asr record for clip {video_id}/{clip_id}; run the asr stage (`aemt asr`) "
            "for its shard."
        ) from None
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: unreadable asr record ({err}); delete it and rerun asr.") from err


def asr_provenance(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """How a split's transcripts were made (info.json `asr`): settings of the first record that
    recognised speech (else the first), and how many transcripts came from each source."""
    from collections import Counter

    keys = (
        "mode",
        "language",
        "tool",
        "tool_version",
        "model",
        "model_hash",
        "config",
        "config_hash",
    )
    first = next((r for r in records if r.get("model")), records[0] if records else {})
    rates = [float(r["match_rate"]) for r in records if r.get("match_rate") is not None]
    return {
        **{k: first.get(k) for k in keys},
        "sources": dict(sorted(Counter(str(r.get("source")) for r in records).items())),
        "mean_match_rate": round(sum(rates) / len(rates), 4) if rates else None,
    }
