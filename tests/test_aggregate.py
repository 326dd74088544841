"""Tests for `aemt.evaluate.summary` and `aemt aggregate`: seed statistics, summary files, sensitivity plot."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from aemt.commands import aggregate as aggregate_cmd
from aemt.errors import UserError
from aemt.evaluate.summary import (
    collect,
    paired_differences,
    run_paths,
    sensitivity_frame,
    summarise,
    train_mean_baseline,
    with_validation,
    write_summary_csv,
)
from aemt.report.markdown import write_summary_markdown

SIMS_KEYS = ["Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"]


def _sims(acc2: float, mae: float = 0.3) -> dict[str, float]:
    return {"Acc-2": acc2, "Acc-3": 0.6, "Acc-5": 0.4, "F1": acc2, "MAE": mae, "Corr": 0.5}


def _write(ds: Path, variant: str, seed: int, metrics: dict, **extra) -> Path:
    path = ds / "finetune" / variant / str(seed) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {**metrics, "variant": variant, "seed": seed, "best_epoch": 3, "hparams": {"lr": 5e-4}}
    path.write_text(json.dumps({**data, **extra}))
    return path


def _meta(ds: Path, split: str, labels: list[float]) -> None:
    path = ds / "aligned" / split / "meta.csv"
    path.parent.mkdir(parents=True)
    keys = [f"v/{i:03d}" for i in range(len(labels))]
    pd.DataFrame({"key": keys, "split": split, "label": labels}).to_csv(path, index=False)


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    ds = tmp_path / "demo"
    _write(ds, "aemt", 1111, _sims(0.7, mae=0.30))
    _write(ds, "aemt", 1112, _sims(0.9, mae=0.20))
    _write(ds, "mult", 1111, _sims(0.6))
    _write(ds, "mult", 1112, _sims(0.6))
    _write(ds, "my_variant", 1111, _sims(0.5))
    _write(ds, "my_variant", 1112, _sims(0.55))
    return ds


def _baseline(ds: Path):
    return train_mean_baseline(ds / "aligned/train/meta.csv", ds / "aligned/test/meta.csv", "sims")


def write_summary(ds: Path, variants: list[str], seeds: list[int], scale: str, baseline=None):
    """What `aemt aggregate` writes: summary.csv (evaluate) and the markdown files (report)."""
    paths = run_paths(ds, variants, seeds)
    runs = with_validation(collect(paths, scale), paths, scale)
    write_summary_csv(ds / "summary.csv", runs, scale)
    md = write_summary_markdown(
        runs, scale, seeds, baseline, ds / "summary.md", ds / "ablation.md", ds.name
    )
    return md, ds / "summary.csv"


def test_collect_rows_and_columns(ds: Path):
    df = collect(run_paths(ds, ["aemt", "mult"], [1111, 1112]))
    assert list(df["variant"]) == ["aemt", "aemt", "mult", "mult"]
    assert list(df["seed"]) == [1111, 1112, 1111, 1112]
    assert list(df["Acc-2"]) == [0.7, 0.9, 0.6, 0.6]
    assert "best_epoch" in df.columns and "hparams" not in df.columns


def test_summarise_population_std(ds: Path):
    stats = summarise(collect(run_paths(ds, ["aemt", "mult"], [1111, 1112])), "sims")
    assert list(stats.columns) == ["variant", "stat", "n_seeds", *SIMS_KEYS]
    row = stats.set_index(["variant", "stat"])
    # Acc-2 seeds 0.7 and 0.9: mean 0.8; ddof=0 std 0.1 (ddof=1 would be 0.1414)
    assert row.at[("aemt", "mean"), "Acc-2"] == pytest.approx(0.8)
    assert row.at[("aemt", "std"), "Acc-2"] == pytest.approx(0.1)
    assert row.at[("aemt", "mean"), "MAE"] == pytest.approx(0.25)
    assert row.at[("aemt", "std"), "MAE"] == pytest.approx(0.05)
    assert row.at[("mult", "std"), "Acc-2"] == 0.0
    assert row.at[("mult", "mean"), "n_seeds"] == 2


def test_missing_metrics_json_names_path_and_target(ds: Path):
    with pytest.raises(UserError) as err:
        collect(run_paths(ds, ["aemt", "aemt_wo_cl"], [1111]))
    msg = str(err.value)
    assert str(ds / "finetune" / "aemt_wo_cl" / "1111" / "metrics.json") in msg
    assert "snakemake" in msg


def test_metrics_json_of_wrong_scale_is_an_error(ds: Path):
    with pytest.raises(UserError, match="Has0_Acc-2"):
        collect(run_paths(ds, ["aemt"], [1111]), scale="mosei")


def test_write_summary_files(ds: Path, capsys):
    _meta(ds, "train", [0.2, 0.4, 0.6])
    _meta(ds, "test", [0.0, 1.0, -0.6, 0.8])
    out, summary_csv = write_summary(
        ds, ["mult", "my_variant", "aemt"], [1111, 1112], "sims", _baseline(ds)
    )

    csv = pd.read_csv(summary_csv)
    assert list(csv.columns[:3]) == ["variant", "row", "seed"]
    assert len(csv) == 3 * 2 + 3 * 2
    assert list(csv["row"]).count("seed") == 6
    mean = csv[(csv["variant"] == "aemt") & (csv["row"] == "mean")].iloc[0]
    std = csv[(csv["variant"] == "aemt") & (csv["row"] == "std")].iloc[0]
    assert mean["Acc-2"] == pytest.approx(0.8) and std["Acc-2"] == pytest.approx(0.1)  # fractions
    assert pd.isna(mean["seed"])
    seeds = csv[(csv["variant"] == "aemt") & (csv["row"] == "seed")]
    assert list(seeds["seed"]) == [1111, 1112] and list(seeds["best_epoch"]) == [3, 3]

    md = out.summary_md.read_text()
    assert "| aemt | AE-MT | 2 | 80.00 ± 10.00 | 60.00 ± 0.00 |" in md  # x100, ddof=0
    assert "| aemt | 1112 | 90.00 | 60.00 | 40.00 | 90.00 | 20.00 | 50.00 |" in md
    assert "ddof = 0" in md and "NEGATIVE" in md and "×100" in md
    assert out.table in md

    ab = out.ablation_md.read_text()
    first = ab[: ab.index("### Paired differences")].splitlines()
    rows = [line for line in first if line.startswith("| ") and ":--" not in line]
    assert [r.split(" | ")[0] for r in rows] == [
        "| Model",
        "| AE-MT",
        "| MulT",
        "| my_variant",
        "| Predict train mean",
    ]
    assert (
        rows[1].startswith("| AE-MT | nothing: the full method") and "| 80.00 ± 10.00 |" in rows[1]
    )
    assert "per-modality encoders, pretraining and the contrastive loss" in rows[2]
    # train mean 0.4 on test labels [0, 1, -0.6, 0.8]: Acc-2 2/4, Acc-3 2/4, Acc-5 0/4,
    # F1 (2*(2/3) + 2*0)/4 = 1/3, MAE (0.4+0.6+1.0+0.4)/4 = 0.6, Corr of a constant = 0
    assert rows[4].endswith("| 50.00 | 50.00 | 0.00 | 33.33 | 60.00 | 0.00 |")
    assert "0.4000" in ab
    # paired differences against aemt, x100: MAE 0.3 - (0.3, 0.2) = (0, 0.1): mean +5.00,
    # t(0.975, 1) = 12.706, sd 0.0707 / sqrt(2) -> half-width 63.53; Acc-2 (-0.1, -0.3): -20.00
    assert "| mult | MulT | 2 | +5.00 [-58.53, +68.53] | +0.00 [+0.00, +0.00] |" in md
    assert "-20.00 [-147.06, +107.06]" in md and "seed noise" in md


def test_paired_differences_t_interval(ds: Path):
    for seed, acc in ((1113, 0.8), (1114, 0.85)):
        _write(ds, "aemt", seed, _sims(acc, mae=0.25))
        _write(ds, "mult", seed, _sims(acc - 0.3))
    runs = collect(run_paths(ds, ["aemt", "mult"], [1111, 1112, 1113, 1114]), "sims")
    diffs = paired_differences(runs, "sims").set_index(["variant", "metric"])
    acc = diffs.loc[("mult", "Acc-2")]  # differences -0.1, -0.3, -0.3, -0.3
    assert acc["n_pairs"] == 4 and acc["mean"] == pytest.approx(-0.25)
    half = 3.182446 * 0.1 / 2  # t(0.975, 3) * sd(ddof=1) / sqrt(4)
    assert acc["low"] == pytest.approx(-0.25 - half, rel=1e-5) and acc["excludes_zero"]
    corr = diffs.loc[("mult", "Corr")]  # identical Corr: difference exactly 0
    assert corr["mean"] == 0.0 and not corr["excludes_zero"]
    assert set(diffs.index.get_level_values("metric")) == {"MAE", "Corr", "Acc-2", "F1"}
    one = paired_differences(runs[runs["seed"] == 1111], "sims")
    assert one["low"].isna().all() and not one["excludes_zero"].any()  # one seed: no interval
    assert paired_differences(runs[runs["variant"] == "mult"], "sims").empty  # no reference


def test_baseline_absent_without_meta_and_bad_label(ds: Path):
    assert _baseline(ds) is None
    _meta(ds, "train", [0.2, float("nan"), 0.6])
    _meta(ds, "test", [0.0])
    with pytest.raises(UserError, match="row 3"):
        _baseline(ds)


def test_ablation_without_baseline_has_no_baseline_row(ds: Path):
    out, _ = write_summary(ds, ["aemt"], [1111], "sims")
    assert "Predict train mean" not in out.ablation_md.read_text()


def test_sensitivity_csv_and_png(tmp_path: Path, capsys):
    ds = tmp_path / "demo"
    for value, accs in (("0", (0.6, 0.7)), ("0.4", (0.8, 0.9)), ("1.5", (0.7, 0.7))):
        for seed, acc in zip((1111, 1112), accs, strict=True):
            _write(ds, f"sens_l1_{value}", seed, _sims(acc))
    runs = run_paths(ds, ["sens_l1_0.4", "sens_l1_0", "sens_l1_1.5"], [1111, 1112])
    frame = sensitivity_frame(collect(runs, "sims"), "lambda1", "sens_l1_", "sims")
    assert list(frame["value"]) == [0.0, 0.4, 1.5]
    assert list(frame["variant"]) == ["sens_l1_0", "sens_l1_0.4", "sens_l1_1.5"]
    assert frame["Acc-2_mean"].tolist() == pytest.approx([0.65, 0.85, 0.7])
    assert frame["Acc-2_std"].tolist() == pytest.approx([0.05, 0.05, 0.0])
    assert set(frame["param"]) == {"lambda1"}
    args = _parse(
        ["aggregate", "--sensitivity", "lambda1", "--prefix", "sens_l1_", "--scale", "sims"]
        + ["--out-dir", str(ds), "--metrics", *map(str, runs)]
    )
    assert args.handler(args) == 0
    assert "85.00 ± 5.00" in capsys.readouterr().out
    assert pd.read_csv(ds / "sensitivity_lambda1.csv").equals(frame)
    png = ds / "sensitivity_lambda1.png"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    image = mpimg.imread(png)
    assert image.shape[0] > 100 and image.shape[1] > 100


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    aggregate_cmd.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_summary_and_sensitivity(ds: Path, capsys):
    args = _parse(
        ["aggregate", "--dataset-dir", str(ds), "--variants", "aemt,mult", "--seeds", "1111,1112"]
        + ["--scale", "sims"]
    )
    assert args.handler(args) == 0
    printed = capsys.readouterr().out
    assert "| aemt | AE-MT | 2 | 80.00 ± 10.00 |" in printed
    assert (ds / "summary.csv").is_file() and (ds / "ablation.md").is_file()

    _write(ds, "sens_l2_1", 1111, _sims(0.75))
    _write(ds, "sens_l2_0.5", 1111, _sims(0.7))
    args = _parse(
        ["aggregate", "--dataset-dir", str(ds), "--sensitivity", "lambda2", "--scale", "sims"]
        + ["--variants", "sens_l2_0.5,sens_l2_1", "--prefix", "sens_l2_", "--seeds", "1111"]
    )
    assert args.handler(args) == 0
    assert (ds / "sensitivity_lambda2.png").is_file()
    assert "75.00 ± 0.00" in capsys.readouterr().out


def test_cli_bad_input(ds: Path):
    args = _parse(
        ["aggregate", "--dataset-dir", str(ds), "--variants", "aemt", "--seeds", "11x1"]
        + ["--scale", "sims"]
    )
    with pytest.raises(UserError, match="11x1"):
        args.handler(args)
    args = _parse(["aggregate", "--dataset-dir", str(ds), "--seeds", "1111", "--scale", "sims"])
    with pytest.raises(UserError, match="--variants"):
        args.handler(args)
    args = _parse(["aggregate", "--scale", "sims"])
    with pytest.raises(UserError, match="--metrics FILE"):
        args.handler(args)
