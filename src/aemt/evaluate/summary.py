"""Statistics over seeds, as DataFrames: per-seed metrics, mean ± std per variant, paired per-seed
differences against AE-MT with t-intervals, the "predict the train mean" baseline, and λ sweeps.

Inputs are the files `aemt finetune` writes, named explicitly: `finetune/<variant>/<seed>/metrics.json`
(the folder names give the variant and the seed) and the aligned `meta.csv` of the train and test splits.
`summary.csv` holds one row per (variant, seed) plus a `mean` and a `std` row per variant (column `row`),
values as fractions, std = population std (ddof = 0, as MMSA). Rendering (markdown, HTML, plots) is
:mod:`aemt.report`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.constants import METRIC_KEYS, SCALES
from aemt.errors import UserError
from aemt.evaluate.metrics import evaluate
from aemt.io import load_json, save_csv


def run_path(dataset_dir: str | os.PathLike, variant: str, seed: int | str) -> Path:
    """`<dataset_dir>/finetune/<variant>/<seed>/metrics.json`."""
    return Path(dataset_dir) / "finetune" / variant / str(seed) / "metrics.json"


def run_paths(
    dataset_dir: str | os.PathLike, variants: Sequence[str], seeds: Sequence[int | str]
) -> list[Path]:
    """The metrics.json of every (variant, seed), variants outermost."""
    if not variants or not seeds:
        raise UserError("aggregation needs at least one variant and one seed")
    return [run_path(dataset_dir, v, s) for v in variants for s in seeds]


def collect(paths: Sequence[str | os.PathLike], scale: str | None = None) -> pd.DataFrame:
    """One row per metrics.json, in the given order: `variant`, `seed` (int), then every numeric
    top-level key of the file (the metric keys, `best_epoch`, ...).

    The run folder names the variant and the seed (`finetune/<variant>/<seed>/metrics.json`). When
    `scale` is given, each file must hold all `METRIC_KEYS[scale]`. A missing or unreadable file raises
    a UserError naming the path and the Snakemake target that builds it.
    """
    if not paths:
        raise UserError("aggregation needs at least one metrics.json")
    return pd.DataFrame([_read_metrics(Path(p), scale) for p in paths])


def with_validation(per_seed: pd.DataFrame, paths: Sequence[str | os.PathLike], scale: str):
    """`per_seed` plus `valid_<metric>` columns from each run's `metrics.json["valid"]` (NaN if absent)."""
    rows = []
    for path in paths:
        data = load_json(path)
        valid = data.get("valid") if isinstance(data.get("valid"), dict) else {}
        rows.append({f"valid_{k}": float(valid.get(k, np.nan)) for k in METRIC_KEYS[scale]})
    return pd.concat([per_seed, pd.DataFrame(rows, index=per_seed.index)], axis=1)


def read_runs(paths: Sequence[str | os.PathLike], scale: str) -> pd.DataFrame:
    """Per-seed test metrics of the given metrics.json files, plus their `valid_<metric>` columns."""
    return with_validation(collect(paths, scale), paths, scale)


def summarise(df: pd.DataFrame, scale: str) -> pd.DataFrame:
    """Mean and population std (ddof = 0) of the scale's metrics per variant.

    Returns columns `variant`, `stat` ("mean" / "std"), `n_seeds`, then `METRIC_KEYS[scale]`: two rows
    per variant, variants in order of first appearance. NaN in any seed propagates to mean and std.
    """
    keys = list(METRIC_KEYS[check_scale(scale)])
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


# Metrics compared pair-wise against the reference variant (Acc-2 / F1 of MOSEI: the Has0 ones, as the
# paper reports them).
PAIRED_KEYS = {
    "sims": ("MAE", "Corr", "Acc-2", "F1"),
    "mosei": ("MAE", "Corr", "Has0_Acc-2", "Has0_F1"),
}


def paired_differences(
    per_seed: pd.DataFrame, scale: str, reference: str = "aemt", level: float = 0.95
) -> pd.DataFrame:
    """Per variant and metric: the mean over seeds of (variant - reference) on the same seed, with a
    t-interval over those per-seed differences (Student's t, n - 1 degrees of freedom).

    Columns `variant, metric, n_pairs, mean, low, high, excludes_zero`. Pairs are the seeds both ran;
    with fewer than two pairs the interval is NaN (no spread to estimate). Empty when the reference
    variant is absent. Seeds of the same seed number share the pretraining run and the data order, so
    the pairing removes that part of the seed noise.
    """
    from scipy import stats

    columns = ["variant", "metric", "n_pairs", "mean", "low", "high", "excludes_zero"]
    if reference not in set(per_seed["variant"]):
        return pd.DataFrame(columns=columns)
    keys = PAIRED_KEYS[check_scale(scale)]
    ref = per_seed[per_seed["variant"] == reference].set_index("seed")
    rows = []
    for variant in pd.unique(per_seed["variant"]):
        if variant == reference:
            continue
        other = per_seed[per_seed["variant"] == variant].set_index("seed")
        seeds = [s for s in other.index if s in ref.index]
        for key in keys:
            diff = (other.loc[seeds, key] - ref.loc[seeds, key]).to_numpy(dtype=np.float64)  # [n]
            n, mean = len(diff), float(np.mean(diff)) if len(diff) else np.nan
            low = high = np.nan
            if n >= 2:
                half = stats.t.ppf(0.5 + level / 2, n - 1) * np.std(diff, ddof=1) / np.sqrt(n)
                low, high = mean - half, mean + half
            excludes = bool(np.isfinite(low) and (low > 0 or high < 0))
            rows.append([variant, key, n, mean, low, high, excludes])
    return pd.DataFrame(rows, columns=columns)


