"""The result tables, each computed once as a DataFrame of display strings (values ×100) and rendered to
markdown (:mod:`aemt.report.markdown`: summary.md, ablation.md) and HTML (:mod:`aemt.report.results`).

Inputs are the per-seed rows of :func:`aemt.evaluate.summary.collect` (optionally with the `valid_*`
columns of :func:`aemt.evaluate.summary.with_validation`) and the train-mean baseline.
"""

from __future__ import annotations

import math

import pandas as pd

from aemt.constants import LOWER_IS_BETTER, METRIC_KEYS
from aemt.evaluate.summary import summarise
from aemt.experiments import VARIANT_INFO, VARIANT_LABELS

BASELINE_LABEL = "Predict train mean"
BEST_MARK = "★"
PARAM_SYMBOLS = {"lambda1": "λ1", "lambda2": "λ2"}


def fmt100(value: float) -> str:
    """A fraction shown x100 with two decimals (MMSA's table convention); NaN -> 'n/a'."""
    return "n/a" if not math.isfinite(value) else f"{100.0 * value:.2f}"


def pm(mean: float, std: float) -> str:
    """`mean ± std`, both x100."""
    return "n/a" if not math.isfinite(mean) else f"{fmt100(mean)} ± {fmt100(std)}"


def metric_header(key: str) -> str:
    return f"{key} ↓" if key in LOWER_IS_BETTER else key


def variant_label(variant: str) -> str:
    return VARIANT_LABELS.get(variant, variant)


def paper_order(variants: list[str]) -> list[str]:
    """Known variants in the order of the paper's ablation table, then the others as given."""
    return [v for v in VARIANT_LABELS if v in variants] + [
        v for v in variants if v not in VARIANT_LABELS
    ]


def mean_std_table(runs: pd.DataFrame, scale: str, best: str | None = None) -> pd.DataFrame:
    """One row per variant: Variant (★ = `best`), Model, Seeds, mean ± std of each metric, and the
    validation MAE that selects the best variant when the runs carry it."""
    keys = METRIC_KEYS[scale]
    stats = summarise(runs, scale)
    has_valid = "valid_MAE" in runs.columns
    valid = runs.groupby("variant", sort=False)["valid_MAE"] if has_valid else None
    rows = []
    for variant in pd.unique(stats["variant"]):
        part = stats[stats["variant"] == variant].set_index("stat")
        mean, std = part.loc["mean"], part.loc["std"]
        row = {
            "Variant": variant + (f" {BEST_MARK}" if variant == best else ""),
            "Model": variant_label(variant),
            "Seeds": int(mean["n_seeds"]),
            **{metric_header(k): pm(float(mean[k]), float(std[k])) for k in keys},
        }
        if valid is not None:
            v_mean, v_std = valid.mean()[variant], valid.std(ddof=0)[variant]
            row["Valid MAE ↓ (selection)"] = pm(float(v_mean), float(v_std))
        rows.append(row)
    return pd.DataFrame(rows)


def per_seed_table(runs: pd.DataFrame, scale: str) -> pd.DataFrame:
    """One row per (variant, seed): each metric, and when known the validation MAE and the epochs."""
    keys = METRIC_KEYS[scale]
    table = pd.DataFrame(
        {
            "Variant": runs["variant"],
            "Seed": runs["seed"].astype(int),
            **{metric_header(k): [fmt100(float(v)) for v in runs[k]] for k in keys},
        }
    )
    if "valid_MAE" in runs.columns:
        table["Valid MAE ↓"] = [fmt100(float(v)) for v in runs["valid_MAE"]]
    for name, col in (("Best epoch", "best_epoch"), ("Epochs run", "epochs_run")):
        if col in runs.columns:
            table[name] = runs[col].astype("Int64")
    return table


def ablation_table(
    runs: pd.DataFrame, scale: str, baseline: dict[str, float] | None
) -> pd.DataFrame:
    """Paper-style ablation rows (AE-MT, w/o CL, ...; other variants after; the baseline last), x100."""
    keys = METRIC_KEYS[scale]
    stats = summarise(runs, scale)
    rows = []
    for variant in paper_order(list(pd.unique(stats["variant"]))):
        part = stats[stats["variant"] == variant].set_index("stat")
        cells = {metric_header(k): pm(part.at["mean", k], part.at["std", k]) for k in keys}
        removes = VARIANT_INFO[variant][1] if variant in VARIANT_INFO else f"(variant {variant})"
        rows.append({"Model": variant_label(variant), "Removes": removes, **cells})
    if baseline is not None:
        cells = {metric_header(k): fmt100(float(baseline[k])) for k in keys}
        rows.append({"Model": BASELINE_LABEL, "Removes": "every input (no model)", **cells})
    return pd.DataFrame(rows)


def paired_table(diffs: pd.DataFrame, reference: str = "aemt") -> pd.DataFrame:
    """One row per variant: Δ (variant - reference) of each paired metric, mean [95% CI], x100; a `*`
    marks a difference whose interval excludes 0 (from `evaluate.summary.paired_differences`)."""
    rows = []
    for variant in pd.unique(diffs["variant"]):
        part = diffs[diffs["variant"] == variant].set_index("metric")
        row = {"Variant": variant, "Model": variant_label(variant)}
        row["Pairs"] = int(part["n_pairs"].iloc[0])
        for key, d in part.iterrows():
            interval = (
                f" [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]"
                if math.isfinite(d["low"])
                else ""
            )
            mark = " *" if d["excludes_zero"] else ""
            row[f"Δ {metric_header(key)}"] = f"{100 * d['mean']:+.2f}{interval}{mark}"
        rows.append(row)
    return pd.DataFrame(rows)


def paired_note(reference: str = "aemt", level: float = 0.95) -> str:
    return (
        f"Paired differences: for each seed, the variant's test metric minus {reference}'s on the same "
        f"seed (same data order, same pretraining seed); mean over seeds and a {level:.0%} Student-t "
        "interval over the per-seed differences (n - 1 degrees of freedom; none with one seed). * marks "
        "a difference whose interval excludes 0. For MAE (↓) a positive Δ means worse than "
        f"{reference}. With few seeds and small test sets the intervals are wide: a gap inside them is "
        "seed noise, not evidence that one variant is better."
    )


def baseline_note(baseline: dict[str, float] | None) -> str:
    if baseline is None:
        return ""
    return (
        f"{BASELINE_LABEL}: every test clip is predicted as the mean train label "
        f"({baseline['train_mean']:.4f}); it has no seeds, and the Pearson correlation of a constant "
        "prediction is undefined (shown as 0)."
    )


def sensitivity_table(frame: pd.DataFrame, param: str, scale: str) -> pd.DataFrame:
    """One row per swept value: mean ± std of each metric (from `evaluate.summary.sensitivity_frame`)."""
    keys = METRIC_KEYS[scale]
    rows = [
        {
            PARAM_SYMBOLS.get(param, param): format(value, "g"),
            **{
                metric_header(k): pm(frame.at[i, f"{k}_mean"], frame.at[i, f"{k}_std"])
                for k in keys
            },
        }
        for i, value in enumerate(frame["value"])
    ]
    return pd.DataFrame(rows)


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
