"""HTML report, training curves: per-epoch losses of every pretraining run and every fine-tuning variant.

- Pretraining (`results/<ds>/pretrain/<name>/<seed>/history.csv`, columns PRETRAIN_HISTORY of
  aemt.constants): one figure per pretraining configuration, seeds overlaid, 2 x 2 panels: total loss,
  holdout reconstruction per modality next to predicting the per-feature mean, consistency (BCE), holdout
  consistency accuracy; train solid, validation dashed; the selected epoch of each seed dotted.
- Fine-tuning (`results/<ds>/finetune/<variant>/<seed>/history.csv`, columns FINETUNE_HISTORY of
  aemt.constants): one figure per variant, seeds overlaid: training loss L_ft, sentiment MSE (train vs
  validation) and validation MAE, the selected epoch of each seed (`best_epoch` of metrics.json) marked.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from aemt.constants import FINETUNE_HISTORY, MODALITIES, PRETRAIN_HISTORY
from aemt.errors import UserError
from aemt.io import load_json
from aemt.report.html import pyplot, save_figure
from aemt.report.tables import variant_label


def read_history(path: str | os.PathLike, columns: Sequence[str]) -> pd.DataFrame:
    """A training history.csv with the given columns required (UserError naming the file otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(
            f"missing {path}: the training run has not finished; build it with snakemake"
        )
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read {path} ({err}); delete it and rerun the training stage"
        ) from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"{path} lacks column(s) {', '.join(missing)}; it was written by another version of "
            "aemt: rerun the training stage"
        )
    if frame.empty:
        raise UserError(f"{path} has no epochs; rerun the training stage")
    return frame


def _style(n_epochs: int) -> dict:
    """Markers on short runs, so that a 1-2 epoch history still shows up as points."""
    return {"marker": "o", "markersize": 3} if n_epochs <= 30 else {}


def plot_pretrain(
    histories: Sequence[str | os.PathLike], name: str, dataset: str, out: Path
) -> Path:
    """The 2 x 2 pretraining figure of one configuration, seeds overlaid (one colour per seed): total
    loss, holdout reconstruction per modality next to predicting the per-feature mean, consistency
    BCE, holdout consistency accuracy. `histories` are `pretrain/<name>/<seed>/history.csv`."""
    plt = pyplot()
    if not histories:
        raise UserError("pretraining curves need at least one history.csv")
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, constrained_layout=True)
    colors = plt.get_cmap("tab10").colors
    styles = {"text": "-", "audio": "--", "vision": ":"}
    n_max = 0
    for i, history in enumerate(Path(h) for h in histories):
        h = read_history(history, PRETRAIN_HISTORY)
        seed, color, style = history.parent.name, colors[i % len(colors)], _style(len(h))
        epoch, n_max = h["epoch"], max(n_max, len(h))
        best = int(h.loc[h["valid_loss"].idxmin(), "epoch"]) if h["valid_loss"].notna().any() else 0
        for ax, part in ((axes[0, 0], "loss"), (axes[1, 0], "consistency")):
            ax.plot(epoch, h[f"train_{part}"], color=color, label=f"seed {seed} train", **style)
            ax.plot(epoch, h[f"valid_{part}"], color=color, ls="--", label=f"seed {seed} valid")
        for m in MODALITIES:
            axes[0, 1].plot(
                epoch, h[f"valid_recon_{m}"], color=color, ls=styles[m], label=f"{m} (seed {seed})"
            )
            axes[0, 1].axhline(float(h[f"mean_recon_{m}"].iloc[0]), color=color, lw=0.8, alpha=0.5)
        acc = 100.0 * h["valid_consistency_acc"]
        axes[1, 1].plot(epoch, acc, color=color, label=f"seed {seed}", **style)
        for ax in axes.flat:
            if best:
                ax.axvline(best, color=color, lw=0.8, ls=":")
    axes[0, 0].set_title("Total loss L_ae = L_recon + λ1·L_consistency")
    axes[0, 1].set_title("Holdout reconstruction per modality (thin lines: predict the mean)")
    axes[1, 0].set_title("Modality-consistency detection (BCE)")
    axes[1, 1].set_title("Holdout consistency accuracy")
    axes[0, 0].set_ylabel("loss")
    axes[0, 1].set_ylabel("masked MSE (z-scored features)")
    axes[1, 0].set_ylabel("BCE")
    axes[1, 1].set_ylabel("accuracy (%)")
    axes[1, 1].axhline(50.0, color="0.5", lw=1, ls=":", label="chance (50 %)")
    axes[1, 1].set_ylim(-3, 103)  # points at 0 / 100 % stay visible
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if ax is axes[0, 1] else 1)
    for ax in axes[1]:
        ax.set_xlabel("epoch (dotted: selected epoch of each seed)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(
        f"{dataset}: pretraining '{name}', {len(histories)} seed(s), up to {n_max} epochs "
        "(validation = held-out clips)"
    )
    return save_figure(fig, out)


def plot_finetune(
    histories: Sequence[str | os.PathLike], variant: str, dataset: str, out: Path
) -> Path:
    """The fine-tuning curve figure of one variant, seeds overlaid (one colour per seed).

    `histories` are the runs' `finetune/<variant>/<seed>/history.csv`; the selected epoch comes from the
    metrics.json beside each.
    """
    plt = pyplot()
    if not histories:
        raise UserError("finetune curves need at least one seed")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True, constrained_layout=True)
    colors = plt.get_cmap("tab10").colors
    n_max = 0
    for i, history in enumerate(Path(h) for h in histories):
        seed = history.parent.name
        h = read_history(history, FINETUNE_HISTORY)
        n_max = max(n_max, len(h))
        color = colors[i % len(colors)]
        style = _style(len(h))
        axes[0].plot(h["epoch"], h["train_loss"], color=color, label=f"seed {seed}", **style)
        axes[1].plot(h["epoch"], h["train_senti"], color=color, label=f"seed {seed} train", **style)
        axes[1].plot(
            h["epoch"], h["valid_loss"], color=color, ls="--", label=f"seed {seed} valid", **style
        )
        axes[2].plot(h["epoch"], h["valid_mae"], color=color, label=f"seed {seed}", **style)
        best = _best_epoch(history.with_name("metrics.json"))
        if best is not None and (h["epoch"] == best).any():
            value = float(h.loc[h["epoch"] == best, "valid_mae"].iloc[0])
            axes[2].plot([best], [value], marker="*", markersize=13, color=color, ls="none")
    axes[0].set_title("Training loss L_ft = L_senti + λ2·L_con")
    axes[0].set_ylabel("loss")
    axes[1].set_title("Sentiment MSE: train (solid) vs validation (dashed)")
    axes[1].set_ylabel("MSE (label units²)")
    axes[2].set_title("Validation MAE (★ = selected epoch)")
    axes[2].set_ylabel("MAE (label units)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if ax is axes[1] else 1)
    fig.suptitle(
        f"{dataset}: fine-tuning '{variant}' ({variant_label(variant)}), {len(histories)} seed(s), "
        f"up to {n_max} epochs"
    )
    return save_figure(fig, out)


def _best_epoch(metrics: Path) -> int | None:
    """`best_epoch` of a run's metrics.json, or None when absent / unreadable."""
    if not metrics.is_file():
        return None
    try:
        value = load_json(metrics).get("best_epoch")
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    return None
