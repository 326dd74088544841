"""Load aligned splits (docs/contracts.md layout) into arrays, and z-score them per feature.

A split folder `<aligned>/<split>/` holds `{text,audio,vision}.npy` `[N, L, D]` float32, the bool masks
`*_mask.npy` `[N, L]`, `meta.csv` (key, split, label, label_T, label_A, label_V, text, status) and
`info.json`. `Normaliser` is fitted on the VALID positions of the labelled train split only; applying it
z-scores every feature and sets padded positions to exactly zero.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from aemt.constants import ALIGNED_FILES, LABEL_VALUES, MODALITIES
from aemt.errors import UserError
from aemt.io import sha256_file
from aemt.models.config import ModelConfig
from aemt.train.runtime import check_object

# Keys of info.json that describe the features (a model trained on one set cannot read another).
FEATURE_KEYS = (
    "dims",
    "lengths",
    "text_model",
    "text_model_hash",
    "audio_feature_set",
    "visual_features",
    "align_length",
    "text_pooling",
)


@dataclass
class SplitData:
    """One aligned split held in memory (raw, un-normalised features)."""

    name: str
    keys: list[str]
    xs: dict[str, np.ndarray]  # xs[m]: [N, L_m, D_m] float32
    masks: dict[str, np.ndarray]  # masks[m]: [N, L_m] bool, True = valid
    labels: np.ndarray | None  # [N, 4] float32 columns M, T, A, V (None for unlabeled)
    info: dict

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray, name: str | None = None) -> SplitData:
        """The rows `index` (int array) as a new split."""
        return SplitData(
            name=name or self.name,
            keys=[self.keys[i] for i in index],
            xs={m: self.xs[m][index] for m in MODALITIES},
            masks={m: self.masks[m][index] for m in MODALITIES},
            labels=None if self.labels is None else self.labels[index],
            info=self.info,
        )


def split_dir(aligned_dir: str | Path, split: str) -> Path:
    return Path(aligned_dir) / split


def has_split(aligned_dir: str | Path, split: str) -> bool:
    return (split_dir(aligned_dir, split) / "meta.csv").exists()


def load_info(aligned_dir: str | Path, split: str = "train") -> dict:
    """The `info.json` of one split (the feature configuration)."""
    path = split_dir(aligned_dir, split) / "info.json"
    if not path.exists():
        raise UserError(f"{path}: missing; run `aemt align` for split '{split}' first")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); rerun `aemt align`") from err


def feature_signature(info: dict) -> dict:
    """The part of info.json that must match between a checkpoint and the data it is used on."""
    return {k: info.get(k) for k in FEATURE_KEYS if k in info}


def feature_mismatch(ckpt_info: dict | None, info: dict) -> tuple[str, Any, Any] | None:
    """The first feature key whose value differs between a checkpoint's feature info and the data's, as
    (key, theirs, ours); None when they agree (a key absent on either side is not compared)."""
    theirs, ours = feature_signature(ckpt_info or {}), feature_signature(info)
    for key in ours:
        if key in theirs and theirs[key] != ours[key]:
            return key, theirs[key], ours[key]
    return None


def load_split(aligned_dir: str | Path, split: str, labelled: bool | None = None) -> SplitData:
    """Read `<aligned_dir>/<split>/`; raise UserError naming the file at fault.

    `labelled` defaults to `split != "unlabeled"`; labelled splits must have a finite `label` on every row.
    Missing unimodal labels fall back to the multimodal label.
    """
    folder = split_dir(aligned_dir, split)
    if not folder.is_dir():
        raise UserError(
            f"{folder}: aligned split '{split}' not found; run `aemt align --split {split}`"
        )
    labelled = split != "unlabeled" if labelled is None else labelled
    meta_path = folder / "meta.csv"
    try:
        meta = pd.read_csv(meta_path, dtype={"key": str}, keep_default_na=True)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise UserError(f"{meta_path}: cannot read ({err}); rerun `aemt align`") from err
    if "key" not in meta.columns:
        raise UserError(f"{meta_path}: column 'key' missing; rerun `aemt align`")
    n = len(meta)
    xs: dict[str, np.ndarray] = {}
    masks: dict[str, np.ndarray] = {}
    for m in MODALITIES:
        xs[m] = _load_array(folder / f"{m}.npy", ndim=3, n=n)
        mask = _load_array(folder / f"{m}_mask.npy", ndim=2, n=n)
        if mask.shape != xs[m].shape[:2]:
            raise UserError(
                f"{folder / f'{m}_mask.npy'}: shape {mask.shape} does not match {m}.npy "
                f"{xs[m].shape[:2]}; rerun `aemt align`"
            )
        masks[m] = mask.astype(bool)
        x = np.array(xs[m], dtype=np.float32)  # own, writable copy
        x[~masks[m]] = 0.0  # padded positions: exactly zero, whatever the file held
        bad = ~np.isfinite(x).all(axis=2)  # [N, L]
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise UserError(
                f"{folder / f'{m}.npy'}: non-finite values at valid positions of clip "
                f"'{meta['key'].iloc[row]}' (row {row}); check its features and rerun `aemt align`"
            )
        xs[m] = x
    labels = _labels(meta, meta_path) if labelled else None
    return SplitData(
        name=split,
        keys=meta["key"].astype(str).tolist(),
        xs=xs,
        masks=masks,
        labels=labels,
        info=load_info(aligned_dir, split) if (folder / "info.json").exists() else {},
    )


def _load_array(path: Path, ndim: int, n: int) -> np.ndarray:
    if not path.exists():
        raise UserError(f"{path}: missing; rerun `aemt align`")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable .npy file ({err}); rerun `aemt align`") from err
    if arr.ndim != ndim or arr.shape[0] != n:
        raise UserError(
            f"{path}: shape {arr.shape}, expected {ndim} dims with {n} rows (one per meta.csv row); "
            "rerun `aemt align`"
        )
    return arr


def _labels(meta: pd.DataFrame, meta_path: Path) -> np.ndarray:
    if "label" not in meta.columns:
        raise UserError(f"{meta_path}: column 'label' missing in a labelled split")
    out = np.empty((len(meta), 4), dtype=np.float32)
    m_label = pd.to_numeric(meta["label"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(m_label)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise UserError(
            f"{meta_path}: row {row + 2} (key '{meta['key'].iloc[row]}'), column 'label': "
            f"missing or not a number ({meta['label'].iloc[row]!r}); fix label.csv and rerun"
        )
    out[:, 0] = m_label
    for j, col in enumerate(LABEL_VALUES[1:], start=1):
        if col in meta.columns:
            values = pd.to_numeric(meta[col], errors="coerce").to_numpy(dtype=np.float64)
            out[:, j] = np.where(np.isfinite(values), values, m_label)
        else:
            out[:, j] = m_label
    return out


@dataclass
class Normaliser:
    """Per-feature z-score per modality: `(x - mean) / std`, padded positions set to zero.

    Near-constant features (std below `eps`, e.g. a blendshape that barely moves on the train clips) keep
    std 1, and normalised values are clipped to +-`CLIP` so that one such feature seen moving on another clip
    cannot dominate a loss.
    """

    CLIP = 10.0

    mean: dict[str, list[float]]
    std: dict[str, list[float]]

    @classmethod
    def fit(cls, split: SplitData, eps: float = 1e-3) -> Normaliser:
        """Statistics over the valid positions of `split` (must be the labelled train split)."""
        mean: dict[str, list[float]] = {}
        std: dict[str, list[float]] = {}
        for m in MODALITIES:
            x = split.xs[m]  # [N, L, D]
            valid = x[split.masks[m]].astype(np.float64)  # [n_valid, D]
            if len(valid) == 0:
                mu = np.zeros(x.shape[2])
                sd = np.ones(x.shape[2])
            else:
                mu = valid.mean(axis=0)
                sd = valid.std(axis=0)
            sd = np.where(sd < eps, 1.0, sd)  # constant features stay centred, not blown up
            mean[m] = mu.tolist()
            std[m] = sd.tolist()
        return cls(mean=mean, std=std)

    def apply(self, split: SplitData) -> dict[str, np.ndarray]:
        """Normalised copies of `split.xs` (float32), zero where the mask is False."""
        out: dict[str, np.ndarray] = {}
        for m in MODALITIES:
            mu = np.asarray(self.mean[m], dtype=np.float32)
            sd = np.asarray(self.std[m], dtype=np.float32)
            if split.xs[m].shape[2] != mu.shape[0]:
                raise UserError(
                    f"split '{split.name}', modality '{m}': feature dim {split.xs[m].shape[2]} does "
                    f"not match the normaliser's {mu.shape[0]} (checkpoint from other features?)"
                )
            z = split.xs[m] - mu  # [N, L, D] float32, a new array
            z /= sd
            np.clip(z, -self.CLIP, self.CLIP, out=z)
            z[~split.masks[m]] = 0.0
            out[m] = z
        return out

    def to_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        return cls(
            mean={m: [float(v) for v in d["mean"][m]] for m in MODALITIES},
            std={m: [float(v) for v in d["std"][m]] for m in MODALITIES},
        )


@dataclass
class Tensors:
    """A normalised split as torch tensors (on the training device)."""

    name: str
    keys: list[str]
    xs: dict[str, torch.Tensor]  # [N, L_m, D_m] float32, zero at padded positions
    masks: dict[str, torch.Tensor]  # [N, L_m] bool
    labels: torch.Tensor | None  # [N, 4] float32 (M, T, A, V)

    def __len__(self) -> int:
        return len(self.keys)


def to_tensors(split: SplitData, normaliser: Normaliser, device: torch.device) -> Tensors:
    xs = normaliser.apply(split)
    return Tensors(
        name=split.name,
        keys=split.keys,
        xs={m: torch.from_numpy(xs[m]).to(device) for m in MODALITIES},
        masks={m: torch.from_numpy(split.masks[m]).to(device) for m in MODALITIES},
        labels=None if split.labels is None else torch.from_numpy(split.labels).to(device),
    )


def model_config_for(model_hparams: dict | None, split: SplitData) -> ModelConfig:
    """ModelConfig from the `model` hparams plus dims/lengths read from the data."""
    check_object(model_hparams, "model")
    values = dict(model_hparams or {})
    given = sorted({"dims", "lengths"} & set(values))
    if given:
        raise UserError(f"hparams 'model': {given} come from the aligned data; remove them")
    values["dims"] = {m: int(split.xs[m].shape[2]) for m in MODALITIES}
    values["lengths"] = {m: int(split.xs[m].shape[1]) for m in MODALITIES}
    try:
        return ModelConfig.from_dict(values)
    except (TypeError, ValueError) as err:
        raise UserError(f"hparams 'model': {err}") from err


def data_fingerprint(aligned_dir: str | Path, splits: list[str]) -> dict[str, str]:
    """sha256 of every file of each present split (identifies the data a run used; resume key)."""
    out: dict[str, str] = {}
    for split in splits:
        for name in ALIGNED_FILES:
            path = split_dir(aligned_dir, split) / name
            if path.exists():
                out[f"{split}/{name}"] = sha256_file(path)
    return out


def batch_indices(
    n: int, batch_size: int, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Index chunks over `n` rows; shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return list(torch.split(order, batch_size))


def gather(
    xs: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    index: torch.Tensor,
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rows `index` of every modality, on `device`."""
    index = index.to(next(iter(xs.values())).device)
    bx = {m: x.index_select(0, index).to(device, non_blocking=True) for m, x in xs.items()}
    bm = {m: k.index_select(0, index).to(device, non_blocking=True) for m, k in masks.items()}
    return bx, bm
