"""Tests for the HTML report: tables, figures, data-quality page, `aemt report`, and `snakemake --report`."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from aemt import cli
from aemt.errors import UserError
from aemt.evaluate.summary import run_paths, train_mean_baseline
from aemt.report.clip_stats import add_transcripts, clips_from_aligned, status_table
from aemt.report.curves import plot_finetune, plot_pretrain
from aemt.report.pretraining import diagnostics_table
from aemt.report.quality import QualitySources, write_quality
from aemt.report.results import class_bins, read_runs, select_best, write_results
from aemt.report.tables import fmt100
from tests._report_helpers import SEEDS, VARIANTS, write_dataset, write_runs

SIMS_KEYS = ["Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"]


def _png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG, read back with matplotlib (fails on a broken file)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(path)  # [H, W, 4]
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image[..., :3].std() > 0.05  # not a blank canvas
    return image.shape[1], image.shape[0]


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    ds = tmp_path / "results" / "demo"
    write_runs(ds)
    write_dataset(ds)
    return ds


def _runs(ds: Path) -> list[Path]:
    return run_paths(ds, list(VARIANTS), SEEDS)


def _results(ds: Path, out: Path, scale: str = "sims"):
    meta = {"train_meta": ds / "aligned/train/meta.csv", "test_meta": ds / "aligned/test/meta.csv"}
    return write_results(_runs(ds), scale, out, dataset=ds.name, **meta)


def _sources(ds: Path) -> QualitySources:
    aligned = [p for p in sorted((ds / "aligned").glob("*")) if p.is_dir()]
    return QualitySources(ds / "manifest.csv", ds / "features", aligned)


def _mean_pm(ds: Path, variant: str, key: str) -> str:
    values = [
        json.loads((ds / f"finetune/{variant}/{s}/metrics.json").read_text())[key] for s in SEEDS
    ]
    return f"{fmt100(float(np.mean(values)))} ± {fmt100(float(np.std(values)))}"


def test_results_tables_hold_the_seed_statistics(ds: Path):
    out = _results(ds, ds / "report")
    page = out.metrics_html.read_text()
    for variant in VARIANTS:
        for key in SIMS_KEYS:
            assert _mean_pm(ds, variant, key) in page  # mean ± population std, x100
    one = json.loads((ds / "finetune/mult/1112/metrics.json").read_text())
    assert f"<td>{fmt100(one['Corr'])}</td>" in page  # a per-seed cell
    for text in ("MAE ↓", "ddof = 0", "exactly 0 counts as NEGATIVE", "★", "Valid MAE"):
        assert text in page
    ablation = out.ablation_html.read_text()
    rows = [ablation.index(f"<td>{label}</td>") for label in ("AE-MT", "w/o CL", "MulT")]
    assert rows == sorted(rows)  # paper order
    base = train_mean_baseline(ds / "aligned/train/meta.csv", ds / "aligned/test/meta.csv", "sims")
    assert ablation.index("Predict train mean") > rows[-1]
    assert f"<td>{fmt100(base['MAE'])}</td>" in ablation


def test_best_variant_is_chosen_on_validation_not_test(ds: Path):
    runs = read_runs(_runs(ds), "sims")
    # Make mult the best on validation although it is the worst on test.
    for seed in SEEDS:
        path = ds / f"finetune/mult/{seed}/metrics.json"
        data = json.loads(path.read_text())
        data["valid"]["MAE"] = 0.01
        path.write_text(json.dumps(data))
    test_mae = runs.groupby("variant")["MAE"].mean()
    assert test_mae.idxmin() != "mult"
    best, reason = select_best(read_runs(_runs(ds), "sims"))
    assert best == "mult" and "validation" in reason
    out = _results(ds, ds / "report")
    assert out.best_variant == "mult"
    assert "mult ★" in out.metrics_html.read_text()


def test_best_variant_falls_back_to_aemt_without_validation_metrics(ds: Path):
    runs = read_runs(_runs(ds), "sims").assign(valid_MAE=np.nan)
    assert select_best(runs)[0] == "aemt"


def test_result_figures_are_valid_images(ds: Path):
    out = _results(ds, ds / "report")
    assert _png_size(out.variants_png) == (1430, 528)  # 13 x 4.8 in at 110 dpi
    assert _png_size(out.scatter_png) == (704, 660)
    assert _png_size(out.confusion_png) == (1210, 616)


def test_results_on_the_mosei_scale(tmp_path: Path):
    ds = tmp_path / "mosei"
    write_runs(ds, scale="mosei")
    out = _results(ds, ds / "report", "mosei")
    page = out.metrics_html.read_text()
    for key in ("Acc-7", "Has0_Acc-2", "Has0_F1", "Non0_Acc-2", "Non0_F1", "MAE ↓", "Corr"):
        assert key in page
    assert _mean_pm(ds, "aemt", "Non0_F1") in page
    assert "0 counts as positive" in page and "Non0: clips with label exactly 0 are dropped" in page
    _png_size(out.confusion_png)
    _png_size(out.scatter_png)


def test_class_bins_follow_the_metric_conventions():
    values = np.array([-1.0, -0.7, 0.0, 0.05, 0.7, 1.0])
    sims = class_bins(values, "sims")
    acc2, names2 = next(iter(sims.values()))
    assert list(acc2) == [0, 0, 0, 1, 1, 1] and len(names2) == 2  # exactly 0 is negative
    acc5, names5 = list(sims.values())[1]
    assert list(acc5) == [0, 0, 2, 2, 3, 4] and names5[0] == "[-1, -0.7]"
    mosei = class_bins(np.array([-0.5, 0.0, 2.6]), "mosei")
    has0, _ = next(iter(mosei.values()))
    assert list(has0) == [0, 1, 1]  # Has0: 0 counts as positive
    acc7, names7 = list(mosei.values())[1]
    assert list(acc7) == [3, 3, 6] and names7 == [str(c) for c in range(-3, 4)]  # -0.5 -> -0 (even)


def test_training_curves(ds: Path, tmp_path: Path):
    pre = [ds / f"pretrain/transformer/{s}/history.csv" for s in SEEDS]
    png = plot_pretrain(pre, "transformer", "demo", tmp_path / "p.png")
    assert _png_size(png) == (1210, 825)
    histories = [ds / f"finetune/aemt/{s}/history.csv" for s in SEEDS]
    png = plot_finetune(histories, "aemt", "demo", tmp_path / "f.png")
    assert _png_size(png) == (1650, 506)
    history = ds / "finetune/aemt/1111/history.csv"
    pd.read_csv(history).drop(columns="valid_mae").to_csv(history, index=False)
    with pytest.raises(UserError, match=r"1111/history.csv lacks column\(s\) valid_mae"):
        plot_finetune(histories, "aemt", "demo", tmp_path / "g.png")
    with pytest.raises(UserError, match="9999/history.csv"):
        plot_finetune([ds / "finetune/mult/9999/history.csv"], "mult", "demo", tmp_path / "h.png")


def test_quality_page(ds: Path):
    out = write_quality(_sources(ds), ds / "report", "demo")
    assert out.n_clips == 9
    page = out.html.read_text()
    assert re.search(
        r"<td>test</td>\s*<td>0</td>\s*<td>1</td>\s*<td>1</td>", page
    )  # ok, empty_text, missing
    # sidecar statuses (no_face) join the manifest flags; the missing video is left out
    for text in ("no_face", "missing_video", "v01/0003", "fabricated no_audio", "384", "58"):
        assert text in page
    assert "eGeMAPSv02" in page and "face_landmarker.task" in page and "max_tokens" in page
    worst = page.index("Face detection: worst")
    assert page.index("v02/0001", worst) < page.index("v02/0002", worst)  # 0 % before 25 %
    assert "1 clip(s) with no face at all" in page and "2 below 50 %" in page
    speaker = page.index("Faces and speaker")
    assert "Uncertain speaker choice (3)" in page  # the clips with two faces, confidence 0.21
    assert "0.41 / 0.35" in page[speaker:] and "v01/0003" in page[speaker:]
    assert _png_size(out.overview_png) == (1320, 935)
    assert _png_size(out.face_png) == (1430, 550)


def test_quality_page_counts_transcripts_from_speech(ds: Path, tmp_path: Path):
    rows = {  # key: (text, source, mean_logprob, match_rate, asr_words, status)
        "v01/0001": ("I really liked this movie a lot", "label", -0.3, 1.0, 7, "ok"),
        "v01/0002": ("it was fine", "label", -0.4, 0.3333, 3, "ok"),
        "v01/0003": ("no sound here at all", "label", "", 0.0, "", "no_audio"),
        "v02/0001": ("the face is never visible", "label", -0.9, 0.0, 0, "ok"),
        "v02/0002": ("hardly any face", "label", -0.2, 0.6667, 3, "ok"),
        "v02/0003": ("good", "label", -0.1, 1.0, 1, "ok"),
        "v03/0001": ("this clip has no video file", "label", "", "", "", "missing_video"),
        "v03/0002": ("I mean that was impressive.", "asr", -0.5, "", 5, "ok"),
        "v03/0003": ("an unlabeled clip for pretraining", "label", -0.3, 1.0, 5, "ok"),
    }
    table = pd.DataFrame(
        [(k, *v[:2], "en", *v[2:]) for k, v in rows.items()],
        columns=["key", "text", "source", "language", "mean_logprob", "match_rate", "asr_words",
                 "status"],
    )  # fmt: skip
    table.to_csv(tmp_path / "transcripts.csv", index=False)
    sources = QualitySources(ds / "manifest.csv", ds / "features", _sources(ds).aligned,
                             tmp_path / "transcripts.csv")  # fmt: skip
    page = write_quality(sources, tmp_path / "report", "demo").html.read_text()
    assert "Transcripts from speech" in page
    assert "1 of 8 transcripts came from speech recognition" in page
    assert "5 clip(s), match rate min 0.3333, median 1, mean 0.8, max 1 (matched" in page
    assert "1 label transcript(s) where nothing was recognised and 1 without recognition" in page
    low = page.index("Lowest match rates (5)")
    assert page.index("v01/0002", low) < page.index("v02/0002", low) < page.index("v01/0001", low)
    # The clip whose empty label cell was transcribed is no longer empty_text.
    assert re.search(r"<td>test</td>\s*<td>1</td>\s*<td>1</td>", page)  # ok 1, missing 1
    table.drop(index=0).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(UserError, match="no row for clip 'v01/0001'"):
        write_quality(QualitySources(ds / "manifest.csv", ds / "features", [],
                                     tmp_path / "short.csv"), tmp_path / "r2", "demo")  # fmt: skip
    pd.concat([table, table.iloc[:1]]).to_csv(tmp_path / "twice.csv", index=False)
    table.drop(columns="match_rate").to_csv(tmp_path / "nocol.csv", index=False)
    for name, message in (("twice", "line 11: clip 'v01/0001' appears twice"),
                          ("nocol", "missing column 'match_rate'")):  # fmt: skip
        with pytest.raises(UserError, match=f"{name}.csv.*{message}"):
            add_transcripts(pd.DataFrame({"key": ["v01/0001"]}), tmp_path / f"{name}.csv")


def test_quality_status_table_counts_flags():
    clips = pd.DataFrame(
        {
            "split": ["train", "train", "train", "test"],
            "status": ["ok", "no_audio;no_face", "no_face", "missing_video"],
        }
    )
    table = status_table(clips).set_index("split \\ status")
    assert table.loc["train", "no_face"] == 2 and table.loc["train", "no_audio"] == 1
    assert table.loc["train", "total clips"] == 3 and table.loc["train", "in tensors"] == 3
    assert table.loc["test", "in tensors"] == 0


def test_quality_from_aligned_tensors_only(tmp_path: Path):
    """An MMSA-imported dataset has no manifest or sidecars: rates come from the aligned masks."""
    ds = tmp_path / "imported"
    folder = ds / "aligned" / "train"
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "key": ["a/1", "a/2"],
            "split": "train",
            "label": [0.1, -0.2],
            "text": ["x y", "z"],
            "status": ["ok", "no_face"],
        }
    ).to_csv(folder / "meta.csv", index=False)
    vision = np.array([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)  # [N, L]
    np.save(folder / "vision_mask.npy", vision)
    np.save(folder / "audio_mask.npy", np.ones((2, 4), dtype=bool))
    np.save(folder / "text_mask.npy", np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool))
    clips = clips_from_aligned([folder])
    assert list(clips["face_rate"]) == [0.5, 0.0] and list(clips["tokens"]) == [3, 2]
    out = write_quality(QualitySources(None, None, [folder]), ds / "report", "imported")
    assert "alignment bins" in out.html.read_text()
    with pytest.raises(UserError, match="no aligned split given"):
        write_quality(QualitySources(None, None, []), tmp_path / "out", "empty")
    (folder / "audio_mask.npy").unlink()
    with pytest.raises(UserError, match=r"audio_mask.npy: not found.*snakemake aligned"):
        clips_from_aligned([folder])


def test_pretraining_table_without_holdout(ds: Path, tmp_path: Path):
    """No holdout loss: no selected epoch; a zero mean error: no ratio; bad cells name the file."""
    history = pd.read_csv(ds / "pretrain/transformer/1111/history.csv")
    path = tmp_path / "pretrain/cfg/1/history.csv"
    path.parent.mkdir(parents=True)
    history.assign(valid_loss=np.nan, mean_recon_audio=0.0).to_csv(path, index=False)
    row = diagnostics_table([path]).iloc[0]
    assert row["selected epoch"] == "–" and row["audio: recon MSE / mean MSE"].endswith("(–)")
    history.assign(valid_loss="x").to_csv(path, index=False)
    with pytest.raises(UserError, match="cfg/1/history.csv: not a pretraining history"):
        diagnostics_table([path])


def test_cli(ds: Path, tmp_path: Path, capsys):
    runs = [str(p) for p in _runs(ds)]
    argv = ["report", "results", "--metrics", *runs, "--scale", "sims"]
    argv += ["--train-meta", str(ds / "aligned/train/meta.csv")]
    argv += ["--test-meta", str(ds / "aligned/test/meta.csv"), "--out-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 0
    assert "lowest mean validation MAE" in capsys.readouterr().out
    assert (tmp_path / "r/best_confusion.png").is_file()
    assert "Predict train mean" in (tmp_path / "r/ablation.html").read_text()
    curves = tmp_path / "r/curves/finetune_aemt.png"
    argv = ["report", "finetune-curves", "--histories", str(ds / "finetune/aemt/1111/history.csv")]
    assert cli.main([*argv, "--out", str(curves)]) == 0
    _png_size(curves)
    history = str(ds / "pretrain/transformer/1111/history.csv")
    argv = ["report", "pretrain-curves", "--histories", history, "--out", str(curves)]
    assert cli.main(argv) == 0
    page = tmp_path / "pretraining.html"
    argv = ["report", "pretraining", "--histories", history, "--out", str(page)]
    assert cli.main(argv) == 0
    text = page.read_text()
    assert "<td>transformer</td>" in text and "0.071 / 1.000 (0.07)" in text  # text at epoch 7
    aligned = [str(p) for p in sorted(ds.glob("aligned/*/info.json"))]
    quality = ["report", "quality", "--manifest", str(ds / "manifest.csv")]
    quality += ["--features-dir", str(ds / "features"), "--aligned", *aligned]
    assert cli.main([*quality, "--out-dir", str(tmp_path)]) == 0
    alone = ["report", "quality", "--manifest", str(ds / "manifest.csv"), "--aligned", *aligned]
    assert cli.main([*alone, "--out-dir", str(tmp_path)]) == 2
    assert "--manifest and --features-dir go together" in capsys.readouterr().err
    assert cli.main(["report", "copy", str(curves), str(tmp_path / "copy.png")]) == 0
    assert (tmp_path / "copy.png").read_bytes() == curves.read_bytes()
    assert cli.main(["report", "copy", str(ds / "manifest.csv"), str(tmp_path / "x.png")]) == 2
    assert "is not a PNG" in capsys.readouterr().err
    nope = ["report", "finetune-curves", "--histories", str(ds / "finetune/nope/1/history.csv")]
    assert cli.main([*nope, "--out", str(tmp_path / "y.png")]) == 2  # UserError, no traceback
    assert "finetune/nope/1/history.csv" in capsys.readouterr().err
    missing = ["report", "results", "--metrics", str(ds / "finetune/aemt/7/metrics.json")]
    assert cli.main([*missing, "--scale", "sims", "--out-dir", str(tmp_path)]) == 2
    assert "has not run" in capsys.readouterr().err


# ----------------------------------------------------------------------------- end to end


def _embedded(html: str, name: str) -> dict:
    """The JSON object of `var <name> = {...};` in a Snakemake 9 report."""
    match = re.search(rf"var {name} = (\{{.*?\}});\n", html, re.S)
    assert match, f"no `var {name}` in the report"
    return json.loads(match.group(1))


def _payload(record: dict) -> bytes:
    """The file embedded in a result record (a base64 data URI)."""
    return base64.b64decode(record["data_uri"].split("base64,", 1)[1])


@pytest.mark.slow
def test_snakemake_report_html(tiny_run: Path, tmp_path: Path):
    from tests._workflow_helpers import snakemake

    # The sweeps were built by tiny_run, so `report` now also copies their plots in (and their curves).
    snakemake(tiny_run, "--cores", "2", "report", "--configfile", "config/test.yaml")
    out = tmp_path / "report.html"
    snakemake(tiny_run, "--report", str(out), "report", "--configfile", "config/test.yaml")
    html = out.read_text()
    results = _embedded(html, "results")
    by_name = {
        Path(path).relative_to("results/tiny/report").as_posix(): rec
        for path, rec in results.items()
    }
    expected = {
        "metrics.html",
        "ablation.html",
        "variants.png",
        "best_scatter.png",
        "best_confusion.png",
        "quality.html",
        "quality.png",
        "face_detection.png",
        "pretraining.html",
        "curves/pretrain_transformer.png",
        "curves/pretrain_lstm.png",
        "curves/pretrain_transformer_nomcd.png",
        "sensitivity_lambda1.png",
        "sensitivity_lambda2.png",
        "robustness.html",
        "robustness.png",
    }
    expected |= {
        f"curves/finetune_{v}.png"
        for v in ("aemt", "aemt_eq18", "aemt_wo_tr", "mult", "aemt_md", "sens_l2_0", "sens_l1_0")
    }
    assert expected <= set(by_name)
    categories = _embedded(html, "categories")
    assert set(categories["tiny"]) == {
        "1. Results",
        "2. Training curves",
        "3. Data quality",
        "4. Sensitivity",
        "5. Robustness",
    }
    for name, rec in by_name.items():
        assert rec["caption"].strip(), f"{name} has no caption"
        data = _payload(rec)
        if name.endswith(".png"):
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    metrics = _payload(by_name["metrics.html"]).decode()
    summary = pd.read_csv(tiny_run / "results/tiny/summary.csv")
    aemt = summary[(summary["variant"] == "aemt") & (summary["row"] == "mean")].iloc[0]
    assert fmt100(float(aemt["Acc-2"])) in metrics and "ddof = 0" in metrics
    for variant in ("aemt_eq18", "aemt_wo_tr", "mult", "aemt_md"):
        assert variant in metrics
    assert "Paired differences against aemt" in metrics
    assert "Predict train mean" in _payload(by_name["ablation.html"]).decode()
    quality = _payload(by_name["quality.html"]).decode()
    assert "Clips per split and status" in quality and "eGeMAPSv02" in quality
    caption = by_name["metrics.html"]["caption"]
    assert "ddof = 0" in caption and "<strong>tiny</strong>" in caption  # rendered rst + jinja
    assert "validation" in by_name["best_scatter.png"]["caption"]
    assert "1111, 1112, 1113" in by_name["robustness.html"]["caption"]  # the mask seeds
    assert "MAE ↓ area" in _payload(by_name["robustness.html"]).decode()
