"""HTML report, pretraining diagnostics: what each pretraining run learned, at its selected epoch.

One row per configuration and seed (`pretrain/<name>/<seed>/history.csv`): epochs run, the selected epoch
(lowest holdout loss), holdout modality-consistency accuracy (50% = chance; with donors from other videos
"same person?" can solve it without sentiment, see `pretrain.donor`), and per modality the holdout
reconstruction error next to the error of predicting the per-feature mean (a ratio near 1 means the
autoencoder learned little beyond the mean; far below 1 for a low-dimensional modality can also mean a
near-identity map). A run without holdout losses has no selected epoch ("–"; its last epoch is
shown), and a ratio whose mean error is 0 (no holdout clip of that modality) is "–".
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aemt.constants import MODALITIES, PRETRAIN_HISTORY
from aemt.errors import UserError
from aemt.io import save_text
from aemt.report.curves import read_history
from aemt.report.html import frame_to_html, html_page, notes_html


def diagnostics_table(histories: Sequence[str | os.PathLike]) -> pd.DataFrame:
    """One row per run: configuration, seed, epochs, selected epoch, MCD accuracy, reconstruction."""
    rows = []
    for path in (Path(h) for h in histories):
        h = read_history(path, PRETRAIN_HISTORY)
        try:
            rows.append(_run_row(path, h))
        except (TypeError, ValueError) as err:
            raise UserError(
                f"{path}: not a pretraining history of numbers ({err}); rerun the pretraining stage"
            ) from err
    return pd.DataFrame(rows)


def _run_row(path: Path, h: pd.DataFrame) -> dict:
    """The table row of one run (`h`: its history): at the lowest holdout loss, else the last epoch."""
    losses = pd.to_numeric(h["valid_loss"])
    selected = losses.notna().any()
    best = h.loc[losses.idxmin()] if selected else h.iloc[-1]
    row = {
        "configuration": path.parent.parent.name,
        "seed": path.parent.name,
        "epochs": len(h),
        "selected epoch": int(best["epoch"]) if selected else "–",
        "holdout MCD accuracy (%)": round(100.0 * float(best["valid_consistency_acc"]), 1),
    }
    for m in MODALITIES:
        recon, mean = float(best[f"valid_recon_{m}"]), float(best[f"mean_recon_{m}"])
        ratio = f"{recon / mean:.2f}" if mean != 0 and math.isfinite(recon / mean) else "–"
        row[f"{m}: recon MSE / mean MSE"] = f"{recon:.3f} / {mean:.3f} ({ratio})"
    return row


def write_pretraining(
    histories: Sequence[str | os.PathLike], out: str | os.PathLike, dataset: str = ""
) -> Path:
    """Write the diagnostics page (pretraining.html)."""
    table = diagnostics_table(histories)
    note = (
        "Holdout = the clips held out of pretraining for early stopping; values at the selected epoch. "
        "MCD accuracy: share of holdout clips correctly called tampered or intact (50% is chance; "
        "an accuracy near 100% may come from telling speakers apart rather than sentiment). "
        "Reconstruction: masked MSE of the z-scored features, then the MSE of predicting every "
        "position as the per-feature mean of the pretraining clips, and their ratio."
    )
    save_text(
        out,
        html_page(
            f"Pretraining diagnostics: {dataset}",
            [frame_to_html(table, text_columns=2), notes_html(note)],
        ),
    )
    return Path(out)
