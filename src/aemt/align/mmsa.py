"""MMSA interoperability: MMSA / MMSA-FET feature pickles <-> our aligned tensors (export:
:mod:`aemt.align.mmsa_export`).

- :func:`import_mmsa` reads an MMSA pickle (``train``/``valid``/``test`` dicts: ``id``, ``raw_text``,
  ``text`` (N, T, 768) BERT states with [CLS] first, ``audio``, ``vision``, optional
  ``audio_lengths``/``vision_lengths``, ``regression_labels[_T/A/V]``) and writes
  ``<out_root>/<dataset>/aligned/<split>/`` exactly as the alignment stage does (docs/contracts.md).
  An unaligned sequence of length ``n`` is ``n`` equally spaced frames over a clip of duration 1.0,
  binned with :func:`aemt.align.bins.bin_frames`; text goes through :func:`aemt.align.bins.pad_tokens`
  (kept at length 1 for a pickle exported from a ``text_pooling: cls`` set). No ``unlabeled`` split is
  written, so pretraining on an imported set uses the train split only.
- :func:`aemt.align.mmsa_export.export_mmsa` writes aligned tensors as an MMSA-compatible pickle, with
  the masks as an extension that :func:`import_mmsa` reads, so ``import(export(x))`` reproduces ``x``.

Unpickling can execute code, so :func:`import_mmsa` refuses a pickle unless ``trust_pickle``.
"""

from __future__ import annotations

import math
import pickle
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from aemt import __version__
from aemt.align.bins import bin_frames, pad_tokens
from aemt.constants import ABSENT_FLAG, LABEL_VALUES, META_COLUMNS, MODALITIES, SCALES, SPLITS
from aemt.dataset.clips import join_flags
from aemt.errors import UserError
from aemt.io import save_csv, save_json, save_npy, sha256_file

UNIMODAL: tuple[str, str, str] = ("T", "A", "V")


@dataclass
class ImportReport:
    """What :func:`import_mmsa` wrote."""

    out_dir: Path
    scale: str
    dims: dict[str, int]
    counts: dict[str, int]  # split -> number of clips
    nonfinite: dict[str, int]  # modality -> non-finite values (MOSEI -inf, NaN) replaced by 0
    clipped_lengths: int = 0  # *_lengths larger than the stored sequence (clipped to it)
    missing_splits: list[str] = field(default_factory=list)


def untrusted_pickle_message(path: Path) -> str:
    return (
        f"{path}: refusing to load this MMSA feature file without --trust-pickle. It is a Python "
        "pickle, and unpickling can execute arbitrary code. Pass --trust-pickle (trust_pickle=True) "
        "only for files from a source you trust (e.g. the official MMSA release, checked against "
        "its published SHA-256)."
    )


