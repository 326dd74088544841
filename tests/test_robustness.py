"""Robustness to missing modalities: the protocols on real fine-tuned checkpoints (rate 0 = metrics.json
exactly, fixed nested masks, absent modalities), the areas under the metric-vs-rate curves, the markdown and
HTML tables, the plot, and the `aemt robustness` / `aemt report robustness` commands."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
import torch

from aemt import cli
from aemt.constants import METRIC_KEYS, MODALITIES
from aemt.errors import UserError
from aemt.evaluate import robustness as rb
from aemt.evaluate import robustness_run as run
from aemt.report.robustness import absence_table, area_table
from aemt.train.finetune import run_finetune
from aemt.train.splits import load_split
from tests._train_helpers import hparams, write_aligned

SMALL = {"train": 16, "valid": 8, "test": 12, "unlabeled": 4}
CFG = run.RobustnessConfig(mask_seeds=(1111, 1112))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """results/<ds>/ with aligned/ and finetune/{aemt,aemt_md}/1111/ (real tiny fine-tuning runs)."""
    ds = tmp_path_factory.mktemp("results") / "tiny"
    write_aligned(ds / "aligned", sizes=SMALL)
    for variant, p in (("aemt", 0.0), ("aemt_md", 0.5)):
        hp = hparams("finetune", epochs=2, modality_dropout=p)
        run_finetune(
            ds / "aligned", ds / "finetune" / variant / "1111", hp, None, "sims", variant, 1111, 1
        )
    return ds


def _model(ds: Path, variant: str = "aemt") -> Path:
    return ds / "finetune" / variant / "1111" / "model.pt"


def test_rate_zero_reproduces_the_runs_test_metrics_exactly(runs: Path, capsys):
    frame = run.evaluate_checkpoints(
        [_model(runs), _model(runs, "aemt_md")], runs / "aligned", CFG, 1
    )
    assert list(frame.columns) == [*rb.HEAD, *METRIC_KEYS["sims"]]
    assert len(frame) == 2 * rb.N_PROTOCOLS
    for variant in ("aemt", "aemt_md"):
        part = frame[frame["variant"] == variant]
        assert part["protocol"].tolist() == ["random"] * 11 + [
            "without_text", "without_audio", "without_vision",
            "without_text_audio", "without_text_vision", "without_audio_vision",
        ]  # fmt: skip
        assert part["rate"].tolist()[:11] == list(rb.RATES) and set(part["rate"][11:]) == {1.0}
        recorded = json.loads((_model(runs, variant).with_name("metrics.json")).read_text())
        clean = part.iloc[0]
        assert all(clean[k] == recorded[k] for k in METRIC_KEYS["sims"])  # exactly, not approx
        # every input gone: one constant prediction for every clip, so Corr is 0
        assert part.iloc[10]["Corr"] == 0.0 and part.iloc[10]["MAE"] != clean["MAE"]
    assert "warning" not in capsys.readouterr().err
    again = run.evaluate_checkpoints([_model(runs)], runs / "aligned", CFG, 1)
    pd.testing.assert_frame_equal(again, frame.iloc[: rb.N_PROTOCOLS].reset_index(drop=True))


def test_a_changed_batch_size_is_reported_when_rate_zero_differs(runs: Path, capsys, tmp_path):
    metrics = json.loads(_model(runs).with_name("metrics.json").read_text())
    fake = tmp_path / "finetune" / "aemt" / "1111"
    fake.mkdir(parents=True)
    (fake / "model.pt").write_bytes(_model(runs).read_bytes())
    (fake / "metrics.json").write_text(json.dumps({**metrics, "MAE": metrics["MAE"] + 0.01}))
    run.evaluate_checkpoints([fake / "model.pt"], runs / "aligned", CFG, 1)
    err = capsys.readouterr().err
    assert "rate-0 MAE" in err and "differs from the run's" in err


def test_masks_are_fixed_nested_and_the_same_for_every_model(runs: Path):
    masks = load_split(runs / "aligned", "test").masks
    first = list(run.protocol_drops(masks, (1111, 1112)))
    second = list(run.protocol_drops(masks, (1111, 1112)))
    assert [(p, r) for p, r, _ in first] == [(p, r) for p, r, _ in second]
    for (_, _, a), (_, _, b) in zip(first, second, strict=True):
        assert all(np.array_equal(x[m], y[m]) for x, y in zip(a, b, strict=True) for m in x)
    random = {rate: draws for p, rate, draws in first if p == rb.RANDOM}
    assert random[0.0] == [{}]  # rate 0 leaves the inputs untouched
    for low, high in zip(rb.RATES[1:-1], rb.RATES[2:], strict=True):
        for d_low, d_high in zip(random[low], random[high], strict=True):
            assert all((d_high[m] | ~d_low[m]).all() for m in MODALITIES)  # nested
    assert all(random[1.0][0][m].all() for m in MODALITIES)
    big = {m: np.ones((400, 50), dtype=bool) for m in MODALITIES}
    drawn = {rate: draws for p, rate, draws in run.protocol_drops(big, (7,)) if p == rb.RANDOM}
    for rate in (0.1, 0.5, 0.9):
        assert drawn[rate][0]["audio"].mean() == pytest.approx(rate, abs=0.01)
    other = {r: d for p, r, d in run.protocol_drops(big, (8,)) if p == rb.RANDOM}
    assert not np.array_equal(other[0.5][0]["text"], drawn[0.5][0]["text"])
    absent = {p: draws[0] for p, _, draws in first if p != rb.RANDOM}
    assert set(absent["without_text_audio"]) == {"text", "audio"}
    assert all(d.all() for d in absent["without_vision"].values())


def test_another_datasets_features_are_refused(runs: Path, tmp_path: Path):
    other = write_aligned(tmp_path / "aligned", sizes=SMALL)
    info = json.loads((other / "test" / "info.json").read_text())
    (other / "test" / "info.json").write_text(json.dumps({**info, "audio_feature_set": "ComParE"}))
    with pytest.raises(UserError, match="trained on other features.*audio_feature_set"):
        run.evaluate_checkpoints([_model(runs)], other, CFG, 1)
    with pytest.raises(UserError, match="at least one mask seed"):
        run.RobustnessConfig(mask_seeds=())


def synthetic(scale: str = "sims", seeds=(1111, 1112)) -> pd.DataFrame:
    """Known curves: MAE = base + slope * rate, every other metric = 0.8 - 0.3 * rate (+ seed offset)."""
    rows = []
    for variant, base, slope in (("aemt", 0.30, 0.40), ("aemt_md", 0.32, 0.20)):
        for k, seed in enumerate(seeds):
            protocols = [(rb.RANDOM, r) for r in rb.RATES]
            protocols += [(rb.absent_protocol(a), 1.0) for a in rb.ABSENT]
            for i, (protocol, rate) in enumerate(protocols):
                x = rate if protocol == rb.RANDOM else 0.05 * i
                values = {key: 0.8 - 0.3 * x + 0.01 * k for key in METRIC_KEYS[scale]}
                values["MAE"] = base + slope * x + 0.01 * k
                rows.append({"variant": variant, "seed": seed, "protocol": protocol, "rate": rate})
                rows[-1].update(values)
    return pd.DataFrame(rows)


def test_areas_are_trapezoids_over_the_rates():
    frame = synthetic()
    area = rb.areas(frame, "sims").set_index(["variant", "seed"])
    # the area of a linear curve over [0, 1] is its value at 0.5
    assert area.at[("aemt", 1111), "MAE"] == pytest.approx(0.30 + 0.40 * 0.5)
    assert area.at[("aemt_md", 1112), "MAE"] == pytest.approx(0.32 + 0.20 * 0.5 + 0.01)
    assert area.at[("aemt", 1112), "Acc-2"] == pytest.approx(0.8 - 0.15 + 0.01)
    table = area_table(frame, "sims").set_index("Variant")
    assert table.at["aemt", "MAE ↓ area"] == "50.50 ± 0.50"  # mean over seeds 0.50, 0.51
    assert table.at["aemt_md", "MAE ↓ at rate 0"] == "32.50 ± 0.50"
    assert table.at["aemt", "F1 area"] == "65.50 ± 0.50" and table.at["aemt", "Seeds"] == 2
    assert table.at["aemt_md", "Model"] == "AE-MT + modality dropout"
    absent = absence_table(frame, "MAE").set_index("Variant")
    assert list(absent.columns) == ["Model", "complete", "−text", "−audio", "−vision"] + [
        "−text −audio", "−text −vision", "−audio −vision"
    ]  # fmt: skip
    assert absent.at["aemt", "−text"] == "52.50 ± 0.50"  # 0.30 + 0.40 * 0.05 * 11, seeds +0, +0.01


def test_mosei_uses_the_non0_accuracy_and_f1():
    table = area_table(synthetic("mosei"), "mosei")
    assert {"Non0_Acc-2 area", "Non0_F1 area", "MAE ↓ area"} <= set(table.columns)
    assert not [c for c in table.columns if c.startswith("Has0")]


def test_summary_and_report_commands(tmp_path: Path, capsys):
    frame = synthetic()
    runs = []
    for (variant, seed), part in frame.groupby(["variant", "seed"]):
        path = tmp_path / "robustness" / variant / f"{seed}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_csv(path, index=False)
        runs.append(path)
    out = tmp_path / "tiny"
    argv = ["report", "robustness-tables", "--runs", *map(str, runs), "--scale", "sims"]
    assert cli.main([*argv, "--out-dir", str(out), "--mask-seeds", "1111,1112"]) == 0
    printed = capsys.readouterr().out
    assert "| aemt_md | AE-MT + modality dropout | 2 |" in printed
    stacked = pd.read_csv(out / "robustness.csv")
    assert list(stacked.columns[:4]) == list(rb.HEAD) and len(stacked) == 4 * rb.N_PROTOCOLS
    md = (out / "robustness.md").read_text()
    assert md.startswith("# Robustness to missing modalities: tiny (scale: sims)")
    assert "MAE ↓ area" in md and "−audio −vision" in md and "mask seeds 1111, 1112" in md
    report = tmp_path / "report"
    argv = ["report", "robustness", "--csv", str(out / "robustness.csv"), "--scale", "sims"]
    assert cli.main([*argv, "--out-dir", str(report), "--dataset", "tiny"]) == 0
    html = (report / "robustness.html").read_text()
    assert "<table" in html and "Whole modalities absent: Acc-2" in html and "ddof = 0" in html
    image = mpimg.imread(report / "robustness.png")  # [H, W, 4]
    assert image.shape[1] > image.shape[0] > 200 and image[..., :3].std() > 0.05
    # a per-run table without every rate is refused, naming the file
    runs[0].write_text(pd.read_csv(runs[0]).drop(index=4).to_csv(index=False))
    with pytest.raises(UserError, match=f"{runs[0]}: run .* lacks protocol rows"):
        rb.read_tables(runs, "sims")
    with pytest.raises(UserError, match="lacks column.*Non0_F1"):
        rb.read_tables(runs[1:], "mosei")


def test_run_command_writes_the_csv(runs: Path, tmp_path: Path):
    out = tmp_path / "r" / "aemt" / "1111.csv"
    argv = ["robustness", "--model", str(_model(runs)), "--aligned-dir"]
    argv += [str(runs / "aligned"), "--out", str(out), "--mask-seeds", "5", "--threads", "1"]
    assert cli.main(argv) == 0
    frame = pd.read_csv(out)
    recorded = json.loads(_model(runs).with_name("metrics.json").read_text())
    assert all(frame.at[0, k] == recorded[k] for k in METRIC_KEYS["sims"])  # through the CSV too
    assert len(frame) == rb.N_PROTOCOLS and frame["variant"].unique().tolist() == ["aemt"]


def test_the_rate_zero_check_reads_nan_as_equal(tmp_path: Path, capsys):
    frame = synthetic("mosei")
    frame.loc[:, "Non0_F1"] = np.nan  # every label exactly 0: Non0 metrics are NaN
    clean = frame.iloc[0]
    recorded = {k: float(clean[k]) for k in METRIC_KEYS["mosei"]}
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**recorded, "variant": "aemt", "valid": {"MAE": 0.1}}))
    assert run.check_clean(frame.iloc[: rb.N_PROTOCOLS], path, "mosei")
    path.write_text(json.dumps({**recorded, "Acc-7": recorded["Acc-7"] + 1e-12}))
    assert not run.check_clean(frame.iloc[: rb.N_PROTOCOLS], path, "mosei")
    assert "rate-0 Acc-7" in capsys.readouterr().err


def test_bad_tables_metrics_and_checkpoints_are_user_errors(runs: Path, tmp_path: Path):
    a, b, empty = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "empty.csv"
    for path in (a, b):
        synthetic().to_csv(path, index=False)
    empty.write_text("")
    with pytest.raises(UserError, match=rf"run aemt/1111 is in both {a} and {b}"):
        rb.read_tables([a, b], "sims")
    with pytest.raises(UserError, match=rf"{empty}: empty or not a readable CSV.*aemt robustness"):
        rb.read_tables([a, empty], "sims")
    metrics = tmp_path / "metrics.json"
    metrics.write_text("{")
    with pytest.raises(UserError, match=rf"{metrics}: unreadable"):
        run.check_clean(synthetic().iloc[: rb.N_PROTOCOLS], metrics, "sims")
    ckpt = torch.load(_model(runs), weights_only=True)
    del ckpt["normaliser"]
    torch.save(ckpt, tmp_path / "model.pt")
    with pytest.raises(UserError, match=r"model.pt: .*no 'normaliser'.*fine-tune again"):
        run.evaluate_checkpoints([tmp_path / "model.pt"], runs / "aligned", CFG, 1)
