"""Missing modalities in the models and in training: dropped steps are masked zeros, modality dropout
(`finetune.modality_dropout`) touches training batches only and resumes exactly, and every variant of
config/config.yaml, built as the workflow builds it, predicts finite scores with modalities masked."""

from __future__ import annotations

import json

import pytest
import torch

from aemt import experiments as design
from aemt.constants import MODALITIES
from aemt.errors import UserError
from aemt.train import finetune as ft
from aemt.train.checkpoint import finetuned_model, load_checkpoint
from aemt.train.finetune import FinetuneConfig, run_finetune
from aemt.train.missing import drop_steps, modality_dropout
from aemt.train.pretrain import run_pretrain
from aemt.train.runtime import setup_runtime
from aemt.train.splits import Normaliser, Tensors, load_split, to_tensors
from tests._train_helpers import Killed, hparams, kill_after, write_aligned
from tests._workflow_helpers import config as workflow_config

SMALL = {"train": 16, "valid": 8, "test": 8, "unlabeled": 8}


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    return write_aligned(tmp_path_factory.mktemp("data") / "aligned", sizes=SMALL)


def test_drop_steps_masks_and_zeroes_only_what_it_is_told():
    g = torch.Generator().manual_seed(0)
    xs = {m: torch.randn(3, 4, 2, generator=g) for m in MODALITIES}  # [B, L, D]
    masks = {m: torch.ones(3, 4, dtype=torch.bool) for m in MODALITIES}
    masks["audio"][0, 3] = False
    gone = torch.zeros(3, 4, dtype=torch.bool)
    gone[1, :2] = True
    before = xs["audio"].clone()
    out_x, out_m = drop_steps(xs, masks, {"audio": gone})
    assert out_x["text"] is xs["text"] and out_m["vision"] is masks["vision"]
    assert torch.equal(out_m["audio"], masks["audio"] & ~gone)
    assert torch.all(out_x["audio"][1, :2] == 0)
    assert torch.equal(out_x["audio"][2], xs["audio"][2])
    assert torch.equal(xs["audio"], before) and masks["audio"][1].all()  # inputs not modified


def test_modality_dropout_rate_never_all_three_and_reproducible():
    masks = {m: torch.ones(20000, 5, dtype=torch.bool) for m in MODALITIES}
    p = 0.5
    gone = modality_dropout(masks, p, torch.Generator().manual_seed(3))
    again = modality_dropout(masks, p, torch.Generator().manual_seed(3))
    assert all(torch.equal(gone[m], again[m]) for m in MODALITIES)
    rows = torch.stack([gone[m][:, 0] for m in MODALITIES], dim=1)  # [B, 3]
    assert torch.equal(rows, torch.stack([gone[m][:, -1] for m in MODALITIES], dim=1))  # whole rows
    assert not rows.all(dim=1).any()  # one modality always stays
    rate = rows.float().mean().item()
    assert rate == pytest.approx(p - p**3 / 3, abs=0.01)
    assert rows.any(dim=1).float().mean().item() == pytest.approx(1 - (1 - p) ** 3, abs=0.01)
    none = modality_dropout(masks, 0.0, torch.Generator().manual_seed(3))
    assert not any(none[m].any() for m in MODALITIES)


def test_modality_dropout_config_is_checked():
    assert FinetuneConfig().modality_dropout == 0.0  # the paper's setting
    for bad in (-0.1, 1.0):
        with pytest.raises(UserError, match="modality_dropout"):
            FinetuneConfig(modality_dropout=bad)