def load_mmsa_pickle(path: str | Path, trust_pickle: bool = False) -> dict[str, Any]:
    """Load an MMSA pickle after the trust check; errors name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: MMSA feature file not found; check the path.")
    if not trust_pickle:
        raise UserError(untrusted_pickle_message(path))
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)  # the user vouched for the file (--trust-pickle)
    except Exception as err:  # truncated file, not a pickle, a class the pickle names is missing
        raise UserError(
            f"{path}: cannot read it as an MMSA pickle ({type(err).__name__}: {err}); "
            "check that the file is complete and was written by MMSA / MMSA-FET."
        ) from err
    if not isinstance(data, dict) or not any(isinstance(data.get(s), dict) for s in SPLITS):
        raise UserError(f"{path}: not an MMSA feature file (no 'train'/'valid'/'test' dicts).")
    return data


def _array(value: Any, where: str) -> np.ndarray:
    """numpy array from an array, a list or a CPU torch tensor (MMSA-FET's return_type 'pt')."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except Exception as err:
        raise UserError(f"{where}: cannot convert to an array ({err}).") from err


def _get(part: dict, key: str, where: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``part[key]`` as an array; UserError if it is missing or (given ``shape``) mis-shaped."""
    if key not in part:
        raise UserError(
            f"{where}: key '{key}' is missing (keys present: {sorted(map(str, part))})."
        )
    value = _array(part[key], f"{where} '{key}'")
    if shape is not None and value.shape != shape:
        raise UserError(
            f"{where}: '{key}' has shape {value.shape}, expected {shape}; the file is inconsistent."
        )
    return value


def _features(part: dict, key: str, where: str) -> tuple[np.ndarray, int]:
    """float32 [N, T, D] copy with non-finite values (-inf, +inf, NaN) set to 0, and their count."""
    values = _get(part, key, where).astype(np.float32)  # astype copies: the pickle stays as is
    if values.ndim != 3:
        raise UserError(f"{where}: '{key}' must be N x T x D, got shape {values.shape}.")
    bad = ~np.isfinite(values)
    values[bad] = 0.0
    return values, int(bad.sum())


def _text(part: dict, where: str, length: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Token states [N, length, Dt] ([CLS] first; padded/truncated), mask [N, length], #non-finite."""
    if "text" not in part and "text_bert" in part:
        raise UserError(
            f"{where}: has only 'text_bert' (token ids, N x 3 x T) and no 'text' (BERT token "
            "states, N x T x 768). aemt needs the token states and does not run BERT on ids here: "
            "re-extract with MMSA-FET's text section (it writes 'text'), or build the dataset from "
            "raw clips with `aemt manifest` / `aemt extract text`."
        )
    states, n_bad = _features(part, "text", where)
    n, t = states.shape[:2]
    if "text_mask" in part:  # written by export_mmsa
        mask = _get(part, "text_mask", where, (n, t)).astype(bool)
    elif "text_bert" in part:
        mask = _get(part, "text_bert", where, (n, 3, t))[:, 1, :] > 0  # [N, T]: attention mask
    else:
        mask = np.abs(states).sum(axis=2) > 0  # [N, T]: non-zero rows
    out = np.zeros((n, length, states.shape[2]), dtype=np.float32)  # [N, L, Dt]
    out_mask = np.zeros((n, length), dtype=bool)  # [N, L]
    for i in range(n):
        out[i], out_mask[i] = pad_tokens(states[i], length, mask[i])  # masked rows -> zeros
    return out, out_mask, n_bad


def _frames(
    part: dict, modality: str, where: str, length: int
) -> tuple[np.ndarray, np.ndarray, int, int, bool]:
    """Audio/vision binned to [N, length, D] with mask [N, length].

    Frame validity: ``<modality>_mask`` (export_mmsa's extension; frames on a grid over the stored
    length) > ``<modality>_lengths`` (unaligned: the first n frames, spread over the clip) > non-zero
    rows (aligned pickles). Returns values, mask, #non-finite, #clipped lengths, unaligned flag.
    """
    values, n_bad = _features(part, modality, where)
    n, t, dim = values.shape
    lengths: np.ndarray | None = None
    clipped = 0
    if f"{modality}_mask" in part:
        frame_mask = _get(part, f"{modality}_mask", where, (n, t)).astype(bool)
    elif f"{modality}_lengths" in part:
        raw = _get(part, f"{modality}_lengths", where).reshape(-1).astype(np.float64)
        if raw.shape[0] != n or not np.all(np.isfinite(raw)) or np.any(raw < 0):
            raise UserError(
                f"{where}: '{modality}_lengths' must hold {n} non-negative numbers, one per id "
                f"(got {raw.shape[0]} values, min {raw.min(initial=0)})."
            )
        lengths = np.rint(raw).astype(np.int64)
        clipped = int((lengths > t).sum())
        lengths = np.minimum(lengths, t)
        frame_mask = np.arange(t)[None, :] < lengths[:, None]  # [N, T]
    else:
        frame_mask = np.abs(values).sum(axis=2) > 0  # [N, T]
    out = np.zeros((n, length, dim), dtype=np.float32)  # [N, L, D]
    out_mask = np.zeros((n, length), dtype=bool)  # [N, L]
    grid = (np.arange(t) + 0.5) / max(t, 1)  # [T] frame centres over duration 1.0
    for i in tqdm(range(n), desc=f"{where} {modality}", file=sys.stderr, leave=False):
        stamps, frames, valid = grid, values[i], frame_mask[i]
        if lengths is not None:
            m = int(lengths[i])
            stamps, frames, valid = (np.arange(m) + 0.5) / max(m, 1), values[i, :m], valid[:m]
        if valid.any():
            out[i], out_mask[i] = bin_frames(frames, stamps, valid, 1.0, length)
    return out, out_mask, n_bad, clipped, lengths is not None


def _floats(values: np.ndarray) -> list[float]:
    """Python floats; float32 values get their shortest decimal (0.6, not 0.6000000238)."""
    return [float(str(v)) if values.dtype == np.float32 else float(v) for v in values]


def _labels(part: dict, where: str, ids: list[str]) -> dict[str, list[float]]:
    """Labels per meta.csv column; absent or NaN unimodal labels fall back to the M label."""
    out: dict[str, list[float]] = {}
    keys = ["regression_labels"] + [f"regression_labels_{m}" for m in UNIMODAL]
    for col, key in zip(LABEL_VALUES, keys, strict=True):
        if col != "label" and key not in part:
            out[col] = list(out["label"])
            continue
        raw = _get(part, key, where).reshape(-1)
        try:
            values = raw.astype(np.float32 if raw.dtype == np.float32 else np.float64)
        except (TypeError, ValueError) as err:
            raise UserError(f"{where}: '{key}' must hold numbers ({err}).") from err
        if values.shape[0] != len(ids):
            raise UserError(f"{where}: '{key}' has {values.shape[0]} values for {len(ids)} ids.")
        out[col] = _floats(values)
        if col != "label":
            out[col] = [
                u if math.isfinite(u) else y for u, y in zip(out[col], out["label"], strict=True)
            ]
            continue
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise UserError(
                f"{where}: 'regression_labels' is not a finite number for id '{ids[bad[0]]}' "
                f"(row {bad[0]}, {bad.size} rows in all); fix the labels in the pickle."
            )
    return out


def _convert_split(part: dict, where: str, length: int, keep_cls: bool) -> dict[str, Any]:
    """One MMSA split -> ids, keys, texts, labels, tensors [N, L, D], masks [N, L], counters."""
    ids = [str(x) for x in _get(part, "id", where).reshape(-1)]
    n = len(ids)
    text, text_mask, bad_t = _text(part, where, 1 if keep_cls else length)
    tensors, masks = {"text": text}, {"text": text_mask}
    nonfinite, clipped, unaligned = {"text": bad_t}, 0, False
    for m in ("audio", "vision"):
        tensors[m], masks[m], nonfinite[m], clip, was_unaligned = _frames(part, m, where, length)
        clipped, unaligned = clipped + clip, unaligned or was_unaligned
    for m, arr in tensors.items():
        if arr.shape[0] != n:
            raise UserError(f"{where}: '{m}' has {arr.shape[0]} rows for {n} ids.")
    raw = part.get("raw_text")
    texts = [""] * n if raw is None else [str(x) for x in _array(raw, where).reshape(-1)]
    if len(texts) != n:
        raise UserError(f"{where}: 'raw_text' has {len(texts)} entries for {n} ids.")
    keys = [x.replace("$_$", "/") for x in ids]
    labels = _labels(part, where, ids)
    status = [join_flags({ABSENT_FLAG[m] for m in MODALITIES if not masks[m][i].any()})
              for i in range(n)]  # fmt: skip
    return {"ids": ids, "keys": keys, "texts": texts, "labels": labels, "tensors": tensors,
            "masks": masks, "status": status, "nonfinite": nonfinite, "clipped": clipped, "unaligned": unaligned}  # fmt: skip


def import_mmsa(
    pkl_path: str | Path,
    out_root: str | Path,
    dataset: str,
    align_length: int = 50,
    trust_pickle: bool = False,
    scale: str | None = None,
) -> ImportReport:
    """Convert an MMSA pickle into ``<out_root>/<dataset>/aligned/<split>/`` (no unlabeled split)."""
    pkl_path = Path(pkl_path)
    if align_length < 1:
        raise UserError(f"--align-length must be at least 1, got {align_length}.")
    if scale is not None and scale not in SCALES:
        raise UserError(f"--scale must be one of {', '.join(SCALES)}, got '{scale}'.")
    if not dataset or "/" in dataset or dataset in (".", ".."):
        raise UserError(f"--dataset must be a plain name (no '/'), got '{dataset}'.")
    data = load_mmsa_pickle(pkl_path, trust_pickle)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    present = [s for s in SPLITS if isinstance(data.get(s), dict) and len(data[s]) > 0]
    if not present:
        raise UserError(f"{pkl_path}: no non-empty 'train'/'valid'/'test' split in the file.")
    conv: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for split in present:
        where = f"{pkl_path.name} [{split}]"
        text_len = np.shape(data[split].get("text"))[1:2]
        keep_cls = config.get("text_pooling") == "cls" and text_len == (1,)  # our cls export
        conv[split] = c = _convert_split(data[split], where, align_length, keep_cls)
        c["text_pooling"] = "cls" if keep_cls else "tokens"
        for row, key in enumerate(c["keys"]):
            if key in seen:
                raise UserError(
                    f"{where}: id '{c['ids'][row]}' (row {row}) also appears in split "
                    f"'{seen[key]}'; ids must be unique across splits."
                )
            seen[key] = split
    all_dims = {s: {m: int(c["tensors"][m].shape[2]) for m in MODALITIES} for s, c in conv.items()}
    dims = all_dims[present[0]]
    if any(d != dims for d in all_dims.values()):
        raise UserError(f"{pkl_path.name}: feature sizes differ between splits: {all_dims}.")
    top = max(float(np.abs(c["labels"]["label"]).max(initial=0.0)) for c in conv.values())
    if scale is None:
        scale = "sims" if top <= 1.0 else "mosei"
    elif scale == "sims" and top > 1.0:
        raise UserError(
            f"{pkl_path.name}: --scale sims needs labels in [-1, 1] but the largest |label| is "
            f"{top}; use --scale mosei (labels in [-3, 3])."
        )
    source_hash = sha256_file(pkl_path)
    out_dir = Path(out_root) / dataset / "aligned"
    for split, c in conv.items():
        split_dir = out_dir / split
        for m in MODALITIES:
            save_npy(split_dir / f"{m}.npy", c["tensors"][m])
            save_npy(split_dir / f"{m}_mask.npy", c["masks"][m])
        status = c["status"]
        meta = pd.DataFrame({"key": c["keys"], "split": split, **c["labels"], "text": c["texts"]})
        meta["status"] = status
        save_csv(split_dir / "meta.csv", meta[list(META_COLUMNS)])
        # fmt: off
        info = {
            "split": split, "dims": dims, "align_length": align_length, "scale": scale,
            "lengths": {m: int(c["tensors"][m].shape[1]) for m in MODALITIES},
            "text_pooling": c["text_pooling"], "text_model_hash": source_hash,
            **dict.fromkeys(("text_model", "audio_feature_set", "visual_features"), "mmsa"),
            "n_clips": len(status), "n_excluded": 0,
            "status_counts": dict(sorted(Counter(f for x in status for f in x.split(";")).items())),
            "valid_fraction": {m: float(c["masks"][m].mean()) if status else 0.0 for m in MODALITIES},
            "source": f"mmsa:{pkl_path.name}", "source_sha256": source_hash,
            "mmsa_unaligned": c["unaligned"], "nonfinite_replaced": c["nonfinite"],
            "aemt_version": __version__,
        }
        # fmt: on
        save_json(split_dir / "info.json", info)
    total = {m: sum(c["nonfinite"][m] for c in conv.values()) for m in MODALITIES}
    return ImportReport(out_dir, scale, dims, {s: len(c["keys"]) for s, c in conv.items()}, total,
                        sum(c["clipped"] for c in conv.values()),
                        [s for s in SPLITS if s not in present])  # fmt: skip
