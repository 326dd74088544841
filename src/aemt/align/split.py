"""Alignment stage: per-clip features -> fixed-length, time-aligned tensors for one split.

Audio and visual frames are averaged, using valid frames only, into `length` equal time bins that
span each clip, so bin k of audio and bin k of vision cover the same interval (the paper's average
pooling, done in time). Text token states are truncated / padded to `length` ([CLS] stays first) or
reduced to the [CLS] row. `mode="words"` instead pools audio and visual frames per text token over its
word's time span (`aemt.align.words`). meta.csv's `text` is the transcript the text features encode
(the asr stage's, from the text sidecar). Output files: docs/contracts.md, "Aligned tensors".
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from aemt import __version__
from aemt.align.bins import TEXT_POOLING, align_clip
from aemt.align.words import align_clip_words, clip_token_spans
from aemt.asr.table import asr_provenance, read_record
from aemt.constants import (
    ABSENT_FLAG,
    ALIGN_MODES,
    ALL_SPLITS,
    EXCLUDED,
    FEATURE_DIR,
    LABEL_VALUES,
    META_COLUMNS,
    MODALITIES,
    OK,
)
from aemt.dataset.clips import (
    ManifestRow,
    is_excluded,
    join_flags,
    read_manifest,
    split_flags,
)
from aemt.errors import UserError
from aemt.io import load_json, save_json, save_npy, save_rows, sha256_file


def feature_paths(features_dir: str | Path, modality: str, video_id: str, clip_id: str) -> tuple:
    """(npy, sidecar json) of one clip's features; `modality` in MODALITIES."""
    base = Path(features_dir) / FEATURE_DIR[modality] / video_id
    return base / f"{clip_id}.npy", base / f"{clip_id}.json"


def _load_clip(npy: Path, sidecar: dict, modality: str, key: str) -> np.ndarray:
    try:
        values = np.load(npy)
    except (OSError, ValueError) as err:
        raise UserError(
            f"clip {key}: cannot read {npy} ({err}); delete it and rerun extraction."
        ) from err
    if values.ndim != 2:
        raise UserError(f"clip {key}: {npy} has shape {values.shape}, expected [T, D]; re-extract.")
    if values.size == 0:
        values = np.zeros((0, int(sidecar.get("dim") or values.shape[1])), np.float32)
    mask = sidecar.get("mask")
    if mask is not None and len(mask) != len(values):
        raise UserError(
            f"clip {key}: {npy} has {len(values)} rows but its sidecar mask has {len(mask)}; "
            f"the {modality} features are inconsistent: delete both files and rerun extraction."
        )
    return values


def _check_same_extraction(first: dict, sidecar: dict, dim: int, npy: Path, key: str) -> None:
    """All clips of a modality must come from one extraction setting (same dim and config hash)."""
    if dim != first["dim"] or sidecar.get("config_hash") != first.get("config_hash"):
        raise UserError(
            f"clip {key}: {npy} (dim {dim}, config {sidecar.get('config_hash')}) does not match "
            f"the other {sidecar.get('modality')} features (dim {first['dim']}, config "
            f"{first.get('config_hash')}): features from different extraction settings are mixed; "
            "rerun the extraction of this modality."
        )


def _missing_message(missing: list[tuple[str, str, Path, int]], manifest: Path, root: Path) -> str:
    """What is missing, and how to rerun the extraction shards that should have made it."""
    lines = [f"  clip {k}: {m} features missing ({p})" for k, m, p, _ in missing[:5]]
    more = [f"  ... and {len(missing) - 5} more"] if len(missing) > 5 else []
    reruns = sorted({(FEATURE_DIR[m], int(s)) for _, m, _, s in missing})
    for mod, shard in reruns:
        done = [p for p in (root / mod).glob("shard_*.csv") if p.stem[6:].isdigit()]
        done = [str(p) for p in done if int(p.stem[6:]) == shard]
        lines.append(
            f"Rerun {mod} shard {shard}: `aemt extract {mod} --manifest {manifest} --shard {shard} "
            f"--out-dir {root / mod} ...`"
            + (f", or delete {done[0]} and rerun Snakemake" if done else "")
        )
    orphans = [p.with_suffix(".json") for _, _, p, _ in missing if p.with_suffix(".json").exists()]
    if orphans:  # a sidecar marks the clip done, so the extractor would skip it
        lines.append(f"First delete the sidecars left without features, e.g. {orphans[0]}.")
    head = f"{len(missing)} feature file(s) missing for clips of {manifest}:"
    return "\n".join([head, *lines[:5], *more, *lines[5:]])


