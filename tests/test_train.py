"""Training loops: end-to-end outputs, determinism, kill-and-resume equality, pretrained encoders,
valid-only selection, train-only normalisation, and an LR drop before early stopping."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from aemt.cli import main as cli_main
from aemt.constants import FINETUNE_HISTORY as FT_COLUMNS
from aemt.constants import MODALITIES
from aemt.constants import PRETRAIN_HISTORY as PRE_COLUMNS
from aemt.errors import UserError
from aemt.evaluate.metrics import METRIC_KEYS
from aemt.train import checkpoint, loop, runtime
from aemt.train import finetune as ft
from aemt.train.finetune import run_finetune
from aemt.train.pretrain import run_pretrain
from aemt.train.splits import Normaliser, load_split
from tests._train_helpers import DIMS, Killed, hparams, kill_after, write_aligned

SMALL = {"train": 24, "valid": 8, "test": 8, "unlabeled": 16}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    # valid/test/unlabeled features are shifted: a normaliser fitted on them would differ from train's
    root = tmp_path_factory.mktemp("data") / "aligned"
    return write_aligned(root, sizes=SMALL, offsets={"valid": 3.0, "test": 3.0, "unlabeled": -4.0})


@pytest.fixture(scope="module")
def pretrained(aligned, tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    run_pretrain(aligned, out, hparams("pretrain", epochs=2), threads=1)
    return out


def state(path) -> dict[str, torch.Tensor]:
    return checkpoint.load_checkpoint(path)["state_dict"]


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pretrain_outputs(pretrained, aligned):
    assert sorted(p.name for p in pretrained.iterdir()) == ["history.csv", "model.pt"]
    hist = pd.read_csv(pretrained / "history.csv")
    assert tuple(hist.columns) == PRE_COLUMNS
    assert hist["epoch"].tolist() == [1, 2]
    assert hist[["train_recon", "valid_recon", "valid_consistency_acc"]].notna().all().all()
    ckpt = checkpoint.load_checkpoint(pretrained / "model.pt")
    assert ckpt["kind"] == "pretrain"
    assert ckpt["model_config"]["dims"] == DIMS
    assert ckpt["feature_info"]["text_model"] == "synthetic"
    for key in ("optimizer", "scheduler", "rng", "aemt_version", "history", "train_config"):
        assert key in ckpt
    assert any(k.startswith("autoencoders.text.encoder.") for k in ckpt["state_dict"])
    assert ckpt["consistency_state_dict"]
    # pool = train + unlabeled, 10 % held out; valid/test never used
    assert ckpt["data"] == {"n_fit": 36, "n_holdout": 4, "n_train": 24}


def test_normaliser_fitted_on_train_only(pretrained, aligned):
    train = load_split(aligned, "train")
    expected = Normaliser.fit(train)
    stored = checkpoint.load_checkpoint(pretrained / "model.pt")["normaliser"]
    for m in MODALITIES:
        valid_rows = train.xs[m][train.masks[m]]  # [n_valid, D]
        np.testing.assert_allclose(stored["mean"][m], valid_rows.mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(stored["std"][m], expected.std[m], rtol=1e-6)
    # applying it: train features ~N(0, 1) at valid positions, exactly zero at padding
    z = expected.apply(train)
    assert abs(z["audio"][train.masks["audio"]].mean()) < 1e-4
    assert (z["audio"][~train.masks["audio"]] == 0).all()
    # the shifted splits are not what it was fitted on
    test = load_split(aligned, "test")
    assert expected.apply(test)["text"][test.masks["text"]].mean() > 1.0


def test_labels_and_padding(tmp_path):
    root = write_aligned(tmp_path / "al", sizes={"train": 6, "valid": 2}, unimodal=False)
    meta = pd.read_csv(root / "valid" / "meta.csv")
    meta.loc[0, "label_A"] = 0.4  # one unimodal label given, the rest empty
    meta.to_csv(root / "valid" / "meta.csv", index=False)
    x = np.load(root / "valid" / "audio.npy")
    x[~np.load(root / "valid" / "audio_mask.npy")] = 7.0  # junk at padded positions
    np.save(root / "valid" / "audio.npy", x)
    split = load_split(root, "valid")
    m_label = meta["label"].to_numpy(np.float32)
    assert split.labels.shape == (2, 4)
    np.testing.assert_array_equal(split.labels[:, 0], m_label)
    np.testing.assert_array_equal(split.labels[:, 1], m_label)  # label_T empty -> M
    assert split.labels[0, 2] == np.float32(0.4) and split.labels[1, 2] == m_label[1]
    assert (split.xs["audio"][~split.masks["audio"]] == 0).all()
    meta.loc[1, "label"] = None
    meta.to_csv(root / "valid" / "meta.csv", index=False)
    with pytest.raises(UserError, match=r"row 3 .*column 'label'"):
        load_split(root, "valid")


def test_finetune_cli_end_to_end(pretrained, aligned, tmp_path):
    out = tmp_path / "ft"
    rc = cli_main(
        [
            "finetune",
            "--aligned-dir",
            str(aligned),
            "--out-dir",
            str(out),
            "--pretrained",
            str(pretrained / "model.pt"),
            "--variant",
            "aemt",
            "--seed",
            "1111",
            "--scale",
            "sims",
            "--hparams",
            json.dumps(hparams("finetune", epochs=2)),
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "history.csv",
        "metrics.json",
        "model.pt",
        "predictions.csv",
    ]
    hist = pd.read_csv(out / "history.csv")
    assert tuple(hist.columns) == FT_COLUMNS
    assert not any("test" in c for c in hist.columns)
    assert (hist["train_con"] != 0).all()  # the contrastive term is active
    preds = pd.read_csv(out / "predictions.csv", dtype={"key": str})
    assert list(preds.columns) == ["key", "label", "pred"]
    assert preds["key"].tolist() == load_split(aligned, "test").keys
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(METRIC_KEYS["sims"]) <= set(metrics)
    assert set(METRIC_KEYS["sims"]) == set(metrics["valid"])
    assert metrics["variant"] == "aemt" and metrics["seed"] == 1111 and metrics["n_test"] == 8
    assert 1 <= metrics["best_epoch"] <= 2
    mae = float(np.mean(np.abs(np.clip(preds["pred"], -1, 1) - preds["label"])))
    assert metrics["MAE"] == pytest.approx(mae)
    ckpt = checkpoint.load_checkpoint(out / "model.pt")
    assert ckpt["kind"] == "finetune" and ckpt["train_config"]["seed"] == 1111
    # the pretrained normaliser is reused, not refitted
    assert ckpt["normaliser"] == checkpoint.load_checkpoint(pretrained / "model.pt")["normaliser"]


def test_pretrained_encoders_land_in_aemt(pretrained, aligned, tmp_path):
    # lr = 0: the weights after fine-tuning are the initial ones
    run_finetune(
        aligned,
        tmp_path / "a",
        hparams("finetune", epochs=1, lr=0.0),
        pretrained / "model.pt",
        "sims",
        "aemt",
        1111,
        threads=1,
    )
    run_finetune(
        aligned,
        tmp_path / "m",
        hparams("finetune", epochs=1, lr=0.0, lambda2=0.0),
        None,
        "sims",
        "mult",
        1111,
        threads=1,
    )
    pre = state(pretrained / "model.pt")
    got, rand = state(tmp_path / "a" / "model.pt"), state(tmp_path / "m" / "model.pt")
    enc = [k for k in got if k.startswith("encoders.")]
    assert len(enc) > 10
    for k in enc:
        m, rest = k.split(".", 2)[1:]
        assert torch.equal(got[k], pre[f"autoencoders.{m}.encoder.{rest}"]), k
    assert not torch.equal(rand["encoders.text.conv.weight"], got["encoders.text.conv.weight"])


def test_lstm_encoder_kind_comes_from_pretraining(aligned, tmp_path):
    pre_hp = hparams("pretrain", epochs=1, lambda1=0.0)
    pre_hp["model"]["encoder"] = "lstm"
    run_pretrain(aligned, tmp_path / "p", pre_hp, 1)
    hp = hparams("finetune", epochs=1, lr=0.0)
    hp["model"]["encoder"] = "transformer"  # overridden by the checkpoint's "lstm"
    run_finetune(aligned, tmp_path / "f", hp, tmp_path / "p" / "model.pt", "sims", "w", 1, 1)
    pre = checkpoint.load_checkpoint(tmp_path / "p" / "model.pt")
    got = checkpoint.load_checkpoint(tmp_path / "f" / "model.pt")
    assert pre["consistency_state_dict"] is None  # lambda1 = 0: no MCD head
    assert got["model_config"]["encoder"] == "lstm"
    lstm = [k for k in got["state_dict"] if k.startswith("encoders.vision.lstm.")]
    assert lstm
    for k in lstm:
        assert torch.equal(
            got["state_dict"][k], pre["state_dict"]["autoencoders.vision.encoder." + k[16:]]
        )


def test_determinism_resume_and_single_test_evaluation(aligned, tmp_path, monkeypatch):
    hp = hparams("finetune", epochs=3)
    calls: list[str] = []
    real_predict = ft.predict

    def counting_predict(model, data, runtime, batch_size):
        calls.append(data.name)
        return real_predict(model, data, runtime, batch_size)

    monkeypatch.setattr(ft, "predict", counting_predict)
    a = run_finetune(aligned, tmp_path / "a", hp, None, "sims", "mult", 1111, threads=1)
    # selection looked at valid every epoch (+1 for the final valid metrics); test exactly once, last
    assert calls == ["valid"] * 4 + ["test"]
    b = run_finetune(aligned, tmp_path / "b", hp, None, "sims", "mult", 1111, threads=1)
    assert a == b
    assert same_state(state(tmp_path / "a" / "model.pt"), state(tmp_path / "b" / "model.pt"))

    # killed after epoch 2, then restarted: same final weights and metrics as the unbroken run
    killed = tmp_path / "k"
    with pytest.raises(Killed):
        run_finetune(
            aligned, killed, hp, None, "sims", "mult", 1111, threads=1, on_epoch_end=kill_after(2)
        )
    assert (killed / "last.pt").exists() and not (killed / "model.pt").exists()
    calls.clear()
    c = run_finetune(aligned, killed, hp, None, "sims", "mult", 1111, threads=1)
    assert calls == ["valid"] * 2 + ["test"]  # only epoch 3 was trained again
    assert c == a
    assert not (killed / "last.pt").exists()
    assert same_state(state(tmp_path / "a" / "model.pt"), state(killed / "model.pt"))
    ha, hc = (
        pd.read_csv(p / "history.csv").drop(columns="seconds") for p in (tmp_path / "a", killed)
    )
    pd.testing.assert_frame_equal(ha, hc)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "a" / "predictions.csv"), pd.read_csv(killed / "predictions.csv")
    )
    # another seed gives another model
    d = run_finetune(
        aligned,
        tmp_path / "d",
        hparams("finetune", epochs=1),
        None,
        "sims",
        "mult",
        1112,
        threads=1,
    )
    assert d["MAE"] != a["MAE"] or d["Corr"] != a["Corr"]


def test_pretrain_resume_equals_unbroken(pretrained, aligned, tmp_path):
    out = tmp_path / "pre"
    with pytest.raises(Killed):
        run_pretrain(aligned, out, hparams("pretrain", epochs=2), 1, on_epoch_end=kill_after(1))
    assert (out / "last.pt").exists()
    run_pretrain(aligned, out, hparams("pretrain", epochs=2), 1)
    assert same_state(state(pretrained / "model.pt"), state(out / "model.pt"))
    assert not (out / "last.pt").exists()


def test_stale_last_checkpoint_is_not_resumed(aligned, tmp_path):
    out = tmp_path / "ft"
    with pytest.raises(Killed):
        run_finetune(
            aligned,
            out,
            hparams("finetune", epochs=2),
            None,
            "sims",
            "mult",
            1111,
            threads=1,
            on_epoch_end=kill_after(1),
        )
    # another seed = another configuration: starts over, runs both epochs
    run_finetune(aligned, out, hparams("finetune", epochs=2), None, "sims", "mult", 1112, threads=1)
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]
    assert checkpoint.load_checkpoint(out / "model.pt")["train_config"]["seed"] == 1112


def test_lr_drops_on_plateau_before_early_stop(tmp_path):
    runtime.seed_everything(0)
    rt = runtime.setup_runtime(1, "cpu")
    model = torch.nn.Linear(3, 1)
    opt = runtime.build_optimizer(model, 1e-3, 0.0)
    sched = runtime.build_scheduler(opt, factor=0.5, patience=2)
    columns = ["epoch", "lr", "train_loss", "valid_loss", "seconds"]
    spec = loop.LoopSpec(tmp_path, 20, 4, "valid_loss", columns, {"kind": "test"}, "h")
    x = torch.randn(8, 3)

    def train_epoch(epoch: int) -> dict[str, float]:
        loss = model(x).pow(2).mean()
        runtime.optimizer_step(loss, model, opt, rt, clip=1.0)
        return {"train_loss": float(loss.detach())}

    plateau = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]  # no improvement after epoch 2
    result = loop.fit(
        spec, model, opt, sched, rt, train_epoch, lambda e: {"valid_loss": plateau[e - 1]}
    )
    hist = pd.read_csv(tmp_path / "history.csv")
    assert result.best_epoch == 2 and result.epochs_run == 6  # stopped after 4 bad epochs
    assert hist["lr"].tolist() == [1e-3] * 5 + [5e-4]  # the LR dropped before the stop
    with pytest.raises(UserError, match="lr_patience"):
        runtime.check_patience(8, 8)
    with pytest.raises(UserError, match="lr_patience"):
        run_finetune(
            tmp_path, tmp_path / "x", hparams("finetune", lr_patience=3), None, "sims", "v", 1
        )


def test_bad_inputs_raise_user_errors(pretrained, aligned, tmp_path):
    ckpt = checkpoint.load_checkpoint(pretrained / "model.pt")
    ckpt["feature_info"] = {**ckpt["feature_info"], "text_model": "bert-base-chinese"}
    other = tmp_path / "other.pt"
    checkpoint.save_checkpoint(other, ckpt)
    with pytest.raises(UserError, match="text_model"):
        run_finetune(aligned, tmp_path / "o", hparams("finetune"), other, "sims", "aemt", 1)
    with pytest.raises(UserError, match="scale"):
        run_finetune(aligned, tmp_path / "o", hparams("finetune"), None, "mosei", "aemt", 1)
    with pytest.raises(UserError, match="unknown key"):
        run_finetune(aligned, tmp_path / "o", {"train": {"lamda2": 1}}, None, "sims", "aemt", 1)
    with pytest.raises(UserError, match="dims"):
        run_pretrain(aligned, tmp_path / "p", {"model": {"dims": {"text": 3}}})
    with pytest.raises(UserError, match="not found"):
        run_pretrain(tmp_path / "nowhere", tmp_path / "p", hparams("pretrain"))


def test_incomplete_pretraining_checkpoints_and_bad_sections_are_user_errors(
    pretrained, aligned, tmp_path
):
    for field in ("normaliser", "model_config", "model_config.d_model"):
        ckpt = checkpoint.load_checkpoint(pretrained / "model.pt")
        parent, _, key = field.rpartition(".")
        del (ckpt[parent] if parent else ckpt)[key]
        path = tmp_path / f"no_{field}.pt"
        checkpoint.save_checkpoint(path, ckpt)
        with pytest.raises(
            UserError, match=rf"{re.escape(str(path))}: .*no '{field}'.*pretrain again"
        ):
            run_finetune(aligned, tmp_path / "o", hparams("finetune"), path, "sims", "aemt", 1)
    for hp in ({"train": [1]}, {"model": "x"}):
        with pytest.raises(UserError, match=f"hparams '{next(iter(hp))}' must be a JSON object"):
            run_finetune(aligned, tmp_path / "o", hp, None, "sims", "aemt", 1)
