"""The experiment design (`aemt.experiments`): pure functions of the config, tested without Snakemake."""

from __future__ import annotations

import copy
import json

import pytest

from aemt import experiments as design
from tests._workflow_helpers import config


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
    assert design.main_variants(cfg) == [
        *("aemt", "aemt_eq18", "aemt_wo_cl", "aemt_wo_mcd", "aemt_wo_tr"),
        *("aemt_nopre", "aemt_nopre_wo_cl", "mult", "aemt_md"),
    ]
    assert variants["sens_l1_0"]["pretrain"] == "transformer_nomcd"
    assert variants["sens_l2_0.5"] == {"pretrain": "transformer", "lambda2": 0.5}
    assert design.sweep_variants(cfg, "lambda2")[:3] == ["sens_l2_0", "sens_l2_0.1", "sens_l2_0.5"]
    assert design.variant_encoder(cfg, "aemt_wo_tr") == "lstm"
    assert design.variant_encoder(cfg, "mult") == "transformer"
    assert design.seeds_of(cfg, "aemt") == cfg["seeds"]
    assert design.seeds_of(cfg, "sens_l2_0.5") == cfg["sensitivity"]["seeds"]
    bad = copy.deepcopy(cfg)
    bad["variants"]["oops"] = {"pretrain": "nowhere", "lambda2": 0.0}
    with pytest.raises(ValueError, match="'oops' names pretraining 'nowhere'"):
        design.variants(bad)


def test_each_seed_fine_tunes_from_its_own_pretraining_run():
    cfg = config()
    assert design.pretrained_for(cfg, "demo", "mult", 1111) is None
    assert design.pretrained_for(cfg, "demo", "aemt", 1113) == (
        "results/demo/pretrain/transformer/1113/model.pt"
    )
    runs = design.pretrain_runs(cfg, ["aemt", "aemt_wo_cl", "aemt_nopre", "mult"])
    assert runs == {"transformer": cfg["seeds"]}  # shared by aemt and aemt_wo_cl, per seed
    every = design.pretrained_all(cfg, "demo")
    assert len(every) == 3 * len(cfg["seeds"])  # transformer, transformer_nomcd, lstm
    assert "results/demo/pretrain/lstm/1115/model.pt" in every
    sweep = design.pretrain_runs(cfg, design.sweep_variants(cfg, "lambda1"))
    assert sweep["sens_l1_0.2"] == cfg["sensitivity"]["seeds"]


def test_hparams_are_the_job_parameters():
    cfg = config("demo.yaml")
    pre = json.loads(design.pretrain_hparams(cfg, "lstm", 1112))
    assert pre["model"]["encoder"] == "lstm" and pre["model"]["d_model"] == 24
    assert pre["train"]["lambda1"] == 0.4 and pre["train"]["seed"] == 1112
    fine = json.loads(design.finetune_hparams(cfg, "aemt_wo_cl"))
    assert fine["train"]["lambda2"] == 0.0 and fine["train"]["epochs"] == 40
    assert fine["train"]["contrastive"] == "supcon"
    assert json.loads(design.finetune_hparams(cfg, "aemt_eq18"))["train"]["contrastive"] == "paper"
    mult = json.loads(design.finetune_hparams(cfg, "mult"))["model"]  # a true MulT
    assert mult["enc_layers"] == 0 and mult["cross_layers"] == 2  # the demo's other sizes stay
    assert design.finetune_hparams(cfg, "aemt") == design.finetune_hparams(cfg, "aemt")  # stable


def test_a_variant_overrides_finetune_keys_of_its_own_job():
    cfg = config("demo.yaml")
    robust = json.loads(design.finetune_hparams(cfg, "aemt_md"))
    plain = json.loads(design.finetune_hparams(cfg, "aemt"))
    assert robust["train"]["modality_dropout"] == 0.2 and plain["train"]["modality_dropout"] == 0.0
    assert {k: v for k, v in robust["train"].items() if k != "modality_dropout"} == {
        k: v for k, v in plain["train"].items() if k != "modality_dropout"
    }  # the rest (demo epochs, lr, lambda2 ...) as aemt's
    assert robust["model"] == plain["model"]
    same = design.pretrained_for(cfg, "demo", "aemt", 1112)
    assert design.pretrained_for(cfg, "demo", "aemt_md", 1112) == same  # aemt's pretraining runs
    # sweep runs keep the plain finetune settings
    assert json.loads(design.finetune_hparams(cfg, "sens_l2_0"))["train"]["modality_dropout"] == 0
    bad = copy.deepcopy(cfg)
    bad["variants"]["aemt_md"]["finetune"] = {"modality_drop": 0.2}
    with pytest.raises(
        ValueError, match=r"'aemt_md' overrides finetune key\(s\) \['modality_drop'\]"
    ):
        design.variants(bad)


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


def test_text_model_and_pretrain_splits():
    cfg = config("test.yaml")
    assert design.text_model(cfg, "tiny") == cfg["text"]["model"]
    cfg["datasets"]["tiny"]["text_model"] = "other/bert"
    assert design.text_model(cfg, "tiny") == "other/bert"
    assert design.pretrain_splits(cfg, "tiny") == ["train", "unlabeled"]
    cfg["datasets"]["pkl"] = {"mmsa_pickle": "x.pkl", "root": "."}
    assert design.pretrain_splits(cfg, "pkl") == ["train"]


def test_report_files_follow_the_built_sweeps():
    cfg = config("test.yaml")
    none = design.report_files(cfg, "tiny", lambda path: False)
    assert "results/tiny/report/metrics.html" in none
    assert "results/tiny/report/curves/pretrain_lstm.png" in none
    assert "results/tiny/report/pretraining.html" in none
    assert not [f for f in none if "sensitivity" in f or "sens_" in f]
    built = design.report_files(cfg, "tiny", lambda path: path.endswith("sensitivity_lambda2.png"))
    assert "results/tiny/report/sensitivity_lambda2.png" in built
    assert "results/tiny/report/curves/finetune_sens_l2_0.png" not in none
    # sens_l2_1.5 is the aemt configuration again but a run of its own (sensitivity seeds)
    assert "results/tiny/report/curves/finetune_sens_l2_1.5.png" in built
    assert design.alternatives([]) == "(?!)" and design.alternatives(["a.b"]) == r"a\.b"
    histories = design.pretrain_histories(cfg, "tiny", lambda path: False)
    assert "results/tiny/pretrain/lstm/1112/history.csv" in histories
    assert design.pretrain_histories(cfg, "tiny", lambda path: False, "lstm") == [
        "results/tiny/pretrain/lstm/1111/history.csv",
        "results/tiny/pretrain/lstm/1112/history.csv",
    ]
    aligned = design.quality_aligned(cfg, "tiny")
    assert "results/tiny/aligned/unlabeled/vision_mask.npy" in aligned
    assert not [f for f in aligned if f.endswith(("text.npy", "audio.npy", "vision.npy"))]


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
