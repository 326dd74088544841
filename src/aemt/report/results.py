"""HTML report, results part: metrics and ablation tables (HTML), variant bar chart, best-variant plots.

Reads the runs' `finetune/<variant>/<seed>/{metrics.json, predictions.csv}` (contract of `aemt finetune`),
named explicitly, and writes under an output folder (`results/<ds>/report/` in the workflow):

- `metrics.html`: mean ± std per variant and per-seed test metrics (x100), validation MAE, the conventions;
- `ablation.html`: the paper-style ablation table (+ "predict the train mean" baseline row);
- `variants.png`: grouped bars of every metric per variant, error bars = population std over seeds;
- `best_scatter.png` / `best_confusion.png`: predicted vs true test scores and confusion matrices of the
  best variant. "Best" = lowest mean VALIDATION MAE over seeds (`metrics.json["valid"]["MAE"]`), never a
  test metric, so the choice is not test-set selection.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.constants import LOWER_IS_BETTER, METRIC_KEYS, SCALE_BOUNDS
from aemt.errors import UserError
from aemt.evaluate.metrics import SIMS_EDGES, sims_classes
from aemt.evaluate.summary import (
    paired_differences,
    read_runs,
    summarise,
    train_mean_baseline,
)
from aemt.io import save_text
from aemt.report.html import frame_to_html, html_page, notes_html, pyplot, save_figure
from aemt.report.tables import (
    BASELINE_LABEL,
    BEST_MARK,
    ablation_table,
    baseline_note,
    convention_note,
    mean_std_table,
    paired_note,
    paired_table,
    per_seed_table,
    variant_label,
)


@dataclass(frozen=True)
class ResultsOutputs:
    metrics_html: Path
    ablation_html: Path
    variants_png: Path
    scatter_png: Path
    confusion_png: Path
    best_variant: str
    best_reason: str


# ----------------------------------------------------------------------------- reading runs


def select_best(runs: pd.DataFrame) -> tuple[str, str]:
    """The variant with the lowest mean validation MAE over seeds, and a sentence saying how it was chosen.

    Falls back to `aemt` (else the first variant) when no run recorded validation metrics.
    """
    valid = runs.groupby("variant", sort=False)["valid_MAE"].mean()
    if valid.notna().any():
        best = str(valid.idxmin())
        return best, (
            f"best variant = lowest mean validation MAE over seeds ({best}: "
            f"{valid[best]:.4f}); the test split plays no part in the choice"
        )
    best = "aemt" if "aemt" in set(runs["variant"]) else str(runs["variant"].iloc[0])
    return best, f"no validation metrics recorded; showing {best} (the main variant)"


def read_predictions(metrics: Sequence[str | os.PathLike], variant: str) -> pd.DataFrame:
    """Test predictions of one variant (the predictions.csv beside its metrics.json files), all seeds
    stacked: columns key, label, pred, seed."""
    frames = []
    for path in (Path(m) for m in metrics):
        if path.parent.parent.name != variant:
            continue
        pred_path = path.with_name("predictions.csv")
        if not pred_path.is_file():
            raise UserError(
                f"missing {pred_path}: fine-tuning of {variant!r} seed {path.parent.name} has not "
                f"run; build it with `snakemake --cores 1 {pred_path}`"
            )
        frame = pd.read_csv(pred_path, dtype={"key": str})
        missing = {"key", "label", "pred"} - set(frame.columns)
        if missing:
            raise UserError(
                f"{pred_path} lacks column(s) {', '.join(sorted(missing))}; rerun finetune"
            )
        frames.append(frame.assign(seed=int(path.parent.name)))
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- figures


def plot_variants(
    runs: pd.DataFrame, scale: str, dataset: str, baseline: dict[str, float] | None, out: Path
) -> Path:
    """Grouped bar chart: metrics (x) x variants (bars), error bars = population std over seeds."""
    plt = pyplot()
    keys = METRIC_KEYS[scale]
    score_keys = [k for k in keys if k not in LOWER_IS_BETTER]
    stats = summarise(runs, scale)
    variants = list(pd.unique(stats["variant"]))
    mean = stats[stats["stat"] == "mean"].set_index("variant")
    std = stats[stats["stat"] == "std"].set_index("variant")
    series = [(variant_label(v), mean.loc[v], std.loc[v], None) for v in variants]
    if baseline is not None:
        zero = pd.Series(0.0, index=keys)
        series.append((BASELINE_LABEL, pd.Series(baseline), zero, "//"))
    n_seeds = int(mean["n_seeds"].max())
    fig, (ax_s, ax_m) = plt.subplots(
        1, 2, figsize=(13, 4.8), width_ratios=[len(score_keys), 1.6], constrained_layout=True
    )
    colors = plt.get_cmap("tab10").colors
    width = 0.8 / len(series)
    for ax, group, factor in ((ax_s, score_keys, 100.0), (ax_m, ["MAE"], 1.0)):
        x = np.arange(len(group))  # [K]
        for i, (name, m, s, hatch) in enumerate(series):
            color = "0.75" if hatch else colors[i % len(colors)]
            ax.bar(
                x + (i - (len(series) - 1) / 2) * width,
                factor * m[group].to_numpy(dtype=float),
                width,
                yerr=factor * s[group].to_numpy(dtype=float),
                capsize=2,
                color=color,
                hatch=hatch,
                edgecolor="0.3",
                linewidth=0.5,
                label=name,
            )
        ax.set_xticks(x, group)
        ax.grid(axis="y", alpha=0.3)
    ax_s.set_ylabel("score (%)")
    ax_s.set_title("Accuracy, F1 and Pearson Corr (higher is better)")
    ax_m.set_ylabel("MAE (label units)")
    ax_m.set_title("MAE (lower is better)")
    fig.legend(
        *ax_s.get_legend_handles_labels(), loc="outside lower center", ncol=len(series), fontsize=9
    )
    fig.suptitle(
        f"{dataset}: test metrics per variant (mean ± std over {n_seeds} seed(s), ddof = 0)"
    )
    return save_figure(fig, out)


def class_bins(values: np.ndarray, scale: str) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Class index per value for the two confusion matrices of the scale, with class names."""
    if scale == "sims":
        v = np.clip(values, -1.0, 1.0)
        edges = [max(-1.0, min(1.0, e)) for e in SIMS_EDGES["Acc-5"]]
        names5 = [f"({a:g}, {b:g}]" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        names5[0] = "[" + names5[0][1:]  # -1 itself is in the first class after clipping
        return {
            "Acc-2 classes (a score of 0 is negative)": (
                sims_classes(v, "Acc-2"),
                ["neg (≤ 0)", "pos (> 0)"],
            ),
            "Acc-5 classes": (sims_classes(v, "Acc-5"), names5),
        }
    return {
        "Has0 Acc-2 classes (0 counts as positive)": (
            (values >= 0).astype(int),
            ["neg (< 0)", "pos (≥ 0)"],
        ),
        "Acc-7 classes (clip to [-3, 3], round)": (
            np.round(np.clip(values, -3.0, 3.0)).astype(int) + 3,
            [str(c) for c in range(-3, 4)],
        ),
    }


def plot_scatter(preds: pd.DataFrame, scale: str, title: str, out: Path) -> Path:
    """Predicted vs true test scores, one colour per seed, with the identity line."""
    plt = pyplot()
    lim = SCALE_BOUNDS[scale]
    fig, ax = plt.subplots(figsize=(6.4, 6.0), constrained_layout=True)
    for seed, part in preds.groupby("seed"):
        ax.scatter(part["label"], part["pred"], s=18, alpha=0.6, label=f"seed {seed}")
    span = max(lim, float(np.abs(preds[["label", "pred"]].to_numpy()).max())) * 1.05
    ax.plot([-span, span], [-span, span], color="0.3", lw=1, ls="--", label="prediction = truth")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true sentiment score (label, [-{lim:g}, {lim:g}])")
    ax.set_ylabel("predicted sentiment score")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)


