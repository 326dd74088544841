"""Run one extractor over one shard of the manifest: resumable, one bad clip never stops the shard.

For each clip of shard K: skip it when its sidecar exists with the same config_hash and its `.npy`
has the recorded shape (resume; clips that failed before are retried); skip clips whose manifest status is excluded (missing / empty /
unreadable video); extract the rest, writing `<out>/<video_id>/<clip_id>.npy` then `.json`, both
atomically. An exception on one clip records `unreadable_video` (with the error in the sidecar) and
goes on. The done-file `shard_<K>.csv` (key, status, rows) is written last.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aemt.constants import DONE_COLUMNS, EXCLUDED
from aemt.dataset.clips import read_manifest
from aemt.errors import UserError
from aemt.features.base import Clip, Extractor, make_extractor
from aemt.features.media import MediaError
from aemt.io import load_json, save_json, save_npy, save_rows

if TYPE_CHECKING:
    import pandas as pd


def read_shard(manifest_path: str | Path, shard: int) -> list[Clip]:
    """The manifest rows with `shard == K`, in manifest order (`aemt.dataset.clips.read_manifest`)."""
    rows = read_manifest(manifest_path)
    clips = [
        Clip(r.key, r.video_id, r.clip_id, r.video, r.duration, r.text, r.status)
        for r in rows
        if r.shard == shard
    ]
    if not clips:
        top = max((r.shard for r in rows), default=-1)
        raise UserError(f"{manifest_path}: no clip has shard {shard} (shards are 0..{top})")
    return clips


def with_transcripts(clips: list[Clip], path: str | Path) -> list[Clip]:
    """The clips with the text of a transcripts.csv (the asr stage's); clips it lacks keep theirs."""
    from aemt.asr.table import read_transcripts

    texts = read_transcripts(path)
    lacking = [c.key for c in clips if c.key not in texts]
    if lacking:
        print(
            f"warning: {path} has no transcript for {len(lacking)} clip(s) (first {lacking[0]!r}); "
            "they keep the manifest's text",
            file=sys.stderr,
        )
    return [dataclasses.replace(c, text=texts.get(c.key, c.text)) for c in clips]


def clip_paths(out_dir: str | Path, clip: Clip) -> tuple[Path, Path]:
    base = Path(out_dir) / clip.video_id / clip.clip_id
    return base.with_name(base.name + ".npy"), base.with_name(base.name + ".json")


def finished(
    out_dir: str | Path, clip: Clip, config_hash: str, extractor: Extractor | None = None
) -> dict[str, Any] | None:
    """The sidecar of a clip that is complete for this configuration (and input), else None."""
    npy, side = clip_paths(out_dir, clip)
    if not (side.is_file() and npy.is_file()):
        return None
    try:
        sidecar = load_json(side)
        shape = np.load(npy, mmap_mode="r").shape
    except (ValueError, OSError):
        return None  # unreadable leftovers count as not done
    if sidecar.get("config_hash") != config_hash or list(shape) != sidecar.get("shape"):
        return None
    if sidecar.get("status") == "unreadable_video":
        return None  # retried on every run: the file may have been replaced since
    if extractor is not None and not extractor.same_input(sidecar, clip):
        return None  # made from another input (text: another transcript)
    return sidecar


def excluded_flags(status: str) -> list[str]:
    return [f for f in status.split(";") if f in EXCLUDED]


def failure_sidecar(
    extractor: Extractor, clip: Clip, err: BaseException
) -> tuple[np.ndarray, dict]:
    """An empty [0, D] feature array and a sidecar with status unreadable_video and the error."""
    names = extractor.feature_names
    features = np.zeros((0, len(names) if names else 0), dtype=np.float32)  # [0, D]
    sidecar = extractor.sidecar(
        clip,
        features,
        status="unreadable_video",
        mask=np.zeros(0, dtype=np.int8),
        feature_names=names,
        timestamps=None,
        frame_rate=None,
        error=f"{type(err).__name__}: {err}",
    )
    return features, sidecar


def run_shard(
    modality: str,
    manifest_path: str | Path,
    shard: int,
    out_dir: str | Path,
    done_path: str | Path,
    options: dict[str, Any],
    transcripts: str | Path | None = None,
) -> pd.DataFrame:
    """Extract `modality` for every clip of `shard`; returns the done-file table (key, status, rows).

    `options` are the modality's extraction options (see the *Options dataclasses), including the
    run-time ones (`threads`, text `device` / `batch_size`) that do not enter the config hash.
    `transcripts` (text only): a transcripts.csv whose text replaces the manifest's per clip.
    """
    import pandas as pd

    rows = extract_shard(modality, manifest_path, shard, out_dir, done_path, options, transcripts)
    return pd.DataFrame(rows, columns=list(DONE_COLUMNS))


def extract_shard(
    modality: str,
    manifest_path: str | Path,
    shard: int,
    out_dir: str | Path,
    done_path: str | Path,
    options: dict[str, Any],
    transcripts: str | Path | None = None,
) -> list[tuple[str, str, int]]:
    """`run_shard` without pandas (what the CLI runs): the done-file rows (key, status, rows)."""
    from tqdm import tqdm

    started = time.perf_counter()
    clips = read_shard(manifest_path, shard)
    if transcripts is not None:
        clips = with_transcripts(clips, transcripts)
    extractor = make_extractor(modality, dict(options))
    digest = extractor.config_hash
    results: dict[str, tuple[str, int]] = {}
    todo: list[Clip] = []
    for clip in clips:
        flags = excluded_flags(clip.status)
        if flags:
            results[clip.key] = (";".join(flags), 0)
            continue
        sidecar = finished(out_dir, clip, digest, extractor)
        if sidecar is not None:
            results[clip.key] = (sidecar["status"], int(sidecar["shape"][0]))
        else:
            todo.append(clip)
    skipped = len(clips) - len(todo)
    bar = tqdm(total=len(todo), desc=f"{modality} shard {shard}", unit="clip", file=sys.stderr)
    try:
        if modality == "text":  # batched; text never reads the video, so errors are not per clip
            for clip, features, sidecar in extractor.extract_many(todo):
                _write(out_dir, clip, features, sidecar)
                results[clip.key] = (sidecar["status"], int(features.shape[0]))
                bar.update(1)
        else:
            for clip in todo:
                try:
                    features, sidecar = extractor.extract(clip)
                except MediaError as err:  # the clip's file cannot be opened or decoded
                    features, sidecar = failure_sidecar(extractor, clip, err)
                    print(f"warning: {clip.key}: {sidecar['error']}", file=sys.stderr)
                except UserError:
                    raise  # configuration problems stop the shard
                except Exception as err:  # one bad clip: record it and go on with the rest
                    features, sidecar = failure_sidecar(extractor, clip, err)
                    print(
                        f"warning: {clip.key} ({clip.video}): {sidecar['error']}", file=sys.stderr
                    )
                _write(out_dir, clip, features, sidecar)
                results[clip.key] = (sidecar["status"], int(features.shape[0]))
                bar.update(1)
    finally:
        bar.close()
        extractor.close()
    table = [(c.key, *results[c.key]) for c in clips]
    save_rows(done_path, DONE_COLUMNS, table)
    counts = Counter(status for _, status, _ in table)
    print(
        f"{modality} shard {shard}: {len(clips)} clips ({skipped} already done or excluded), "
        f"statuses {dict(counts)}, {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return table


def _write(out_dir: str | Path, clip: Clip, features: np.ndarray, sidecar: dict) -> None:
    npy, side = clip_paths(out_dir, clip)
    save_npy(npy, np.ascontiguousarray(features, dtype=np.float32))
    save_json(side, sidecar)  # the sidecar last: its presence marks the clip done
