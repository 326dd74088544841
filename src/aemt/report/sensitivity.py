"""The λ1 / λ2 sensitivity plot (the paper's Fig. 4): metrics vs a loss weight, error bars over seeds."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from aemt.report.html import pyplot, save_figure
from aemt.report.tables import PARAM_SYMBOLS

# Metrics drawn on the accuracy panel (MAE goes on its own panel).
SENSITIVITY_KEYS: dict[str, list[str]] = {
    "sims": ["Acc-2", "F1"],
    "mosei": ["Has0_Acc-2", "Has0_F1", "Non0_Acc-2", "Non0_F1"],
}


def plot_sensitivity(
    frame: pd.DataFrame, param: str, scale: str, n_seeds: int, dataset: str, out: str | os.PathLike
) -> Path:
    """Two panels (accuracies and F1 in %, MAE) vs the swept value; `frame` from
    :func:`aemt.evaluate.summary.sensitivity_frame`."""
    plt = pyplot()
    symbol = PARAM_SYMBOLS.get(param, param)
    x = frame["value"].to_numpy()  # [V]
    fig, (ax_acc, ax_mae) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    panels = [
        (ax_acc, SENSITIVITY_KEYS[scale], 100.0, "score (%)", "Accuracy and weighted F1"),
        (ax_mae, ["MAE"], 1.0, "MAE (label units, lower is better)", "Mean absolute error"),
    ]
    for ax, keys, factor, ylabel, title in panels:
        for key in keys:
            mean, std = factor * frame[f"{key}_mean"], factor * frame[f"{key}_std"]
            style = "--" if "F1" in key else "-"  # F1 tracks Acc-2 closely: keep both visible
            ax.errorbar(x, mean, yerr=std, ls=style, marker="o", capsize=3, label=key)
        ax.set_xlabel(f"{symbol} (loss weight, dimensionless)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.set_xticks(x)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(
        f"Sensitivity to {symbol} on {dataset} (mean ± std over {n_seeds} seed(s), ddof = 0)"
    )
    return save_figure(fig, out, dpi=120)