def summary_frame(per_seed: pd.DataFrame, stats: pd.DataFrame, scale: str) -> pd.DataFrame:
    """The content of summary.csv: per-seed rows (`row` = "seed") then the mean / std rows."""
    keys = list(METRIC_KEYS[scale])
    extra = [c for c in per_seed.columns if c not in ("variant", "seed", *keys)]
    extra = [c for c in extra if not c.startswith("valid_")]
    seed_rows = per_seed.assign(row="seed")[["variant", "row", "seed", *keys, *extra]]
    stat_rows = stats.rename(columns={"stat": "row"}).drop(columns="n_seeds")
    frame = pd.concat([seed_rows, stat_rows], ignore_index=True)
    for col in ["seed", *(c for c in extra if pd.api.types.is_integer_dtype(per_seed[c]))]:
        frame[col] = frame[col].astype("Int64")  # integers stay integers; empty in mean / std rows
    return frame


def write_summary_csv(path: str | os.PathLike, per_seed: pd.DataFrame, scale: str) -> Path:
    save_csv(path, summary_frame(per_seed, summarise(per_seed, scale), scale))
    return Path(path)


def train_mean_baseline(
    train_meta: str | os.PathLike, test_meta: str | os.PathLike, scale: str
) -> dict[str, float] | None:
    """Metrics of predicting the mean train label for every test clip; None when a file is missing.

    Reads column `label` of the aligned train and test `meta.csv`. The returned dict holds the metric keys
    plus `train_mean`, `n_train`, `n_test`. Corr of this constant predictor is reported as 0.0.
    """
    paths = [Path(train_meta), Path(test_meta)]
    if not all(p.is_file() for p in paths):
        return None
    train, test = (_read_labels(p) for p in paths)
    mean = float(np.mean(train))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # Corr of a constant is 0 by design here
        result = evaluate(np.full_like(test, mean), test, scale)
    return {**result, "train_mean": mean, "n_train": float(train.size), "n_test": float(test.size)}


def sensitivity_frame(per_seed: pd.DataFrame, param: str, prefix: str, scale: str) -> pd.DataFrame:
    """Metrics vs a loss weight: one row per value (sorted) of the runs `<prefix><value>`.

    Columns `param, value, variant, n_seeds` and `<metric>_mean`, `<metric>_std` (fractions, ddof = 0).
    """
    keys = METRIC_KEYS[check_scale(scale)]
    variants = list(pd.unique(per_seed["variant"]))
    strange = [v for v in variants if not v.startswith(prefix)]
    if strange:
        raise UserError(f"sensitivity runs must be named {prefix}<value>; got {strange}")
    try:
        values = {v: float(v[len(prefix) :]) for v in variants}
    except ValueError as err:
        raise UserError(f"sensitivity run names must end in a number after {prefix!r}") from err
    variants.sort(key=values.__getitem__)
    stats = summarise(per_seed, scale)
    mean = stats[stats["stat"] == "mean"].set_index("variant").loc[variants]
    std = stats[stats["stat"] == "std"].set_index("variant").loc[variants]
    frame = pd.DataFrame(
        {
            "param": param,
            "value": [values[v] for v in variants],
            "variant": variants,
            "n_seeds": mean["n_seeds"].to_numpy(),
        }
    )
    for key in keys:
        frame[f"{key}_mean"] = mean[key].to_numpy()
        frame[f"{key}_std"] = std[key].to_numpy()
    return frame


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise UserError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    return scale


def _read_metrics(path: Path, scale: str | None) -> dict:
    """One per-seed row: `variant`, `seed`, then the numeric top-level keys of `path` (a metrics.json)."""
    variant, seed = path.parent.parent.name, path.parent.name
    if not path.is_file():
        raise UserError(
            f"missing {path}: fine-tuning of variant {variant!r}, seed {seed} has not run. Build it "
            f"with `snakemake --cores 1 {path}` (rule finetune), or drop the variant / seed from the "
            "aggregation."
        )
    if not seed.isdigit():
        raise UserError(
            f"{path}: expected finetune/<variant>/<seed>/metrics.json with a numeric seed"
        )
    try:
        data = load_json(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read {path} as JSON ({err}); delete it and rerun finetune"
        ) from err
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a JSON object of metrics, got {type(data).__name__}")
    missing = [k for k in METRIC_KEYS[check_scale(scale)] if k not in data] if scale else []
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
