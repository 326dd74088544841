"""Regression metrics for multimodal sentiment analysis, matching MMSA's definitions exactly (SPEC §7).

Reference: `thuiar/MMSA: src/MMSA/utils/metricsTop.py` (`__eval_sims_regression` for CH-SIMS / SIMS v2,
`__eval_mosei_regression` for MOSI / MOSEI); see shared/reference/msa-anchors.md §3.

- scale "sims": clip p and y to [-1, 1]; classes by half-open bins (lower, upper] with -1.01 / 1.01 outer
  sentinels, so a score of exactly 0 is NEGATIVE in Acc-2; F1 = weighted F1 on the Acc-2 classes; MAE and
  Corr on the clipped values.
- scale "mosei": Acc-7 / Acc-5 clip to [-3, 3] / [-2, 2] then NumPy round (half to even) and exact match;
  Has0 = (score >= 0) over all samples; Non0 = drop y == 0 exactly, then (score > 0); MAE and Corr unclipped.

Values are fractions (not x100) and are not rounded. Differences from MMSA, both deliberate: the Pearson
correlation of a constant vector is 0.0 with a warning (MMSA returns NaN), and Non0 metrics are NaN with a
warning when every label is exactly 0 (MMSA crashes).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from aemt.constants import LOWER_IS_BETTER, METRIC_KEYS, SCALES

__all__ = ["LOWER_IS_BETTER", "METRIC_KEYS", "SCALES", "evaluate", "pearson", "sims_classes"]

# Class edges of the SIMS bins: class i is (edges[i], edges[i + 1]].
SIMS_EDGES: dict[str, tuple[float, ...]] = {
    "Acc-2": (-1.01, 0.0, 1.01),
    "Acc-3": (-1.01, -0.1, 0.1, 1.01),
    "Acc-5": (-1.01, -0.7, -0.1, 0.1, 0.7, 1.01),
}


def evaluate(
    pred: Sequence[float] | np.ndarray, label: Sequence[float] | np.ndarray, scale: str
) -> dict[str, float]:
    """Metrics of predictions `pred` [N] against labels `label` [N] on `scale` ("sims" or "mosei").

    Returns a dict with exactly the keys `METRIC_KEYS[scale]` (in that order), values as Python floats
    (fractions). Raises ValueError for an unknown scale, non-1-D or empty input, different lengths or
    non-finite values.
    """
    p, y = _validate(pred, label, scale)
    if scale == "sims":
        return _eval_sims(p, y)
    return _eval_mosei(p, y)


def sims_classes(values: np.ndarray, metric: str) -> np.ndarray:
    """Class index per value [N] for a SIMS metric ("Acc-2", "Acc-3", "Acc-5"); values already clipped.

    Class i holds the values in the half-open bin (edges[i], edges[i + 1]] (MMSA's loop over `ms_k`).
    """
    edges = np.asarray(SIMS_EDGES[metric])
    # searchsorted(side="left") gives the first edge >= v, so v in (e[i], e[i+1]] -> i + 1.
    return np.searchsorted(edges, values, side="left") - 1


def pearson(pred: np.ndarray, label: np.ndarray) -> float:
    """Pearson r of two 1-D arrays; 0.0 with a warning when either is constant (never NaN)."""
    if pred.size < 2 or np.ptp(pred) == 0 or np.ptp(label) == 0:
        which = "predictions" if pred.size < 2 or np.ptp(pred) == 0 else "labels"
        warnings.warn(
            f"Corr: the {which} are constant (n={pred.size}); Pearson r is undefined, reported as 0.0",
            RuntimeWarning,
            stacklevel=2,
        )
        return 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        r = float(np.corrcoef(pred, label)[0, 1])
    if not math.isfinite(r):  # e.g. variance underflow on near-constant input
        warnings.warn(
            "Corr: Pearson r is not finite; reported as 0.0", RuntimeWarning, stacklevel=2
        )
        return 0.0
    return r


def _validate(pred, label, scale: str) -> tuple[np.ndarray, np.ndarray]:
    if scale not in SCALES:
        raise ValueError(f"unknown metric scale {scale!r}; use one of {', '.join(SCALES)}")
    p = np.asarray(pred, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    for name, arr in (("pred", p), ("label", y)):
        if arr.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D, got shape {arr.shape}; flatten it with .reshape(-1)"
            )
        if arr.size == 0:
            raise ValueError(f"{name} is empty; metrics need at least one sample")
        bad = np.flatnonzero(~np.isfinite(arr))
        if bad.size:
            raise ValueError(
                f"{name} has {bad.size} non-finite value(s) (first at index {bad[0]}: {arr[bad[0]]})"
            )
    if p.shape != y.shape:
        raise ValueError(f"pred has {p.size} values but label has {y.size}; they must match")
    return p, y


def _eval_sims(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    p = np.clip(p, -1.0, 1.0)  # [N]
    y = np.clip(y, -1.0, 1.0)  # [N]
    out: dict[str, float] = {}
    for key in ("Acc-2", "Acc-3", "Acc-5"):
        out[key] = float(accuracy_score(sims_classes(y, key), sims_classes(p, key)))
    y2, p2 = sims_classes(y, "Acc-2"), sims_classes(p, "Acc-2")
    out["F1"] = float(f1_score(y2, p2, average="weighted", zero_division=0.0))
    out["MAE"] = float(np.mean(np.abs(p - y)))
    out["Corr"] = pearson(p, y)
    return {key: out[key] for key in METRIC_KEYS["sims"]}


def _eval_mosei(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    out["Acc-7"] = float(np.mean(np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3))))
    out["Acc-5"] = float(np.mean(np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2))))
    y_has0, p_has0 = y >= 0, p >= 0  # [N] bool: 0 counts as non-negative
    out["Has0_Acc-2"] = float(accuracy_score(y_has0, p_has0))
    out["Has0_F1"] = float(f1_score(y_has0, p_has0, average="weighted", zero_division=0.0))
    keep = y != 0  # [N] bool: Non0 drops labels that are exactly 0
    if keep.any():
        y_non0, p_non0 = y[keep] > 0, p[keep] > 0
        out["Non0_Acc-2"] = float(accuracy_score(y_non0, p_non0))
        out["Non0_F1"] = float(f1_score(y_non0, p_non0, average="weighted", zero_division=0.0))
    else:
        warnings.warn(
            "Non0_Acc-2 / Non0_F1: every label is exactly 0, nothing is left; reported as NaN",
            RuntimeWarning,
            stacklevel=2,
        )
        out["Non0_Acc-2"] = out["Non0_F1"] = float("nan")
    out["MAE"] = float(np.mean(np.abs(p - y)))
    out["Corr"] = pearson(p, y)
    return {key: out[key] for key in METRIC_KEYS["mosei"]}
