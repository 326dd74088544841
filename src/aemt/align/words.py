"""Word-aligned pooling (`align.mode: words`, MMSA-FET's aligned mode): one step per text token.

For each text token, the audio or visual features are the mask-aware mean of the frames inside its
word's time span; sub-word pieces share their word's span (the text sidecar's `word_ids`, the times
from the clip's asr record). A frame is inside [start, end) when its centre is; a word too short to
hold a frame centre takes the frames whose extent (centre ± half the frame spacing) overlaps it.
Special tokens: [CLS] (position 0) takes the mean over the whole clip, as it summarises the sentence;
[SEP] and padding are masked. A token whose word covers no valid frame (a zero-length span, a gap
without a face) is zero with mask False, never NaN. Text itself is padded / truncated as in `bins`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from aemt.align.bins import align_clip, clip_frames
from aemt.errors import UserError


def token_spans(word_ids: list[int | None], words: list[tuple[float, float]]) -> np.ndarray:
    """[T, 2] (start, end) per token: its word's span; for [CLS] (row 0) every frame (-inf, inf),
    also those an encoder's padding puts past the container's duration; NaN for other specials."""
    spans = np.full((len(word_ids), 2), np.nan)  # [T, 2]
    for i, w in enumerate(word_ids):
        if w is not None:
            spans[i] = words[w]
        elif i == 0:
            spans[i] = (-np.inf, np.inf)
    return spans


def frame_half_width(sidecar: dict[str, Any], times: np.ndarray) -> float:
    """Half the spacing of a modality's frames (s): from its frame rate, else its timestamps."""
    if sidecar.get("frame_rate"):
        return 0.5 / float(sidecar["frame_rate"])
    steps = np.diff(times)
    return 0.5 * float(np.median(steps)) if steps.size else 0.0


def pool_spans(
    values: np.ndarray, times: np.ndarray, mask: np.ndarray, spans: np.ndarray, half: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mask-aware mean of the frames in each span.

    values [F, D], times [F] (frame centres, s), mask [F], spans [T, 2] (NaN = no span), half: half the
    frame spacing -> (pooled [T, D] float32, pooled_mask [T] bool). Frames with a non-finite value or
    time count as invalid; a span with no valid frame is zero with mask False.
    """
    values = np.asarray(values, dtype=np.float64)  # [F, D]
    times = np.asarray(times, dtype=np.float64).reshape(-1)  # [F]
    valid = np.asarray(mask).reshape(-1).astype(bool)  # [F]
    if values.ndim != 2 or not len(values) == len(times) == len(valid):
        raise ValueError(
            f"pool_spans: values {values.shape}, times {times.shape}, mask {valid.shape} must be "
            "[F, D], [F], [F]"
        )
    valid &= np.isfinite(values).all(axis=1) & np.isfinite(times)
    order = np.argsort(np.where(np.isfinite(times), times, np.inf), kind="stable")
    times, valid = times[order], valid[order]
    rows = np.where(valid[:, None], values[order], 0.0)  # [F, D]
    sums = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(rows, axis=0)])  # [F + 1, D]
    counts = np.concatenate([[0], np.cumsum(valid)])  # [F + 1]
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)  # [T, 2]
    has = ~np.isnan(spans).any(axis=1)  # [T] (infinite ends allowed)
    start = np.where(has, spans[:, 0], 0.0)
    end = np.where(has, spans[:, 1], 0.0)
    lo = np.searchsorted(times, start, side="left")  # centres in [start, end)
    hi = np.searchsorted(times, end, side="left")
    hi = np.maximum(hi, lo)
    short = has & (counts[hi] == counts[lo]) & (end > start)  # no centre inside: overlapping frames
    lo = np.where(short, np.searchsorted(times, start - half, side="right"), lo)  # finite here
    hi = np.where(short, np.maximum(lo, np.searchsorted(times, end + half, side="left")), hi)
    n = np.where(has, counts[hi] - counts[lo], 0)  # [T]
    pooled = (sums[hi] - sums[lo]) / np.maximum(n, 1)[:, None]  # [T, D]
    pooled_mask = n > 0
    pooled[~pooled_mask] = 0.0
    return pooled.astype(np.float32), pooled_mask


def align_clip_words(
    modality: str,
    values: np.ndarray,
    sidecar: dict[str, Any],
    absent: bool,
    manifest_duration: float,
    spans: np.ndarray,
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One clip's features [F, D] -> ([length, D] float32, [length] bool), one step per token.

    `spans` [T, 2] are the token spans (`token_spans`); tokens past `length` are cut, missing ones
    padded (mask False). Text is padded / truncated exactly as in `bins` mode.
    """
    if modality == "text":
        return align_clip(modality, values, sidecar, absent, manifest_duration, length)
    mask, times = clip_frames(modality, values, sidecar, absent)  # [F], [F]
    n = min(len(spans), length)
    out = np.zeros((length, values.shape[1]), dtype=np.float32)  # [L, D]
    out_mask = np.zeros(length, dtype=bool)  # [L]
    if n and len(values):
        out[:n], out_mask[:n] = pool_spans(
            values, times, mask, spans[:n], frame_half_width(sidecar, times)
        )
    return out, out_mask


def clip_token_spans(text_sidecar: dict, record: dict, record_path) -> np.ndarray:
    """[T, 2] token spans of one clip from its text sidecar and asr record; a UserError when they
    describe different transcripts (text extracted before the transcript changed)."""
    key = text_sidecar.get("key", record.get("key", "?"))
    word_ids = text_sidecar.get("word_ids")
    if word_ids is None:
        raise UserError(
            f"clip {key}: its text sidecar has no `word_ids` (extracted by an older aemt, or the "
            "text model's tokenizer gives no character offsets); rerun text extraction "
            "(snakemake -R extract_text), or use align.mode: bins."
        )
    words = [(float(w["start"]), float(w["end"])) for w in record.get("words", [])]
    if text_sidecar.get("text") != record.get("text") or text_sidecar.get("n_words") != len(words):
        raise UserError(
            f"clip {key}: the text features were extracted from another transcript than "
            f"{record_path} ({text_sidecar.get('text')!r} vs {record.get('text')!r}); rerun text "
            "extraction for this dataset (snakemake -R extract_text)."
        )
    if len(word_ids) != int((text_sidecar.get("shape") or [len(word_ids)])[0]):
        raise UserError(
            f"clip {key}: the text sidecar's word_ids do not match its rows; re-extract."
        )
    return token_spans(word_ids, words)
