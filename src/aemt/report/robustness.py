"""Robustness to missing modalities, what a researcher reads: the tables of `robustness.md` and of the
report's `robustness.html` (each computed once as a DataFrame of display strings, x100 as every table), and
`robustness.png` (metric vs drop rate, one line per variant, a band of ± one std over seeds).

Input: the stacked per-run tables of :func:`aemt.evaluate.robustness.read_tables` (robustness.csv).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.evaluate.robustness import (
    ABSENT,
    AREA_KEYS,
    RANDOM,
    RATES,
    absent_protocol,
    areas,
    curve,
    protocol_stats,
)
from aemt.io import save_text
from aemt.report.html import frame_to_html, html_page, notes_html, pyplot, save_figure
from aemt.report.markdown import markdown_table
from aemt.report.tables import metric_header, paper_order, pm, variant_label

ABSENT_LABELS = {absent_protocol(a): "−" + " −".join(a) for a in ABSENT}


def _order(frame: pd.DataFrame) -> list[str]:
    return paper_order([str(v) for v in pd.unique(frame["variant"])])


def area_table(frame: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Per variant: each of the scale's area metrics at rate 0 (complete inputs) and its area under the
    random-dropping curve, mean ± std over seeds (x100)."""
    area = areas(frame, scale)
    clean = {key: protocol_stats(frame, RANDOM, 0.0, key) for key in AREA_KEYS[scale]}
    rows = []
    for variant in _order(frame):
        runs = area[area["variant"] == variant]
        row = {"Variant": variant, "Model": variant_label(variant), "Seeds": len(runs)}
        for key in AREA_KEYS[scale]:
            values = runs[key].to_numpy(dtype=np.float64)  # [S]
            mean, std = clean[key].at[variant, "mean"], clean[key].at[variant, "std"]
            row[f"{metric_header(key)} at rate 0"] = pm(mean, std)
            row[f"{metric_header(key)} area"] = pm(float(values.mean()), float(values.std()))
        rows.append(row)
    return pd.DataFrame(rows)


def absence_table(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Per variant: `key` with complete inputs and with each modality (pair) absent, mean ± std (x100)."""
    columns = [(RANDOM, 0.0, "complete")] + [(p, 1.0, label) for p, label in ABSENT_LABELS.items()]
    stats = {label: protocol_stats(frame, p, rate, key) for p, rate, label in columns}
    rows = []
    for variant in _order(frame):
        row = {"Variant": variant, "Model": variant_label(variant)}
        for _, _, label in columns:
            row[label] = pm(stats[label].at[variant, "mean"], stats[label].at[variant, "std"])
        rows.append(row)
    return pd.DataFrame(rows)


def robustness_note(scale: str, n_seeds: int, mask_seeds: Sequence[int] | None = None) -> str:
    """What the tables mean: protocols, masks, areas, units."""
    keys = AREA_KEYS[scale]
    masks = (
        f"mask seeds {', '.join(str(s) for s in mask_seeds)}, the same for every variant and run; "
        if mask_seeds
        else "fixed mask seeds, the same for every variant and run; "
    )
    return (
        f"Test split. Random dropping: every valid step of text, audio and vision is dropped "
        f"independently with probability = rate ({masks}metrics averaged over the draws). A dropped "
        "step is masked and zeroed, text included (our text features are token states: a dropped token "
        "is a masked zero step, not an [UNK] token). Rate 0 equals each run's plain test metrics.\n\n"
        f"Area = trapezoid area under the metric-vs-rate curve over rates 0.0, 0.1, ..., 1.0 (the axis "
        f"has length 1, so an area is a mean over rates); for {', '.join(keys)}. Higher is better except "
        "for MAE (↓). Without X: modality X removed from every test clip. All values ×100 (MAE "
        f"included); mean ± std over {n_seeds} seed(s), std with ddof = 0."
    )


def _tables(frame: pd.DataFrame, scale: str) -> list[tuple[str, pd.DataFrame, int]]:
    """(title, table, text columns) of every robustness table, in page order."""
    acc = AREA_KEYS[scale][1]
    return [
        ("Random per-step dropping in all modalities", area_table(frame, scale), 2),
        ("Whole modalities absent: MAE ↓", absence_table(frame, "MAE"), 2),
        (f"Whole modalities absent: {acc}", absence_table(frame, acc), 2),
    ]


def write_robustness_markdown(
    frame: pd.DataFrame,
    scale: str,
    out: str | os.PathLike,
    dataset: str,
    mask_seeds: Sequence[int] | None = None,
) -> str:
    """Write robustness.md; returns the area table (what the CLI prints)."""
    n_seeds = int(frame["seed"].nunique())
    parts = [f"# Robustness to missing modalities: {dataset} (scale: {scale})"]
    tables = _tables(frame, scale)
    for title, table, text_columns in tables:
        parts += [f"## {title}", markdown_table(table, text_columns=text_columns)]
    parts.append(robustness_note(scale, n_seeds, mask_seeds))
    save_text(out, "\n\n".join(parts) + "\n")
    return markdown_table(tables[0][1], text_columns=2)  # the area table


def plot_robustness(frame: pd.DataFrame, scale: str, dataset: str, out: str | os.PathLike) -> Path:
    """One panel per area metric: metric vs drop rate, a line per variant, ± std band over seeds."""
    plt = pyplot()
    keys = AREA_KEYS[scale]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4.4), constrained_layout=True)
    colors = plt.get_cmap("tab10").colors
    x = np.asarray(RATES)  # [11]
    n_seeds = int(frame["seed"].nunique())
    for ax, key in zip(axes, keys, strict=True):
        factor = 1.0 if key == "MAE" else 100.0
        for i, variant in enumerate(_order(frame)):
            seeds = pd.unique(frame.loc[frame["variant"] == variant, "seed"])
            ys = factor * np.stack([curve(frame, variant, s, key) for s in seeds])  # [S, 11]
            mean, std = ys.mean(axis=0), ys.std(axis=0)
            color = colors[i % len(colors)]
            ax.plot(x, mean, marker="o", ms=3, color=color, label=variant_label(variant))
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.15, linewidth=0)
        ax.set_xlabel("fraction of steps dropped in every modality (rate)")
        ax.set_ylabel("MAE (label units, lower is better)" if key == "MAE" else f"{key} (%)")
        ax.set_title(key)
        ax.set_xticks(x[::2])
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=9)
    fig.suptitle(
        f"{dataset}: test metrics under random missing steps (mean ± std over {n_seeds} seed(s))"
    )
    return save_figure(fig, out)


def write_robustness_report(
    frame: pd.DataFrame,
    scale: str,
    out_dir: str | os.PathLike,
    dataset: str,
    mask_seeds: Sequence[int] | None = None,
) -> tuple[Path, Path]:
    """robustness.html (the tables of robustness.md and their definitions) and robustness.png."""
    out_dir = Path(out_dir)
    body = []
    for title, table, text_columns in _tables(frame, scale):
        body += [f"<h2>{title}</h2>", frame_to_html(table, text_columns=text_columns)]
    body += [
        "<h2>Definitions</h2>",
        notes_html(robustness_note(scale, int(frame["seed"].nunique()), mask_seeds)),
    ]
    html = out_dir / "robustness.html"
    save_text(html, html_page(f"Robustness to missing modalities: {dataset} (scale {scale})", body))
    return html, plot_robustness(frame, scale, dataset, out_dir / "robustness.png")
