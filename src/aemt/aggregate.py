"""Aggregation over seeds: per-seed metrics, mean ± std per variant, ablation table, sensitivity plot.

Reads `<dataset_dir>/finetune/<variant>/<seed>/metrics.json` (written by `aemt finetune`) and writes:

- `summary.csv`: one row per (variant, seed) plus a `mean` and a `std` row per variant (column `row`),
  values as fractions, std = population std (ddof = 0, as MMSA);
- `summary.md`: the per-seed table and the mean ± std table (x100, MMSA's convention) with a note;
- `ablation.md`: the paper-style ablation table (AE-MT, w/o CL, w/o MCD, w/o Transformer, MulT), plus a
  "predict the train mean" baseline row when the aligned train/test `meta.csv` files exist;
- `sensitivity_<param>.csv` / `.png`: metrics vs a loss weight (the paper's Fig. 4), error bars over seeds.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.errors import UserError
from aemt.io import atomic_path, load_json, save_csv, save_text
from aemt.metrics import LOWER_IS_BETTER, METRIC_KEYS, SCALES, evaluate

# Paper-style row names of the known variants, in the order of the ablation table.
VARIANT_LABELS: dict[str, str] = {
    "aemt": "AE-MT",
    "aemt_wo_cl": "w/o CL",
    "aemt_wo_mcd": "w/o MCD",
    "aemt_wo_tr": "w/o Transformer (LSTM)",
    "mult": "MulT baseline",
}
BASELINE_LABEL = "Predict train mean"
# Metrics drawn on the accuracy panel of the sensitivity plot (MAE goes on its own panel).
SENSITIVITY_KEYS: dict[str, list[str]] = {
    "sims": ["Acc-2", "F1"],
    "mosei": ["Has0_Acc-2", "Has0_F1", "Non0_Acc-2", "Non0_F1"],
}
PARAM_SYMBOLS = {"lambda1": "λ1", "lambda2": "λ2"}


@dataclass(frozen=True)
class SummaryOutputs:
    summary_csv: Path
    summary_md: Path
    ablation_md: Path
    table: str  # the mean ± std Markdown table (what the CLI prints)


@dataclass(frozen=True)
class SensitivityOutputs:
    csv: Path
    png: Path
    table: str


def metrics_path(dataset_dir: str | os.PathLike, variant: str, seed: int | str) -> Path:
    return Path(dataset_dir) / "finetune" / variant / str(seed) / "metrics.json"


def collect(
    dataset_dir: str | os.PathLike,
    variants: Sequence[str],
    seeds: Sequence[int | str],
    scale: str | None = None,
) -> pd.DataFrame:
    """One row per (variant, seed) from the finetune `metrics.json` files.

    Columns: `variant`, `seed` (int), then every numeric top-level key of the JSON (the metric keys,
    `best_epoch`, ...). The directory names the variant and seed. When `scale` is given, each file must
    hold all `METRIC_KEYS[scale]`. A missing or unreadable file raises UserError naming the path and the
    Snakemake target that builds it.
    """
    if not variants or not seeds:
        raise UserError("aggregate needs at least one variant and one seed")
    rows = [
        _read_metrics(metrics_path(dataset_dir, v, s), v, s, scale) for v in variants for s in seeds
    ]
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Mean and population std (ddof = 0) of the scale's metrics per variant.

    Returns columns `variant`, `stat` ("mean" / "std"), `n_seeds`, then `METRIC_KEYS[scale]`: two rows
    per variant, variants in order of first appearance. NaN in any seed propagates to mean and std.
    """
    keys = METRIC_KEYS[_check_scale(scale)]
    missing = [k for k in keys if k not in df.columns]
    if missing:
        raise UserError(f"per-seed metrics lack column(s) {', '.join(missing)} for scale {scale!r}")
    rows: list[dict] = []
    for variant in pd.unique(df["variant"]):
        values = df.loc[df["variant"] == variant, keys].to_numpy(dtype=np.float64)  # [S, M]
        base = {"variant": variant, "n_seeds": int(values.shape[0])}
        rows.append(
            {**base, "stat": "mean", **dict(zip(keys, np.mean(values, axis=0), strict=True))}
        )
        rows.append(
            {**base, "stat": "std", **dict(zip(keys, np.std(values, axis=0, ddof=0), strict=True))}
        )
    return pd.DataFrame(rows, columns=["variant", "stat", "n_seeds", *keys])


