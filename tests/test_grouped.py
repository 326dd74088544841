"""Grouped execution of same-shaped transformer stacks (aemt.models.grouped) equals running them one by one:
AE-MT's encoder / cross-modal / fusion stacks and the pretraining autoencoders."""

from __future__ import annotations

import pytest
import torch

import aemt.models.grouped as grouped_module
from aemt.constants import MODALITIES
from aemt.models.aemt import AEMT
from aemt.models.autoencoder import MultimodalAutoencoder
from aemt.models.config import ModelConfig
from aemt.models.grouped import run_stacks
from aemt.models.layers import TransformerStack, upgrade_state_dict

DIMS = {"text": 7, "audio": 3, "vision": 5}
LENGTH = 9


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cfg(encoder: str, lengths: dict[str, int] | None = None, p: float = 0.0) -> ModelConfig:
    return ModelConfig(
        dims=DIMS,
        lengths=lengths or {m: LENGTH for m in MODALITIES},
        d_model=8,
        n_heads=2,
        encoder=encoder,
        enc_layers=2,
        cross_layers=2,
        self_layers=2,
        dropout=p,
        attn_dropout=p,
        embed_dropout=p,
        out_dropout=p,
    )


def batch(lengths: dict[str, int] | None = None) -> tuple[dict, dict]:
    """Padding of every kind: end padding, a gap, a sample with no audio, two trailing columns empty."""
    lengths = lengths or {m: LENGTH for m in MODALITIES}
    g = torch.Generator().manual_seed(0)
    xs = {m: torch.randn(4, lengths[m], DIMS[m], generator=g) for m in MODALITIES}
    masks = {m: torch.ones(4, lengths[m], dtype=torch.bool) for m in MODALITIES}
    for m in MODALITIES:
        masks[m][:, lengths[m] - 2 :] = False  # padding in every sample and modality: trimmed
    masks["text"][0, 3:] = False
    masks["vision"][1, 2:4] = False
    masks["audio"][2] = False  # a clip without audio
    for m in MODALITIES:
        xs[m] = xs[m] * masks[m].unsqueeze(-1)
    return xs, masks


def grads(model: torch.nn.Module, xs: dict, masks: dict) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    a, b = model(xs, masks)
    if isinstance(a, dict):  # autoencoder: reconstructions, hidden states
        a, b = (
            torch.cat([a[m].flatten() for m in MODALITIES]),
            torch.cat([b[m].flatten() for m in b]),
        )
    (a.square().sum() + b.sum()).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("encoder", ["transformer", "lstm"])
def test_grouped_aemt_equals_one_by_one(encoder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = AEMT(cfg(encoder))
    xs, masks = batch()
    calls = []
    original = grouped_module.run_stacks
    monkeypatch.setattr(
        grouped_module, "run_stacks", lambda *a, **k: calls.append(len(a[0])) or original(*a, **k)
    )
    with torch.no_grad():
        model.eval()
        grouped = model(xs, masks)
        model.cfg.grouped = False
        alone = model(xs, masks)
    # transformer: encoders (3), cross (6), fusion (3); LSTM encoders cannot be grouped
    assert calls == ([3, 6, 3] if encoder == "transformer" else [6, 3])
    for a, b in zip(grouped, alone, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    model.train()  # all dropout rates are 0: training-mode gradients must agree too
    model.cfg.grouped = True
    g1 = grads(model, xs, masks)
    model.cfg.grouped = False
    g2 = grads(model, xs, masks)
    assert g1.keys() == g2.keys() == {n for n, _ in model.named_parameters()}
    for name in g2:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-5, msg=name)


def test_unequal_lengths_run_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Text pooled to one vector (length 1) cannot share a group with 9-bin audio/vision."""
    lengths = {"text": 3, "audio": LENGTH, "vision": LENGTH}
    model = AEMT(cfg("transformer", lengths)).eval()
    called = []
    monkeypatch.setattr(grouped_module, "run_stacks", lambda *a, **k: called.append(1))
    xs, masks = batch(lengths)
    with torch.no_grad():
        pred, z = model(xs, masks)
    assert not called and torch.isfinite(pred).all() and z.shape == (4, 6 * 8)


@pytest.mark.parametrize("cross", [False, True])
def test_run_stacks_equals_each_stack(cross: bool) -> None:
    torch.manual_seed(1)
    stacks = [
        TransformerStack(
            d=8, n_heads=2, n_layers=2, ff_mult=4, dropout=0.0, attn_dropout=0.0, cross=cross
        ).eval()
        for _ in range(3)
    ]
    x = torch.randn(3, 2, 5, 8)  # [G, B, Lq, d]
    src = torch.randn(3, 2, 6, 8) if cross else None  # [G, B, Lk, d]
    mask = torch.rand(3, 2, 6 if cross else 5) > 0.3  # [G, B, Lk]
    mask[1, 0] = False  # a member sample with no valid key
    out = run_stacks(stacks, x, mask, src)
    for g, stack in enumerate(stacks):
        ref = stack(x[g], mask[g], src=src[g] if cross else None)
        torch.testing.assert_close(out[g], ref, rtol=1e-5, atol=1e-6)


def test_grouped_training_with_dropout_reaches_every_parameter() -> None:
    torch.manual_seed(2)
    model = AEMT(cfg("transformer", p=0.2)).train()
    xs, masks = batch()
    g = grads(model, xs, masks)
    assert set(g) == {n for n, _ in model.named_parameters()}
    assert all(torch.isfinite(t).all() for t in g.values())
    with pytest.raises(ValueError, match="same number of layers"):
        run_stacks(
            [model.cross["text_from_audio"], model.fusion["text"]],
            torch.zeros(2, 1, 3, 8),
            torch.ones(2, 1, 3, dtype=torch.bool),
        )


def test_grouped_autoencoders_equal_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(3)
    model = MultimodalAutoencoder(cfg("transformer"))
    xs, masks = batch()
    calls = []
    original = grouped_module.decoder_block
    monkeypatch.setattr(
        grouped_module,
        "decoder_block",
        lambda *a, **k: calls.append(len(a[0])) or original(*a, **k),
    )
    with torch.no_grad():
        model.eval()
        rec1, hid1 = model(xs, masks)
        model.cfg.grouped = False
        rec2, hid2 = model(xs, masks)
    assert calls == [3] * model.cfg.dec_layers
    for m in MODALITIES:
        assert rec1[m].shape == xs[m].shape and hid1[m].shape == (4, LENGTH, 8)
        torch.testing.assert_close(rec1[m], rec2[m], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(hid1[m], hid2[m], rtol=1e-5, atol=1e-6)
    model.train()
    model.cfg.grouped = True
    g1 = grads(model, xs, masks)
    model.cfg.grouped = False
    g2 = grads(model, xs, masks)
    assert g1.keys() == g2.keys() == {n for n, _ in model.named_parameters()}
    for name in g2:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-4, msg=name)


def test_grouped_switch_is_recorded_and_old_parameter_names_load() -> None:
    config = cfg("transformer")
    assert config.to_dict()["grouped"] is True
    assert ModelConfig.from_dict({**config.to_dict(), "grouped": False}).grouped is False
    model = AEMT(config)
    state = model.state_dict()
    old = {  # feed-forward layers were an nn.Sequential: ff.0 and ff.3
        k.replace(".ff.fc1.", ".ff.0.").replace(".ff.fc2.", ".ff.3."): v for k, v in state.items()
    }
    assert any(".ff.0." in k for k in old)
    AEMT(config).load_state_dict(upgrade_state_dict(old))  # strict: every name maps back