def plot_confusion(preds: pd.DataFrame, scale: str, title: str, out: Path) -> Path:
    """Confusion matrices (counts pooled over seeds) on the scale's coarse and fine classes."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    plt = pyplot()
    true = class_bins(preds["label"].to_numpy(dtype=float), scale)
    pred = class_bins(preds["pred"].to_numpy(dtype=float), scale)
    fig, axes = plt.subplots(
        1, 2, figsize=(11, 5.6), width_ratios=[1, 1.5], constrained_layout=True
    )
    for ax, (name, (y, labels)) in zip(axes, true.items(), strict=True):
        cm = confusion_matrix(y, pred[name][0], labels=list(range(len(labels))))  # [C, C]
        ConfusionMatrixDisplay(cm, display_labels=labels).plot(
            ax=ax,
            cmap="Blues",
            colorbar=False,
            values_format="d",
            im_kw={"vmin": 0, "vmax": max(1, int(cm.max()))},  # a uniform matrix stays readable
        )
        ax.set_title(name)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle(title, fontsize=11)
    return save_figure(fig, out)


# ----------------------------------------------------------------------------- entry point


def write_results(
    metrics: Sequence[str | os.PathLike],
    scale: str,
    out_dir: str | os.PathLike,
    *,
    train_meta: str | os.PathLike | None = None,
    test_meta: str | os.PathLike | None = None,
    dataset: str = "",
) -> ResultsOutputs:
    """Write metrics.html, ablation.html, variants.png, best_scatter.png, best_confusion.png.

    `metrics` are the runs' metrics.json files (their predictions.csv sit beside them); the train and
    test meta.csv give the "predict the train mean" baseline row (left out when not given).
    """
    out_dir = Path(out_dir)
    runs = read_runs(metrics, scale)
    seeds = list(pd.unique(runs["seed"]))
    base = None
    if train_meta is not None and test_meta is not None:
        base = train_mean_baseline(train_meta, test_meta, scale)
    best, reason = select_best(runs)
    note = convention_note(scale, len(seeds))
    selection = (
        f"Model selection inside each run: the epoch with the best validation score; the test split "
        f"is predicted once. {BEST_MARK} marks the {reason}."
    )
    diffs = paired_differences(runs, scale)
    paired = []
    if len(diffs):
        paired = [
            "<h2>Paired differences against aemt, ×100</h2>",
            frame_to_html(paired_table(diffs), text_columns=2),
            notes_html(paired_note()),
        ]
    metrics_html = out_dir / "metrics.html"
    save_text(
        metrics_html,
        html_page(
            f"Test metrics: {dataset} (scale {scale})",
            [
                f"<h2>Mean ± std over seeds ({', '.join(str(s) for s in seeds)}), ×100</h2>",
                frame_to_html(mean_std_table(runs, scale, best), text_columns=2),
                *paired,
                "<h2>Per seed, ×100</h2>",
                frame_to_html(per_seed_table(runs, scale)),
                "<h2>Definitions</h2>",
                notes_html(f"{note}\n\n{selection}"),
            ],
        ),
    )
    ablation_html = out_dir / "ablation.html"
    save_text(
        ablation_html,
        html_page(
            f"Ablation: {dataset} (scale {scale})",
            [
                frame_to_html(ablation_table(runs, scale, base), text_columns=2),
                notes_html(f"{note}\n\n{baseline_note(base)}"),
                *paired,
            ],
        ),
    )
    variants_png = plot_variants(runs, scale, dataset, base, out_dir / "variants.png")
    preds = read_predictions(metrics, best)
    part = runs[runs["variant"] == best]
    n_clips = int(preds.groupby("seed").size().iloc[0])
    summary = (
        f"MAE {part['MAE'].mean():.3f} ± {part['MAE'].std(ddof=0):.3f}, "
        f"Corr {part['Corr'].mean():.3f} ± {part['Corr'].std(ddof=0):.3f} (over seeds)"
    )
    how = "lowest mean valid MAE" if runs["valid_MAE"].notna().any() else "no valid metrics"
    head = f"{dataset} test split, best variant {variant_label(best)} ({how})"
    scatter_png = plot_scatter(
        preds,
        scale,
        f"{head}\n{n_clips} clips × {len(seeds)} seed(s); {summary}",
        out_dir / "best_scatter.png",
    )
    confusion_png = plot_confusion(
        preds,
        scale,
        f"{head}: confusion matrices, counts pooled over {len(seeds)} seed(s) ({n_clips} clips each)",
        out_dir / "best_confusion.png",
    )
    return ResultsOutputs(
        metrics_html, ablation_html, variants_png, scatter_png, confusion_png, best, reason
    )