def train_mean_baseline(dataset_dir: str | os.PathLike, scale: str) -> dict[str, float] | None:
    """Metrics of predicting the mean train label for every test clip; None without aligned meta files.

    Reads `<dataset_dir>/aligned/train/meta.csv` and `aligned/test/meta.csv` (column `label`). The
    returned dict holds the metric keys plus `train_mean`, `n_train`, `n_test`. Corr of this constant
    predictor is reported as 0.0.
    """
    paths = [Path(dataset_dir) / "aligned" / split / "meta.csv" for split in ("train", "test")]
    if not all(p.is_file() for p in paths):
        return None
    train, test = (_read_labels(p) for p in paths)
    mean = float(np.mean(train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Corr of a constant is 0 by design here
        result = evaluate(np.full_like(test, mean), test, scale)
    return {**result, "train_mean": mean, "n_train": float(train.size), "n_test": float(test.size)}


def write_summary(
    dataset_dir: str | os.PathLike,
    variants: Sequence[str],
    seeds: Sequence[int | str],
    scale: str,
    baseline: dict[str, float] | None = None,
) -> SummaryOutputs:
    """Write `summary.csv`, `summary.md` and `ablation.md` under `dataset_dir`; return their paths."""
    _check_scale(scale)
    dataset_dir = Path(dataset_dir)
    per_seed = collect(dataset_dir, variants, seeds, scale)
    stats = summarise(per_seed, scale)
    keys = METRIC_KEYS[scale]

    extra = [c for c in per_seed.columns if c not in ("variant", "seed", *keys)]
    seed_rows = per_seed.assign(row="seed")[["variant", "row", "seed", *keys, *extra]]
    stat_rows = stats.rename(columns={"stat": "row"}).drop(columns="n_seeds")
    csv = pd.concat([seed_rows, stat_rows], ignore_index=True)
    for col in ["seed", *(c for c in extra if pd.api.types.is_integer_dtype(per_seed[c]))]:
        csv[col] = csv[col].astype("Int64")  # integers stay integers; empty in mean / std rows
    out_csv = dataset_dir / "summary.csv"
    save_csv(out_csv, csv)

    table = mean_std_markdown(stats, scale)
    seed_list = ", ".join(str(s) for s in seeds)
    md = (
        f"# Results: {dataset_dir.name} (scale: {scale})\n\n"
        f"## Mean ± std over seeds ({seed_list})\n\n{table}\n\n"
        f"## Per seed\n\n{per_seed_markdown(per_seed, scale)}\n\n"
        f"{convention_note(scale, len(seeds))}\n"
    )
    out_md = dataset_dir / "summary.md"
    save_text(out_md, md)
    out_ablation = dataset_dir / "ablation.md"
    save_text(out_ablation, ablation_markdown(stats, scale, baseline, len(seeds)))
    return SummaryOutputs(out_csv, out_md, out_ablation, table)


def write_sensitivity(
    dataset_dir: str | os.PathLike,
    param: str,
    values: Sequence[float],
    variant_prefix: str,
    seeds: Sequence[int | str],
    scale: str,
) -> SensitivityOutputs:
    """Write `sensitivity_<param>.csv` and `.png`: the metrics vs `param` with error bars over seeds.

    Run directories are `finetune/<variant_prefix><format(value, "g")>/<seed>/`. The CSV holds one row
    per value (sorted): `param, value, variant, n_seeds` and `<metric>_mean`, `<metric>_std` (fractions,
    ddof = 0) for every metric of the scale.
    """
    keys = METRIC_KEYS[_check_scale(scale)]
    if not values:
        raise UserError("sensitivity needs at least one value")
    ordered = sorted(float(v) for v in values)
    variants = [f"{variant_prefix}{format(v, 'g')}" for v in ordered]
    stats = summarise(collect(dataset_dir, variants, seeds, scale), scale)
    mean = stats[stats["stat"] == "mean"].set_index("variant").loc[variants]
    std = stats[stats["stat"] == "std"].set_index("variant").loc[variants]
    frame = pd.DataFrame(
        {
            "param": param,
            "value": ordered,
            "variant": variants,
            "n_seeds": mean["n_seeds"].to_numpy(),
        }
    )
    for key in keys:
        frame[f"{key}_mean"] = mean[key].to_numpy()
        frame[f"{key}_std"] = std[key].to_numpy()
    dataset_dir = Path(dataset_dir)
    out_csv = dataset_dir / f"sensitivity_{param}.csv"
    save_csv(out_csv, frame)
    out_png = dataset_dir / f"sensitivity_{param}.png"
    _plot_sensitivity(frame, param, scale, len(seeds), dataset_dir.name, out_png)
    header = [PARAM_SYMBOLS.get(param, param), *(_metric_header(k) for k in keys)]
    rows = [
        [format(v, "g"), *(_pm(frame.at[i, f"{k}_mean"], frame.at[i, f"{k}_std"]) for k in keys)]
        for i, v in enumerate(ordered)
    ]
    return SensitivityOutputs(out_csv, out_png, markdown_table(header, rows))


# ----------------------------------------------------------------------------- tables


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; the first column left-aligned, the others right-aligned."""
    align = [":--", *(["--:"] * (len(header) - 1))]
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines)


def fmt100(value: float) -> str:
    """A fraction shown x100 with two decimals (MMSA's table convention); NaN -> 'n/a'."""
    return "n/a" if not math.isfinite(value) else f"{100.0 * value:.2f}"


def _pm(mean: float, std: float) -> str:
    return "n/a" if not math.isfinite(mean) else f"{fmt100(mean)} ± {fmt100(std)}"


def mean_std_markdown(stats: pd.DataFrame, scale: str) -> str:
    """Mean ± std table (x100): one row per variant, one column per metric."""
    keys = METRIC_KEYS[scale]
    header = ["Variant", "Seeds", *(_metric_header(k) for k in keys)]
    return markdown_table(header, [[v, str(n), *cells] for v, n, cells in _stat_cells(stats, keys)])


def per_seed_markdown(per_seed: pd.DataFrame, scale: str) -> str:
    keys = METRIC_KEYS[scale]
    header = ["Variant", "Seed", *(_metric_header(k) for k in keys)]
    rows = [
        [row["variant"], str(int(row["seed"])), *(fmt100(float(row[k])) for k in keys)]
        for _, row in per_seed.iterrows()
    ]
    return markdown_table(header, rows)


def ablation_markdown(
    stats: pd.DataFrame, scale: str, baseline: dict[str, float] | None, n_seeds: int
) -> str:
    """Paper-style ablation table: known variants in paper order, then unknown ones, then the baseline."""
    keys = METRIC_KEYS[scale]
    cells = {v: c for v, _, c in _stat_cells(stats, keys)}
    order = [v for v in VARIANT_LABELS if v in cells] + [
        v for v in cells if v not in VARIANT_LABELS
    ]
    rows = [[VARIANT_LABELS.get(v, v), *cells[v]] for v in order]
    note = ""
    if baseline is not None:
        rows.append([BASELINE_LABEL, *(fmt100(float(baseline[k])) for k in keys)])
        mean = baseline.get("train_mean")
        note = (
            "\n\nBaseline: every test clip is predicted as the mean train label"
            + (f" ({mean:.4f})" if mean is not None else "")
            + "; it has no seeds, and the Pearson correlation of a constant prediction is undefined "
            "(shown as 0)."
        )
    header = ["Model", *(_metric_header(k) for k in keys)]
    return (
        f"# Ablation (scale: {scale})\n\n{markdown_table(header, rows)}{note}\n\n"
        f"{convention_note(scale, n_seeds)}\n"
    )


def convention_note(scale: str, n_seeds: int) -> str:
    """The note printed under every table: units, std convention and the scale's class definitions."""
    common = (
        f"All values ×100 (MMSA's convention, MAE included: 29.05 means 0.2905). Mean ± std over "
        f"{n_seeds} seed(s); std is the population standard deviation (ddof = 0), as in MMSA. "
        "↓ marks lower-is-better; everything else is higher-is-better."
    )
    if scale == "sims":
        rule = (
            "SIMS metrics: predictions and labels are clipped to [-1, 1] and binned by half-open intervals "
            "(lower, upper]. Acc-2 is non-positive vs positive, so a score of exactly 0 counts as "
            "NEGATIVE; Acc-3 edges ±0.1; Acc-5 edges ±0.1, ±0.7; F1 is the weighted F1 of the Acc-2 "
            "classes; MAE and Corr (Pearson) are computed on the clipped values."
        )
    else:
        rule = (
            "MOSEI/MOSI metrics: Acc-7 / Acc-5 clip to [-3, 3] / [-2, 2] and round half to even. "
            "Has0: all clips, score >= 0 is positive (0 counts as positive). Non0: clips with label "
            "exactly 0 are dropped, then score > 0 is positive. F1 is weighted F1. MAE and Corr "
            "(Pearson) are computed on unclipped values."
        )
    return f"{common}\n\n{rule}"


def _metric_header(key: str) -> str:
    return f"{key} ↓" if key in LOWER_IS_BETTER else key


def _stat_cells(stats: pd.DataFrame, keys: list[str]) -> list[tuple[str, int, list[str]]]:
    out = []
    for variant in pd.unique(stats["variant"]):
        part = stats[stats["variant"] == variant].set_index("stat")
        mean, std = part.loc["mean"], part.loc["std"]
        out.append(
            (variant, int(mean["n_seeds"]), [_pm(float(mean[k]), float(std[k])) for k in keys])
        )
    return out


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    return scale


def _read_metrics(path: Path, variant: str, seed: int | str, scale: str | None) -> dict:
    """One per-seed row: `variant`, `seed`, then the numeric top-level keys of `path` (a metrics.json)."""
    if not path.is_file():
        raise UserError(
            f"missing {path}: fine-tuning of variant {variant!r}, seed {seed} has not run. Build it "
            f"with `snakemake --cores 1 {path}` (rule finetune), or drop the variant / seed from the "
            "aggregate call."
        )
    try:
        data = load_json(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read {path} as JSON ({err}); delete it and rerun finetune"
        ) from err
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object of metrics, got {type(data).__name__}")
    missing = [k for k in METRIC_KEYS[_check_scale(scale)] if k not in data] if scale else []
    if missing:
        raise UserError(
            f"{path} lacks metric(s) {', '.join(missing)} of scale {scale!r}; check the dataset's "
            "`scale` in the config, then rerun finetune"
        )
    row: dict = {"variant": variant, "seed": int(seed)}
    for key, value in data.items():
        if key not in ("variant", "seed") and not isinstance(value, bool):
            if isinstance(value, (int, float)) or value is None:
                row[key] = np.nan if value is None else value
    return row


def _read_labels(path: Path) -> np.ndarray:
    """The `label` column of an aligned meta.csv as float64 [N]; UserError on a missing / empty value."""
    try:
        meta = pd.read_csv(path, dtype={"key": str})
    except (OSError, ValueError) as err:
        raise UserError(f"cannot read {path} ({err}); rerun the align stage") from err
    if "label" not in meta.columns:
        raise UserError(f"{path} has no `label` column; rerun the align stage")
    labels = pd.to_numeric(meta["label"], errors="coerce").to_numpy(dtype=np.float64)  # [N]
    bad = np.flatnonzero(~np.isfinite(labels))
    if bad.size:
        raise UserError(
            f"{path} row {bad[0] + 2} (column `label`): empty or non-numeric label "
            f"({bad.size} such row(s)); fix label.csv and rerun the manifest and align stages"
        )
    if labels.size == 0:
        raise UserError(f"{path} holds no clips; check the dataset split")
    return labels


def _plot_sensitivity(
    frame: pd.DataFrame, param: str, scale: str, n_seeds: int, dataset: str, out: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
