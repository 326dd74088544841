"""The experiment design (`aemt.experiments`): pure functions of the config, tested without Snakemake."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from aemt import experiments as design
from tests.conftest import REPO_ROOT


def _merge(base: dict, extra: dict) -> dict:
    """Snakemake's --configfile overlay: nested dicts merge, other values replace."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def config(*overlays: str) -> dict:
    cfg = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    for name in overlays:
        cfg = _merge(cfg, yaml.safe_load((REPO_ROOT / "config" / name).read_text()))
    return cfg


def test_pretrainings_add_one_per_new_lambda1_value():
    cfg = config()
    names = design.pretrainings(cfg)
    assert names["transformer"] == {"encoder": "transformer", "lambda1": 0.4}
    # 0.0 and 0.4 exist already (transformer_nomcd, transformer): no duplicate job
    assert {n for n in names if n.startswith("sens_l1_")} == {
        "sens_l1_0.2",
        "sens_l1_0.6",
        "sens_l1_0.8",
        "sens_l1_1",
    }


def test_variants_and_sweeps():
    cfg = config()
    variants = design.variants(cfg)
    assert design.main_variants(cfg) == ["aemt", "aemt_wo_cl", "aemt_wo_mcd", "aemt_wo_tr", "mult"]
    assert variants["sens_l1_0"] == {"pretrain": "transformer_nomcd", "lambda2": 1.5}
    assert variants["sens_l2_0.5"] == {"pretrain": "transformer", "lambda2": 0.5}
    assert design.sweep_variants(cfg, "lambda2")[:2] == ["sens_l2_0", "sens_l2_0.5"]
    assert design.variant_encoder(cfg, "aemt_wo_tr") == "lstm"
    assert design.variant_encoder(cfg, "mult") == "transformer"
    assert design.seeds_of(cfg, "aemt") == cfg["seeds"]
    assert design.seeds_of(cfg, "sens_l2_0.5") == cfg["sensitivity"]["seeds"]
    assert design.pretrainings_of(cfg, ["aemt", "aemt_wo_cl", "mult"]) == ["transformer"]
    assert design.pretrained_for(cfg, "demo", "mult") is None
    assert (
        design.pretrained_for(cfg, "demo", "aemt") == "results/demo/pretrain/transformer/model.pt"
    )
    bad = copy.deepcopy(cfg)
    bad["variants"]["oops"] = {"pretrain": "nowhere", "lambda2": 0.0}
    with pytest.raises(ValueError, match="'oops' names pretraining 'nowhere'"):
        design.variants(bad)


def test_hparams_are_the_job_parameters():
    cfg = config("demo.yaml")
    pre = json.loads(design.pretrain_hparams(cfg, "lstm"))
    assert pre["model"]["encoder"] == "lstm" and pre["model"]["d_model"] == 24
    assert pre["train"]["lambda1"] == 0.4 and pre["train"]["seed"] == 1111
    fine = json.loads(design.finetune_hparams(cfg, "aemt_wo_cl"))
    assert fine["train"]["lambda2"] == 0.0 and fine["train"]["epochs"] == 40
    assert design.finetune_hparams(cfg, "aemt") == design.finetune_hparams(cfg, "aemt")  # stable


def test_dataset_entries_and_files():
    cfg = config("test.yaml")
    entry = design.dataset(cfg, "tiny")
    assert entry["video"] == "Raw/{video_id}/{clip_id}.mp4" and entry["scale"] == "sims"
    assert design.label_files(cfg, "tiny") == {
        "labels": "data/tiny/label.csv",
        "unlabeled": "data/tiny/unlabeled.csv",
    }
    assert design.demo_roots(cfg) == {"data/demo": "demo", "data/tiny": "tiny"}
    assert "--train 8" in design.demo_args(cfg, "tiny") and design.demo_args(cfg, "demo") == ""
    assert design.aligned_splits(cfg, "tiny")[-1] == "unlabeled"
    assert len(design.aligned_files("tiny", ["train"])) == 8
    assert design.shard_files("tiny", 2, ["audio"]) == [
        "results/tiny/features/audio/shard_0000.csv",
        "results/tiny/features/audio/shard_0001.csv",
    ]
    with pytest.raises(ValueError, match="dataset 'nope' is not in the config"):
        design.dataset(cfg, "nope")
    cfg["datasets"]["pkl"] = {"mmsa_pickle": "x.pkl", "root": "."}
    assert design.is_mmsa(cfg, "pkl") and not design.has_unlabeled(cfg, "pkl")


def test_report_files_follow_the_built_sweeps():
    cfg = config("test.yaml")
    none = design.report_files(cfg, "tiny", lambda path: False)
    assert "results/tiny/report/metrics.html" in none
    assert "results/tiny/report/curves/pretrain_lstm.png" in none
    assert not [f for f in none if "sensitivity" in f or "sens_" in f]
    built = design.report_files(cfg, "tiny", lambda path: path.endswith("sensitivity_lambda2.png"))
    assert "results/tiny/report/sensitivity_lambda2.png" in built
    assert "results/tiny/report/curves/finetune_sens_l2_0.png" not in none
    # sens_l2_1.5 is the aemt configuration again but a run of its own (sensitivity seeds)
    assert "results/tiny/report/curves/finetune_sens_l2_1.5.png" in built
    assert design.alternatives([]) == "(?!)" and design.alternatives(["a.b"]) == r"a\.b"


def test_asr_settings_per_dataset():
    cfg = config("test.yaml")
    assert design.asr_settings(cfg, "tiny") == {
        "mode": "missing", "language": "en", "model": "auto", "beam_size": 1,
        "compute_type": "int8", "vad": False,
    }  # fmt: skip
    cfg["datasets"]["zh"] = {"root": "x", "language": "zh", "asr": "never", "asr_model": "/m/w"}
    cfg["asr"]["beam_size"] = 5
    got = design.asr_settings(cfg, "zh")
    assert (got["mode"], got["language"], got["model"], got["beam_size"]) == (
        "never",
        "zh",
        "/m/w",
        5,
    )
    assert design.asr_files("zh", 2) == [
        "results/zh/asr/shard_0000.csv",
        "results/zh/asr/shard_0001.csv",
    ]
    assert (
        design.align_mode(cfg) == "bins"
        and design.align_mode({"align": {"mode": "words"}}) == "words"
    )
