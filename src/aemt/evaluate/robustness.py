"""Robustness to missing modalities (SPEC §10, rule and command `robustness`): fine-tuned checkpoints
evaluated on the test split with inputs dropped, and the area under each metric-vs-rate curve.

Protocols (column `protocol` of robustness.csv; `rate` = the fraction of steps dropped):

- `random`, rates 0.0, 0.1, ..., 1.0: every valid step of every modality is dropped independently with
  probability `rate` (MMSA / TFR-Net per-step masking, OpenVNA's rate sweep). The masks come from fixed
  seeds (`mask_seeds`, config `robustness.mask_seeds`), so every variant and run sees the same masks; the
  metrics of one rate are averaged over the seeds' draws. Each seed draws one uniform number per (clip,
  modality, step) and a step is dropped at rate r when it is below r, so the masks are nested: a step
  dropped at 0.3 is dropped at 0.4 too. Rate 0 drops nothing and reproduces the run's `metrics.json`
  exactly (same device type, same batch size: the run's own 4 x finetune batch size by default).
- `without_<modalities>` (rate 1.0): a whole modality, or a pair, is absent from every test clip (IMDer's
  protocol): `without_text`, `without_audio`, `without_vision`, `without_text_audio`,
  `without_text_vision`, `without_audio_vision`.

A dropped step is masked and zeroed (:mod:`aemt.train.missing`), text included: our text features are
contextual token states computed from the whole transcript, so a dropped token is a masked zero step, not
MMSA's [UNK] token id (which would need the text model at evaluation time); the surviving states still carry
context from the dropped words, which makes text dropping milder than MMSA's. [CLS] is not exempt, so rate
1.0 removes everything: every clip gets the same score, whose Pearson Corr is reported as 0.

Summary: per run, the area under the `random` curve of each metric (trapezoid over the 11 rates; the rate
axis has length 1, so the area is a mean over rates with the two end points at half weight), then mean and
population std (ddof = 0) over seeds per variant. The areas shown are MAE and the scale's Acc-2 / F1:
`Acc-2` / `F1` (sims), `Non0_Acc-2` / `Non0_F1` (mosei, the negative / positive convention most MOSI and
MOSEI tables lead with).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.constants import METRIC_KEYS
from aemt.errors import UserError

RATES = tuple(k / 10 for k in range(11))  # 0.0, 0.1, ..., 1.0
RANDOM = "random"
ABSENT = (
    *(("text",), ("audio",), ("vision",)),
    *(("text", "audio"), ("text", "vision"), ("audio", "vision")),
)
HEAD = ("variant", "seed", "protocol", "rate")
AREA_KEYS = {"sims": ("MAE", "Acc-2", "F1"), "mosei": ("MAE", "Non0_Acc-2", "Non0_F1")}


def absent_protocol(modalities: Sequence[str]) -> str:
    """('text', 'audio') -> 'without_text_audio'."""
    return "without_" + "_".join(modalities)


PROTOCOLS = (RANDOM, *(absent_protocol(a) for a in ABSENT))
N_PROTOCOLS = len(RATES) + len(ABSENT)  # (protocol, rate) rows per run


def n_passes(n_seeds: int) -> int:
    """Prediction passes over the test split per checkpoint: rate 0 once, every other rate once per mask
    seed, every absent protocol once."""
    return 1 + (len(RATES) - 1) * n_seeds + len(ABSENT)


def read_tables(paths: Sequence[str | os.PathLike], scale: str) -> pd.DataFrame:
    """The per-run robustness CSVs stacked; each must hold HEAD + METRIC_KEYS[scale] and every protocol."""
    if not paths:
        raise UserError("robustness tables need at least one per-run table (--runs)")
    frames = []
    seen: dict[tuple, Path] = {}  # (variant, seed) -> the table that holds it
    rerun = "rerun `aemt robustness` (or the snakemake robustness target)"
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"missing {path}; build it with `snakemake --cores 1 {path}`")
        try:
            frame = pd.read_csv(path)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: empty or not a readable CSV ({err}); {rerun}") from err
        if frame.empty:
            raise UserError(f"{path}: no rows; {rerun}")
        missing = [c for c in (*HEAD, *METRIC_KEYS[scale]) if c not in frame.columns]
        if missing:
            raise UserError(
                f"{path} lacks column(s) {', '.join(missing)} for scale {scale!r}; rerun "
                "`aemt robustness` (or check the dataset's scale)"
            )
        for (variant, seed), part in frame.groupby(["variant", "seed"], sort=False):
            random_rates = sorted(part.loc[part["protocol"] == RANDOM, "rate"].round(6))
            absent = set(PROTOCOLS) - set(part["protocol"])
            if random_rates != list(RATES) or absent:
                raise UserError(
                    f"{path}: run {variant}/{seed} lacks protocol rows (need rates {RATES} of "
                    f"'{RANDOM}' and every without_* protocol); rerun `aemt robustness`"
                )
            if (variant, seed) in seen:
                raise UserError(
                    f"run {variant}/{seed} is in both {seen[variant, seed]} and {path}; give each "
                    "run's table once"
                )
            seen[variant, seed] = path
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def curve(frame: pd.DataFrame, variant: str, seed: int, key: str) -> np.ndarray:
    """The `random` protocol's `key` over RATES [11] of one run."""
    part = frame[(frame["variant"] == variant) & (frame["seed"] == seed)]
    part = part[part["protocol"] == RANDOM].sort_values("rate")
    return part[key].to_numpy(dtype=np.float64)


def areas(frame: pd.DataFrame, scale: str) -> pd.DataFrame:
    """One row per (variant, seed): the area under the `random` curve of every metric key."""
    rows = []
    for (variant, seed), part in frame.groupby(["variant", "seed"], sort=False):
        swept = part[part["protocol"] == RANDOM].sort_values("rate")
        values = {
            k: float(np.trapezoid(swept[k].to_numpy(dtype=np.float64), RATES))
            for k in METRIC_KEYS[scale]
        }
        rows.append({"variant": variant, "seed": int(seed), **values})
    return pd.DataFrame(rows)


def protocol_stats(frame: pd.DataFrame, protocol: str, rate: float, key: str) -> pd.DataFrame:
    """Mean and population std (ddof = 0) over seeds of `key` at (protocol, rate), per variant."""
    part = frame[(frame["protocol"] == protocol) & np.isclose(frame["rate"], rate)]
    grouped = part.groupby("variant", sort=False)[key]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0), "n": grouped.size()})
