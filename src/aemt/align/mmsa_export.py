"""`aemt export-mmsa`: aligned tensors -> an MMSA-compatible feature pickle.

Besides MMSA's keys the pickle stores ``text_mask``/``audio_mask``/``vision_mask`` (bool [N, L]): MMSA
ignores them, and :func:`aemt.align.mmsa.import_mmsa` uses them, so ``import(export(x))`` reproduces
``x`` exactly.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aemt import __version__
from aemt.align.mmsa import UNIMODAL
from aemt.constants import LABEL_VALUES, MODALITIES, SPLITS
from aemt.errors import UserError
from aemt.io import atomic_path, load_json


@dataclass
class ExportReport:
    """What :func:`export_mmsa` wrote."""

    out_pkl: Path
    counts: dict[str, int]
    dims: dict[str, int]


def _read_split(split_dir: Path) -> tuple[dict[str, np.ndarray], pd.DataFrame, dict[str, Any]]:
    """Arrays, meta.csv and info.json of one aligned split; UserError when anything is missing."""
    names = [*MODALITIES, *(f"{m}_mask" for m in MODALITIES)]
    for path in [split_dir / f"{x}.npy" for x in names] + [split_dir / "meta.csv"]:
        if not path.is_file():
            raise UserError(
                f"{path}: missing; run the alignment stage (`aemt align`) for this split, or "
                "leave the split out with --splits."
            )
    arrays = {x: np.load(split_dir / f"{x}.npy", allow_pickle=False) for x in names}
    meta = pd.read_csv(
        split_dir / "meta.csv", dtype={"key": str, "text": str}, keep_default_na=False
    )
    for name, arr in arrays.items():
        if arr.shape[0] != len(meta):
            raise UserError(
                f"{split_dir}/{name}.npy: {arr.shape[0]} rows but meta.csv has {len(meta)}."
            )
    info = load_json(split_dir / "info.json") if (split_dir / "info.json").is_file() else {}
    return arrays, meta, info


def export_mmsa(
    aligned_root: str | Path, out_pkl: str | Path, splits: tuple[str, ...] | list[str] = SPLITS
) -> ExportReport:
    """Write ``aligned_root/<split>/`` tensors as an MMSA-compatible pickle (HIGHEST_PROTOCOL)."""
    aligned_root, out_pkl = Path(aligned_root), Path(out_pkl)
    if not splits:
        raise UserError("export-mmsa: no split given; pass e.g. --splits train,valid,test.")
    result: dict[str, Any] = {}
    config: dict[str, Any] = {}
    dims: dict[str, dict[str, int]] = {}
    for split in splits:
        arrays, meta, info = _read_split(aligned_root / split)
        labels = {c: pd.to_numeric(meta[c], errors="coerce").to_numpy(np.float64)
                  for c in LABEL_VALUES if c in meta.columns}  # fmt: skip
        missing = np.flatnonzero(np.isnan(labels["label"])) if "label" in labels else [0]
        if len(missing):
            raise UserError(
                f"{aligned_root / split / 'meta.csv'}: column 'label' is empty or not a number "
                f"(line {int(missing[0]) + 2}); MMSA needs a label for every clip, so export only "
                "labelled splits (train/valid/test), not 'unlabeled'."
            )
        y = labels["label"]
        texts = meta["text"].tolist() if "text" in meta else [""] * len(y)
        entry: dict[str, Any] = {
            "id": np.array([k.replace("/", "$_$") for k in meta["key"]], dtype=str),
            "raw_text": np.array(texts, dtype=str),
            "annotations": np.array(
                ["Positive" if v > 0 else "Negative" if v < 0 else "Neutral" for v in y], dtype=str
            ),
            "regression_labels": y.astype(np.float32),
        }
        for m in UNIMODAL:
            uni = labels.get(f"label_{m}")
            if uni is not None and not np.isnan(uni).any():  # as MMSA-FET: dropped if any NaN
                entry[f"regression_labels_{m}"] = uni.astype(np.float32)
        for m in MODALITIES:
            entry[m] = arrays[m].astype(np.float32)  # [N, L, D]
            entry[f"{m}_mask"] = arrays[f"{m}_mask"].astype(bool)  # [N, L] (aemt extension)
        for m in ("audio", "vision"):
            entry[f"{m}_lengths"] = entry[f"{m}_mask"].sum(axis=1).astype(np.int64)  # valid bins
        dims[split] = {m: int(arrays[m].shape[2]) for m in MODALITIES}
        if dims[split] != dims[splits[0]]:
            raise UserError(f"{aligned_root}: feature sizes differ between splits: {dims}.")
        config = config or {k: v for k, v in info.items() if k != "split"}
        result[split] = entry
    result["config"] = {**config, "exported_by": f"aemt {__version__}", "splits": list(splits)}
    with atomic_path(out_pkl) as tmp, open(tmp, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    counts = {s: int(result[s]["regression_labels"].shape[0]) for s in splits}
    return ExportReport(out_pkl=out_pkl, counts=counts, dims=dims[splits[0]])
