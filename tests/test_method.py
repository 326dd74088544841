"""The method's parts added for a trustworthy ablation: a true MulT (no per-modality encoders), the
projection head of the contrastive loss, same-video tampering donors and the pretext diagnostics."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from aemt.constants import MODALITIES, PRETRAIN_HISTORY
from aemt.models.aemt import AEMT
from aemt.models.config import ModelConfig
from aemt.train.checkpoint import load_checkpoint
from aemt.train.donors import SameVideoDonors
from aemt.train.finetune import run_finetune
from aemt.train.pretrain import run_pretrain
from tests._train_helpers import hparams, write_aligned

DIMS = {"text": 7, "audio": 3, "vision": 5}
SMALL = {"train": 24, "valid": 8, "test": 8, "unlabeled": 16}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    return write_aligned(tmp_path_factory.mktemp("data") / "aligned", sizes=SMALL)


def _cfg(**kw) -> ModelConfig:
    lengths = {m: 6 for m in MODALITIES}
    return ModelConfig(dims=DIMS, lengths=lengths, d_model=8, n_heads=2, dropout=0.0, **kw)


def test_mult_has_no_per_modality_encoder():
    mult, aemt = AEMT(_cfg(enc_layers=0)), AEMT(_cfg(enc_layers=2))
    names = {n for n, _ in mult.named_parameters()}
    assert not [n for n in names if n.startswith("encoders.") and ".stack." in n]
    assert {n for n in names if n.startswith("encoders.")} == {
        f"encoders.{m}.conv.weight" for m in MODALITIES
    }  # only the Conv1D front-ends (eq. 1)
    assert sum(p.numel() for p in mult.parameters()) < sum(p.numel() for p in aemt.parameters())
    g = torch.Generator().manual_seed(0)
    xs = {m: torch.randn(3, 6, d, generator=g) for m, d in DIMS.items()}
    masks = {m: torch.ones(3, 6, dtype=torch.bool) for m in MODALITIES}
    masks["audio"][1] = False  # a clip without audio
    mult.eval()
    with torch.no_grad():
        fast = mult(xs, masks)
        mult.cfg.grouped = False
        alone = mult(xs, masks)
    for a, b in zip(fast, alone, strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="enc_layers must be >= 1 for lstm"):
        _cfg(enc_layers=0, encoder="lstm")


def test_projection_head_is_trained_and_saved_beside_the_model(aligned, tmp_path):
    def run(name: str, **train):
        out = tmp_path / name
        run_finetune(aligned, out, hparams("finetune", epochs=1, **train), None, "sims", name, 1)
        return load_checkpoint(out / "model.pt")

    head = run("mlp", projection_dim=5)
    projection = head["projection_state_dict"]
    assert projection["fc2.weight"].shape == (5, 6 * 8)  # Z is 6 d_model = 48 wide
    assert not [k for k in head["state_dict"] if k.startswith(("aemt.", "projection"))]
    assert head["train_config"]["contrastive"] == "supcon"
    assert run("none", projection="none")["projection_state_dict"] is None
    assert run("nocl", lambda2=0.0)["projection_state_dict"] is None  # no contrastive loss, no head
    eq18 = run("eq18", contrastive="paper")
    assert eq18["train_config"]["contrastive"] == "paper"
    history = pd.read_csv(tmp_path / "eq18" / "history.csv")
    assert history["train_con"].notna().all()


def test_same_video_donors():
    keys = ["a/1", "a/2", "a/3", "b/1", "c/1", "c/2"]
    donors = SameVideoDonors(keys)
    assert donors.coverage == pytest.approx(5 / 6)  # b/1 has no other clip of its video
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        rows = torch.tensor([0, 3, 4, 5])
        drawn = donors.draw(rows, g).tolist()
        assert drawn[0] in (1, 2) and drawn[2] == 5 and drawn[3] == 4  # same video, never itself
        assert drawn[1] in (0, 4, 5)  # b/1: another clip of the batch


def test_pretext_diagnostics_and_same_video_pretraining(aligned, tmp_path):
    out = tmp_path / "pre"
    run_pretrain(aligned, out, hparams("pretrain", epochs=2, donor="same_video"), threads=1)
    history = pd.read_csv(out / "history.csv")
    assert tuple(history.columns) == PRETRAIN_HISTORY
    for m in MODALITIES:
        assert (history[f"valid_recon_{m}"] > 0).all()
        assert history[f"mean_recon_{m}"].nunique() == 1  # the baseline is one number per run
    ckpt = load_checkpoint(out / "model.pt")
    diagnostics = ckpt["diagnostics"]
    assert {"valid_consistency_acc", "valid_recon_text", "mean_recon_audio"} <= set(diagnostics)
    assert ckpt["train_config"]["donor"] == "same_video"
    with pytest.raises(Exception, match="donor must be one of"):
        run_pretrain(aligned, tmp_path / "x", hparams("pretrain", donor="elsewhere"))
