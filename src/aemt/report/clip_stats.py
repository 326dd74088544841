"""Per-clip facts for the data-quality page, one row per clip: split, status flags, duration, transcript
length, face-detection and audio coverage; and the per-modality feature table.

Raw-video datasets: read from `manifest.csv` and the per-clip sidecars it names
(`<features_dir>/<text|audio|visual>/<video_id>/<clip_id>.json`). Datasets imported from MMSA pickles (no
manifest, no sidecars): from the aligned `meta.csv` and masks, rates being fractions of valid bins.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.constants import ALL_SPLITS, FEATURE_DIR, MODALITIES, OK
from aemt.dataset.clips import is_excluded, read_manifest, split_flags
from aemt.errors import UserError
from aemt.io import load_json, read_csv_rows, require_columns
from aemt.report.speakers import speaker_fields


def split_order(aligned: Sequence[Path]) -> list[Path]:
    """Split folders in the order train, valid, test, unlabeled (others after)."""
    folders = list(dict.fromkeys(Path(f) for f in aligned))
    rank = {s: i for i, s in enumerate(ALL_SPLITS)}
    return sorted(folders, key=lambda f: rank.get(f.name, len(rank)))


def flags_of(status: str) -> list[str]:
    """The flags of a status, sorted, or [ok]."""
    return sorted(split_flags(status)) or [OK]


def excluded(clips: pd.DataFrame) -> pd.Series:
    """Per clip: whether its status keeps it out of the tensors (missing, empty or unreadable video)."""
    return clips["status"].map(is_excluded)


def _words(text: object) -> int:
    return len(str(text).split()) if isinstance(text, str) else 0


def _sidecar(folder: Path, key: str) -> dict | None:
    path = folder / f"{key}.json"
    if not path.is_file():
        return None
    try:
        return load_json(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read feature sidecar {path} ({err}); delete it and rerun extract"
        ) from err


def clips_from_features(
    manifest_path: Path, features_dir: Path
) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One row per manifest clip, with sidecar-derived rates; and one example sidecar per modality."""
    from tqdm import tqdm

    features = Path(features_dir)
    rows, examples = [], {}
    for rec in tqdm(read_manifest(manifest_path), desc="sidecars", file=sys.stderr):
        flags = split_flags(rec.status)
        row = {
            "key": rec.key,
            "split": rec.split,
            "duration": rec.duration,
            "words": _words(rec.text),
            "reason": rec.reason,
            "tokens": np.nan,
            "face_rate": np.nan,
            "frames": np.nan,
            "audio_rate": np.nan,
        }
        for modality, folder in FEATURE_DIR.items():
            side = _sidecar(features / folder, rec.key)
            if side is None:
                continue
            examples.setdefault(modality, side)
            if side.get("status") not in (None, OK):
                flags.add(str(side["status"]))
            mask = np.asarray(side.get("mask") or [], dtype=float)  # [T]
            if modality == "vision":
                row["face_rate"] = float(mask.mean()) if mask.size else 0.0
                row["frames"] = int(mask.size)
                row.update(speaker_fields(side))
            elif modality == "audio":
                row["audio_rate"] = float(mask.mean()) if mask.size else 0.0
            else:
                row["tokens"] = int((side.get("shape") or [0])[0])
        row["status"] = ";".join(sorted(flags)) or OK
        rows.append(row)
    return pd.DataFrame(rows), examples


def clips_from_aligned(aligned: Sequence[Path]) -> pd.DataFrame:
    """One row per aligned clip (MMSA-imported datasets): rates are fractions of valid alignment bins.

    `aligned` are split folders (`aligned/<split>/`, holding meta.csv and the masks).
    """
    frames = []
    for folder in split_order(aligned):
        split = folder.name
        for path in (folder / "meta.csv", *(folder / f"{m}_mask.npy" for m in MODALITIES)):
            if not path.is_file():
                raise UserError(
                    f"{path}: not found; build the aligned dataset first (snakemake aligned)"
                )
        meta = pd.read_csv(
            folder / "meta.csv", dtype={"key": str, "status": str}, keep_default_na=False
        )
        masks = {m: np.load(folder / f"{m}_mask.npy") for m in MODALITIES}  # each [N, L] bool
        frames.append(
            pd.DataFrame(
                {
                    "key": meta["key"],
                    "split": split,
                    "duration": np.nan,
                    "words": [_words(t) for t in meta.get("text", [""] * len(meta))],
                    "reason": "",
                    "tokens": masks["text"].sum(axis=1),
                    "face_rate": masks["vision"].mean(axis=1),
                    "frames": masks["vision"].shape[1],
                    "audio_rate": masks["audio"].mean(axis=1),
                    "status": [s or OK for s in meta.get("status", [OK] * len(meta))],
                }
            )
        )
    if not frames:
        raise UserError(
            "no aligned split given (aligned/<split>/meta.csv); build the dataset first "
            "(snakemake aligned)"
        )
    return pd.concat(frames, ignore_index=True)


