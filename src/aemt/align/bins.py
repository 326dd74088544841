"""Pooling one clip's features to a fixed length: audio and visual frames averaged (valid frames only)
into equal time bins over the clip (the paper's average pooling, done in time), text token states
truncated / padded with a mask."""

from __future__ import annotations

from typing import Any

import numpy as np

from aemt.errors import UserError

TEXT_POOLING = ("tokens", "cls")


def bin_frames(
    values: np.ndarray, timestamps: np.ndarray, mask: np.ndarray, duration: float, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mask-aware mean of frames in `length` equal bins over [0, duration].

    values [T, D], timestamps [T] (frame centres, s), mask [T] (truthy = valid) ->
    (binned [L, D] float32, bin_mask [L] bool). A frame at time t goes to bin
    min(L-1, floor(t / duration * L)); a bin with no valid frame is zero with mask False.
    Frames with a non-finite value or timestamp count as invalid.
    """
    values = np.asarray(values, dtype=np.float64)  # [T, D]
    times = np.asarray(timestamps, dtype=np.float64).reshape(-1)  # [T]
    valid = np.asarray(mask).reshape(-1).astype(bool)  # [T]
    if values.ndim != 2 or not len(values) == len(times) == len(valid):
        raise ValueError(
            f"bin_frames: values {values.shape}, timestamps {times.shape}, mask {valid.shape} "
            "must be [T, D], [T], [T]"
        )
    if length < 1:
        raise ValueError(f"bin_frames: length must be >= 1 (got {length})")
    valid &= np.isfinite(values).all(axis=1) & np.isfinite(times)
    sums = np.zeros((length, values.shape[1]), dtype=np.float64)  # [L, D]
    counts = np.zeros(length, dtype=np.int64)  # [L]
    if valid.any():
        if not duration > 0:
            raise ValueError(f"bin_frames: duration must be > 0 (got {duration})")
        idx = np.floor(times[valid] / duration * length).astype(np.int64)  # [T_valid]
        np.clip(idx, 0, length - 1, out=idx)
        order = np.argsort(idx, kind="stable")
        idx, rows = idx[order], values[valid][order]  # frames grouped by bin
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])  # first frame of each used bin
        sums[idx[starts]] = np.add.reduceat(rows, starts, axis=0)
        counts = np.bincount(idx, minlength=length)
    bin_mask = counts > 0  # [L]
    binned = sums / np.maximum(counts, 1)[:, None]  # [L, D]; empty bins stay 0
    return binned.astype(np.float32), bin_mask


def pad_tokens(
    values: np.ndarray, length: int, mask: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Truncate / zero-pad token states [T, D] to [L, D] with mask [L] (row 0, [CLS], stays first).

    `mask` [T] marks valid source rows (default all valid); masked rows come out as zeros.
    `length=1` gives the [CLS] row alone (`text.pooling: cls`).
    """
    values = np.asarray(values, dtype=np.float32)  # [T, D]
    if values.ndim != 2 or length < 1:
        raise ValueError(f"pad_tokens: values must be [T, D] and length >= 1 (got {values.shape})")
    src = np.ones(len(values), bool) if mask is None else np.asarray(mask).reshape(-1).astype(bool)
    n = min(len(values), length)
    out = np.zeros((length, values.shape[1]), dtype=np.float32)  # [L, D]
    out_mask = np.zeros(length, dtype=bool)  # [L]
    out_mask[:n] = src[:n]
    out[:n][out_mask[:n]] = values[:n][out_mask[:n]]
    return out, out_mask


def align_clip(
    modality: str,
    values: np.ndarray,
    sidecar: dict[str, Any],
    absent: bool,
    manifest_duration: float,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip's features [T, D] -> ([length, D] float32, [length] bool) for `modality`.

    `absent` (empty_text / no_audio / no_face) gives zeros with mask False; text is padded or
    truncated, audio and vision are binned in time over the clip's duration.
    """
    mask, times = clip_frames(modality, values, sidecar, absent)  # [T], [T] (None: text)
    if times is None:
        return pad_tokens(values, length, mask)
    return bin_frames(values, times, mask, clip_duration(sidecar, manifest_duration, times), length)


def clip_frames(
    modality: str, values: np.ndarray, sidecar: dict[str, Any], absent: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The valid rows of a clip's features [T] (the sidecar's `mask`, all valid by default; none when
    `absent`) and, for audio and vision, their frame-centre times [T] (s; None for text)."""
    mask = np.asarray(sidecar.get("mask") or np.ones(len(values)), dtype=bool) & (not absent)  # [T]
    if modality == "text":
        return mask, None
    return mask, frame_times(sidecar, len(values), sidecar.get("key", "?"))


def frame_times(sidecar: dict, n: int, key: str) -> np.ndarray:
    """Frame-centre times [n] (s) from the sidecar's `timestamps`, else from its `frame_rate`."""
    stamps = sidecar.get("timestamps")
    if n == 0:
        return np.zeros(0)
    if stamps is None and sidecar.get("frame_rate"):
        return (np.arange(n) + 0.5) / float(sidecar["frame_rate"])
    if stamps is None or len(stamps) != n:
        raise UserError(
            f"clip {key}: the {sidecar.get('modality')} sidecar has "
            f"{'no' if stamps is None else len(stamps)} timestamps for {n} frames; delete the "
            "clip's files and rerun extraction."
        )
    return np.asarray(stamps, dtype=np.float64)


def clip_duration(sidecar: dict, manifest_duration: float, times: np.ndarray) -> float:
    for value in (sidecar.get("duration"), manifest_duration):
        if value is not None and float(value) > 0:
            return float(value)
    rate = sidecar.get("frame_rate")
    return float(times.max() + (0.5 / rate if rate else 1e-3)) if len(times) else 1.0