def _label_cell(value: float) -> str:
    """A label as pandas' to_csv writes a float column: shortest repr, NaN empty."""
    return "" if math.isnan(value) else repr(float(value))


def _probe_dims(manifest: list[ManifestRow], features_dir: Path) -> dict[str, dict]:
    """For an empty split: the first sidecar of each modality anywhere in the manifest."""
    found: dict[str, dict] = {}
    for row in manifest:
        for m in MODALITIES:
            npy, js = feature_paths(features_dir, m, row.video_id, row.clip_id)
            if m not in found and js.is_file() and npy.is_file():
                found[m] = {**_sidecar(js), "dim": int(np.load(npy, mmap_mode="r").shape[1])}
        if len(found) == len(MODALITIES):
            return found
    raise UserError(
        f"no extracted {', '.join(m for m in MODALITIES if m not in found)} features under "
        f"{features_dir}: the split has no clips and the feature dims cannot be known. Run the "
        "extraction first."
    )


def _provenance(sidecar: dict) -> dict[str, Any]:
    keys = ("tool", "tool_version", "model", "model_hash", "config", "config_hash", "feature_names")
    return {k: sidecar.get(k) for k in keys}


def align_split(
    manifest_path: str | Path,
    features_dir: str | Path,
    split: str,
    length: int,
    out_dir: str | Path,
    text_pooling: str = "tokens",
    scale: str | None = None,
    mode: str = "bins",
    asr_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Write the aligned tensors of one split to `out_dir`; returns the content of info.json.

    `mode`: `bins` (equal time bins) or `words` (one step per text token; needs `asr_dir`, the asr
    stage's per-clip records, for the word times). With `asr_dir`, info.json records the asr settings.
    """
    from tqdm import tqdm

    manifest_path, features_dir, out_dir = Path(manifest_path), Path(features_dir), Path(out_dir)
    if split not in ALL_SPLITS:
        raise UserError(f"unknown split {split!r}; use one of {', '.join(ALL_SPLITS)}.")
    if text_pooling not in TEXT_POOLING:
        raise UserError(f"unknown text pooling {text_pooling!r}; use 'tokens' or 'cls'.")
    if mode not in ALIGN_MODES:
        raise UserError(f"unknown align mode {mode!r}; use one of {', '.join(ALIGN_MODES)}.")
    if mode == "words" and asr_dir is None:
        raise UserError("align mode 'words' needs the asr records (--asr-dir results/<ds>/asr).")
    if length < 1:
        raise UserError(f"align length must be at least 1 (got {length}).")
    manifest = read_manifest(manifest_path)
    if scale is None and manifest_path.with_suffix(".json").is_file():
        scale = load_json(manifest_path.with_suffix(".json")).get("scale")
    rows = [row for row in manifest if row.split == split]
    candidates = [row for row in rows if not is_excluded(row.status)]
    n_excluded = len(rows) - len(candidates)
    missing = []
    for row in candidates:
        for m in MODALITIES:
            npy, js = feature_paths(features_dir, m, row.video_id, row.clip_id)
            if not js.is_file() or (not npy.is_file() and not _excluded_sidecar(js)):
                missing.append((row.key, m, npy, row.shard))
    if missing:
        raise UserError(_missing_message(missing, manifest_path, features_dir))

    lengths = {"text": 1 if text_pooling == "cls" else length, "audio": length, "vision": length}
    arrays: dict[str, np.ndarray] = {}  # modality -> [N, L, D], allocated at the first clip
    masks = {m: np.zeros((len(candidates), lengths[m]), dtype=bool) for m in MODALITIES}
    ref: dict[str, dict] = {}  # modality -> first sidecar (dims, provenance)
    records: list[dict] = []  # asr records of the kept clips (with asr_dir)
    meta, n = [], 0
    for row in tqdm(candidates, desc=f"align {split}", unit="clip", file=sys.stderr):
        sidecars = {
            m: _sidecar(feature_paths(features_dir, m, row.video_id, row.clip_id)[1])
            for m in MODALITIES
        }
        text = sidecars["text"].get("text", row.text)  # the transcript the features encode
        manifest_flags = split_flags(row.status)
        if "text" in sidecars["text"]:  # its text sidecar says whether the transcript is empty
            manifest_flags.discard("empty_text")
        flags = manifest_flags | {
            s for sc in sidecars.values() for s in split_flags(sc.get("status", OK))
        }
        if flags & EXCLUDED:  # extraction found the video unreadable although the probe did not
            n_excluded += 1
            continue
        spans = None
        if asr_dir is not None:
            record = read_record(Path(asr_dir), row.video_id, row.clip_id)
            records.append(record)
            if mode == "words":
                path = Path(asr_dir) / row.video_id / f"{row.clip_id}.json"
                spans = clip_token_spans(sidecars["text"], record, path)  # [T, 2]
        for m in MODALITIES:
            npy = feature_paths(features_dir, m, row.video_id, row.clip_id)[0]
            values = _load_clip(npy, sidecars[m], m, row.key)  # [T, D]
            first = ref.setdefault(m, {**sidecars[m], "dim": values.shape[1]})
            _check_same_extraction(first, sidecars[m], values.shape[1], npy, row.key)
            absent = ABSENT_FLAG[m] in flags
            if spans is None:  # [L, D], [L]
                seq, seq_mask = align_clip(m, values, sidecars[m], absent, row.duration, lengths[m])
            else:
                seq, seq_mask = align_clip_words(
                    m, values, sidecars[m], absent, row.duration, spans, lengths[m]
                )
            if m not in arrays:
                arrays[m] = np.zeros((len(candidates), lengths[m], seq.shape[1]), np.float32)
            arrays[m][n], masks[m][n] = seq, seq_mask
        labels = [_label_cell(getattr(row, c)) for c in LABEL_VALUES]
        meta.append((row.key, split, *labels, text, join_flags(flags)))
        n += 1
    if not ref:
        ref = _probe_dims(manifest, features_dir)
    for m in MODALITIES:
        arrays.setdefault(m, np.zeros((0, lengths[m], ref[m]["dim"]), np.float32))

    out_dir.mkdir(parents=True, exist_ok=True)
    for m in MODALITIES:
        save_npy(out_dir / f"{m}.npy", arrays[m][:n])  # [N, L, D] float32
        save_npy(out_dir / f"{m}_mask.npy", masks[m][:n])  # [N, L] bool
    save_rows(out_dir / "meta.csv", META_COLUMNS, meta)
    status_counts = Counter(f for *_, s in meta for f in s.split(";"))
    config = {m: ref[m].get("config") or {} for m in MODALITIES}
    info = {
        "split": split,
        "dims": {m: int(ref[m]["dim"]) for m in MODALITIES},
        "lengths": lengths,
        "text_model": ref["text"].get("model"),
        "text_model_hash": ref["text"].get("model_hash"),
        "audio_feature_set": config["audio"].get("feature_set", ref["audio"].get("model")),
        "visual_features": config["vision"].get("features", ref["vision"].get("model")),
        "align_length": length,
        "align_mode": mode,
        "text_pooling": text_pooling,
        "scale": scale,
        "n_clips": n,
        "n_excluded": n_excluded,
        "status_counts": dict(sorted(status_counts.items())),
        "valid_fraction": {m: float(masks[m][:n].mean()) if n else 0.0 for m in MODALITIES},
        "features": {m: _provenance(ref[m]) for m in MODALITIES},
        "asr": asr_provenance(records) if asr_dir is not None else None,
        "manifest": str(manifest_path),
        "manifest_sha256": sha256_file(manifest_path),
        "aemt_version": __version__,
    }
    save_json(out_dir / "info.json", info)
    print(
        f"align {split}: {n} clips -> {out_dir} (text {arrays['text'].shape[1:]}, audio "
        f"{arrays['audio'].shape[1:]}, vision {arrays['vision'].shape[1:]}); {n_excluded} left out "
        f"(missing/empty/unreadable video); status {json.dumps(info['status_counts'])}",
        file=sys.stderr,
    )
    return info


def _sidecar(path: Path) -> dict[str, Any]:
    try:
        return load_json(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"{path}: unreadable sidecar ({err}); delete it and rerun extraction."
        ) from err


def _excluded_sidecar(path: Path) -> bool:
    return is_excluded(_sidecar(path).get("status", OK))