def test_modality_dropout_is_applied_to_training_batches_only(aligned, tmp_path, monkeypatch):
    calls: list[int] = []
    real = ft.modality_dropout

    def counting(masks, p, generator):
        calls.append(next(iter(masks.values())).shape[0])
        return real(masks, p, generator)

    monkeypatch.setattr(ft, "modality_dropout", counting)
    hp = hparams("finetune", epochs=2, batch_size=8, modality_dropout=0.5)
    dropped = run_finetune(aligned, tmp_path / "md", hp, None, "sims", "aemt_md", 1111, threads=1)
    assert calls == [8, 8] * 2  # 16 train clips, 2 batches per epoch; never valid or test
    hp_plain = hparams("finetune", epochs=2, batch_size=8)
    plain = run_finetune(
        aligned, tmp_path / "plain", hp_plain, None, "sims", "aemt", 1111, threads=1
    )
    assert calls == [8, 8] * 2 and dropped["MAE"] != plain["MAE"]
    ckpt = load_checkpoint(tmp_path / "md" / "model.pt")
    assert ckpt["train_config"]["modality_dropout"] == 0.5


def test_modality_dropout_run_resumes_exactly(aligned, tmp_path):
    hp = hparams("finetune", epochs=3, batch_size=8, modality_dropout=0.4)
    whole = run_finetune(aligned, tmp_path / "a", hp, None, "sims", "aemt_md", 7, threads=1)
    with pytest.raises(Killed):
        run_finetune(
            aligned, tmp_path / "k", hp, None, "sims", "aemt_md", 7, 1, on_epoch_end=kill_after(2)
        )
    resumed = run_finetune(aligned, tmp_path / "k", hp, None, "sims", "aemt_md", 7, threads=1)
    assert resumed == whole
    a, k = (load_checkpoint(tmp_path / d / "model.pt")["state_dict"] for d in ("a", "k"))
    assert all(torch.equal(a[name], k[name]) for name in a)


def _masked(data: Tensors, modalities: tuple[str, ...]) -> Tensors:
    gone = {m: torch.ones_like(data.masks[m]) for m in modalities}
    xs, masks = drop_steps(data.xs, data.masks, gone)
    return Tensors(data.name, data.keys, xs, masks, None)


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")
def test_every_config_variant_predicts_finite_scores_with_modalities_masked(aligned, tmp_path):
    """Each variant of config/config.yaml: pretrained (if it is) and fine-tuned by the same calls and
    `--hparams` as the workflow's jobs (1 epoch), reloaded from its model.pt as `aemt predict` and
    `aemt robustness` do, then fed a test split with one modality, two, or all three fully masked."""
    config = workflow_config()
    runtime = setup_runtime(1, "cpu")
    test = load_split(aligned, "test")
    pretrained = {}
    for name in design.pretrain_runs(config, design.main_variants(config)):
        hp = json.loads(design.pretrain_hparams(config, name, 1111))
        hp["train"].update(epochs=1, early_stop=2, lr_patience=1)
        run_pretrain(aligned, tmp_path / "pre" / name, hp, threads=1)
        pretrained[name] = tmp_path / "pre" / name / "model.pt"
    cases = [(m,) for m in MODALITIES] + [("text", "audio"), ("audio", "vision"), MODALITIES]
    encoders = set()
    for variant in design.main_variants(config):
        hp = json.loads(design.finetune_hparams(config, variant))
        hp["train"].update(epochs=1, early_stop=2, lr_patience=1)
        source = design.variants(config)[variant]["pretrain"]
        out = tmp_path / "ft" / variant
        run_finetune(aligned, out, hp, pretrained.get(source), "sims", variant, 1111, threads=1)
        ckpt = load_checkpoint(out / "model.pt")
        encoders.add((ckpt["model_config"]["encoder"], ckpt["model_config"]["enc_layers"] > 0))
        model = finetuned_model(ckpt, out / "model.pt", runtime.device)
        data = to_tensors(test, Normaliser.from_dict(ckpt["normaliser"]), runtime.device)
        for gone in cases:
            pred = ft.predict(model, _masked(data, gone), runtime, batch_size=3)
            assert torch.isfinite(torch.from_numpy(pred)).all(), f"{variant} without {gone}"
        model.train()  # training mode too (dropout on, the path modality dropout trains)
        xs = _masked(data, MODALITIES)
        out_pred, z = model(xs.xs, xs.masks)
        assert torch.isfinite(out_pred).all() and torch.isfinite(z).all(), variant
    assert ("lstm", True) in encoders  # aemt_wo_tr: the LSTM encoders are among them