def status_table(clips: pd.DataFrame) -> pd.DataFrame:
    """Clips per split (rows) and status flag (columns; a clip with two flags counts in both)."""
    exploded = clips.assign(flag=clips["status"].map(flags_of)).explode("flag")
    table = pd.crosstab(exploded["split"], exploded["flag"])
    order = [s for s in ALL_SPLITS if s in table.index] + [
        s for s in table.index if s not in ALL_SPLITS
    ]
    table = table.reindex(order)
    cols = [OK] if OK in table.columns else []
    table = table[cols + sorted(c for c in table.columns if c != OK)]
    totals = clips.groupby("split").size()
    left_out = clips[excluded(clips)]
    table["total clips"] = totals.reindex(table.index)
    table["in tensors"] = table["total clips"] - left_out.groupby("split").size().reindex(
        table.index, fill_value=0
    )
    table.columns.name = None
    return table.reset_index().rename(columns={"split": "split \\ status"})


def feature_table(aligned: Sequence[Path], examples: dict[str, dict]) -> pd.DataFrame:
    """Per modality: dim, aligned length, tool and version, model, hash, extraction config."""
    info = {}
    for folder in split_order(aligned):
        if (folder / "info.json").is_file():
            info = load_json(folder / "info.json")
            break
    rows = []
    for modality in MODALITIES:
        side = examples.get(modality, {})
        prov = (info.get("features") or {}).get(modality) or {}
        model_hash = side.get("model_hash") or prov.get("model_hash") or ""
        rows.append(
            {
                "modality": modality,
                "dim": (info.get("dims") or {}).get(modality, side.get("dim")),
                "aligned length": (info.get("lengths") or {}).get(modality),
                "tool": " ".join(str(x) for x in (side.get("tool"), side.get("tool_version")) if x)
                or prov.get("tool", ""),
                "model": side.get("model") or prov.get("model") or "",
                "model sha256": str(model_hash)[:12],
                "config": json.dumps(
                    side.get("config") or prov.get("config") or {}, sort_keys=True
                ),
                "config hash": side.get("config_hash") or prov.get("config_hash") or "",
            }
        )
    return pd.DataFrame(rows)


def add_transcripts(clips: pd.DataFrame, transcripts: Path) -> pd.DataFrame:
    """`clips` with the transcript each clip used (results/<ds>/transcripts.csv of the asr stage).

    Adds `source` (label / asr), `match_rate` (label words matched onto recognised words; 0 where
    nothing was recognised), `mean_logprob` and `asr_words` (recognised words; NaN: no recognition
    ran); `words` counts the words of the transcript used; a clip whose
    transcript came from speech loses the manifest's `empty_text` flag.
    """
    table = _read_transcripts(Path(transcripts))
    missing = sorted(set(clips["key"]) - set(table.index))
    if missing:
        raise UserError(
            f"{transcripts}: no row for clip {missing[0]!r} ({len(missing)} in all); rerun the asr "
            "and transcripts stages"
        )
    rows = table.loc[clips["key"]]
    out = clips.assign(
        source=rows["source"].to_numpy(),
        match_rate=pd.to_numeric(rows["match_rate"], errors="coerce").to_numpy(),
        mean_logprob=pd.to_numeric(rows["mean_logprob"], errors="coerce").to_numpy(),
        asr_words=pd.to_numeric(rows["asr_words"], errors="coerce").to_numpy(),
        words=[_words(t) for t in rows["text"]],
    )
    spoken = out["words"].to_numpy() > 0
    out.loc[spoken, "status"] = [
        ";".join(sorted(split_flags(s) - {"empty_text"})) or OK for s in out.loc[spoken, "status"]
    ]
    return out


TRANSCRIPT_FIELDS = ("key", "text", "source", "match_rate", "mean_logprob", "asr_words")


def _read_transcripts(path: Path) -> pd.DataFrame:
    """transcripts.csv as strings, indexed by clip key; a missing column or a clip listed twice is a
    UserError naming the file."""
    if not path.is_file():
        raise UserError(f"{path}: transcripts file not found; run the asr and transcripts stages")
    header, records = read_csv_rows(path)
    require_columns(path, header, TRANSCRIPT_FIELDS)
    seen: dict[str, int] = {}
    for line, rec in records:
        if rec["key"] in seen:
            raise UserError(
                f"{path}: line {line}: clip {rec['key']!r} appears twice (first on line "
                f"{seen[rec['key']]}); rerun the transcripts stage"
            )
        seen[rec["key"]] = line
    rows = [rec for _, rec in records]
    return pd.DataFrame(rows, columns=header, dtype=str).set_index("key")
