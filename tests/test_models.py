"""Tests of aemt.models: shapes, gradients, padding invariance, all-masked modalities, weight transfer."""

from __future__ import annotations

import pytest
import torch

from aemt.constants import MODALITIES
from aemt.models.aemt import AEMT
from aemt.models.autoencoder import MultimodalAutoencoder
from aemt.models.config import ModelConfig
from aemt.models.consistency import ConsistencyClassifier
from aemt.models.dropout import dropout
from aemt.models.encoder import build_encoder
from aemt.models.layers import TransformerStack
from aemt.train.losses import masked_mse

ENCODERS = ["transformer", "lstm"]
DIMS = {"text": 7, "audio": 3, "vision": 5}
LENGTHS = {"text": 6, "audio": 8, "vision": 8}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_cfg(encoder: str = "transformer", **kw) -> ModelConfig:
    base = dict(
        dims=DIMS,
        lengths=LENGTHS,
        d_model=8,
        n_heads=2,
        encoder=encoder,
        enc_layers=2,
        dec_layers=1,
        cross_layers=1,
        self_layers=1,
    )
    base.update(kw)
    return ModelConfig(**base)


def make_batch(b: int = 5, seed: int = 0) -> tuple[dict, dict]:
    """Features zero at padded positions; text end-padded, vision with a gap, audio partly padded."""
    g = torch.Generator().manual_seed(seed)
    xs = {m: torch.randn(b, LENGTHS[m], DIMS[m], generator=g) for m in MODALITIES}
    masks = {m: torch.ones(b, LENGTHS[m], dtype=torch.bool) for m in MODALITIES}
    for i in range(b):
        masks["text"][i, 2 + i % 4 :] = False
        masks["audio"][i, 8 - i % 3 :] = False
        masks["vision"][i, 2 + i % 3 : 4 + i % 3] = False
    for m in MODALITIES:
        xs[m] = xs[m] * masks[m].unsqueeze(-1)
    return xs, masks


def scramble_padding(xs: dict, masks: dict, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in MODALITIES:
        noise = 100 * torch.randn(xs[m].shape, generator=g)
        out[m] = torch.where(masks[m].unsqueeze(-1), xs[m], noise)
    return out


def assert_grads(model: torch.nn.Module) -> None:
    for name, p in model.named_parameters():
        assert p.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in model.parameters())


def test_config_roundtrip_and_validation() -> None:
    cfg = tiny_cfg()
    again = ModelConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.kernels == {"text": 5, "audio": 3, "vision": 1}
    with pytest.raises(ValueError, match="bogus"):
        ModelConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ValueError, match="n_heads"):
        tiny_cfg(d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="odd"):
        tiny_cfg(kernels={"text": 4, "audio": 3, "vision": 1})
    with pytest.raises(ValueError, match="encoder"):
        tiny_cfg(encoder="gru")


@pytest.mark.parametrize("encoder", ENCODERS)
def test_aemt_shapes_finite_and_backward(encoder: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder)
    model = AEMT(cfg).train()
    xs, masks = make_batch()
    pred, z = model(xs, masks)
    assert pred.shape == (5,) and z.shape == (5, 6 * cfg.d_model)
    assert torch.isfinite(pred).all() and torch.isfinite(z).all()
    (pred.pow(2).mean() + z.pow(2).mean()).backward()
    assert_grads(model)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_autoencoder_and_consistency_shapes_and_backward(encoder: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder)
    ae, clf = MultimodalAutoencoder(cfg).train(), ConsistencyClassifier(cfg).train()
    xs, masks = make_batch()
    recon, hidden = ae(xs, masks)
    for m in MODALITIES:
        assert recon[m].shape == xs[m].shape
        assert hidden[m].shape == (5, LENGTHS[m], cfg.d_model)
        assert torch.isfinite(recon[m]).all() and torch.isfinite(hidden[m]).all()
        assert torch.all(hidden[m][~masks[m]] == 0)  # nothing is read out at padded positions
    logits = clf(hidden, masks)
    assert logits.shape == (5,)
    loss = sum(masked_mse(recon[m], xs[m], masks[m]) for m in MODALITIES)
    loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(5))
    loss.backward()
    assert_grads(ae)
    assert_grads(clf)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_padded_values_do_not_change_outputs(encoder: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder)
    xs, masks = make_batch()
    xs_bad = scramble_padding(xs, masks)
    assert not all(torch.equal(xs[m], xs_bad[m]) for m in MODALITIES)

    model = AEMT(cfg).eval()
    with torch.no_grad():
        pred, z = model(xs, masks)
        pred2, z2 = model(xs_bad, masks)
    torch.testing.assert_close(pred2, pred)
    torch.testing.assert_close(z2, z)

    ae, clf = MultimodalAutoencoder(cfg).eval(), ConsistencyClassifier(cfg).eval()
    with torch.no_grad():
        recon, hidden = ae(xs, masks)
        recon2, hidden2 = ae(xs_bad, masks)
        logits, logits2 = clf(hidden, masks), clf(hidden2, masks)
    for m in MODALITIES:
        valid = masks[m]
        torch.testing.assert_close(hidden2[m][valid], hidden[m][valid])
        torch.testing.assert_close(recon2[m][valid], recon[m][valid])
    torch.testing.assert_close(logits2, logits)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_all_masked_modality_is_finite(encoder: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder)
    xs, masks = make_batch()
    masks["audio"][1] = False  # one clip without audio
    masks["text"][3] = False  # one clip without text
    xs = {m: xs[m] * masks[m].unsqueeze(-1) for m in MODALITIES}
    model = AEMT(cfg).train()
    pred, z = model(xs, masks)
    assert torch.isfinite(pred).all() and torch.isfinite(z).all()
    assert torch.all(z[3, : 2 * cfg.d_model] == 0)  # no text position: the text read-out is zero
    pred.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    # the values behind an all-masked modality do not matter either
    model.eval()
    with torch.no_grad():
        ref, _ = model(xs, masks)
        out, _ = model(scramble_padding(xs, masks, seed=5), masks)
    torch.testing.assert_close(out, ref)

    # a whole batch without audio (key mask empty for every sample)
    masks_none = {**masks, "audio": torch.zeros_like(masks["audio"])}
    ae = MultimodalAutoencoder(cfg).train()
    recon, hidden = ae(xs, masks_none)
    with torch.no_grad():
        pred, z = model(xs, masks_none)
    assert torch.isfinite(pred).all() and torch.isfinite(z).all()
    assert all(
        torch.isfinite(recon[m]).all() and torch.isfinite(hidden[m]).all() for m in MODALITIES
    )


@pytest.mark.parametrize("encoder", ENCODERS)
def test_load_pretrained_encoders_transfers_weights(encoder: str) -> None:
    cfg = tiny_cfg(encoder)
    torch.manual_seed(0)
    ae = MultimodalAutoencoder(cfg)
    torch.manual_seed(1)
    model = AEMT(cfg)
    state = ae.state_dict()
    key = "autoencoders.audio.encoder.conv.weight"
    assert not torch.equal(model.encoders["audio"].conv.weight, state[key])
    other_before = {
        k: v.clone() for k, v in model.state_dict().items() if not k.startswith("encoders.")
    }

    loaded = model.load_pretrained_encoders(state)
    own = model.state_dict()
    expected = sorted(k for k in own if k.startswith("encoders."))
    assert sorted(loaded) == expected
    for name in loaded:
        _, m, rest = name.split(".", 2)
        torch.testing.assert_close(
            own[name], state[f"autoencoders.{m}.encoder.{rest}"], rtol=0, atol=0
        )
    for k, v in other_before.items():  # nothing else touched
        assert torch.equal(own[k], v)
    # the transferred encoder computes exactly what the autoencoder's encoder computes
    xs, masks = make_batch()
    ae.eval(), model.eval()
    with torch.no_grad():
        _, hidden = ae(xs, masks)
        for m in MODALITIES:
            torch.testing.assert_close(model.encoders[m](xs[m], masks[m]), hidden[m])


def test_load_pretrained_encoders_rejects_mismatch() -> None:
    model = AEMT(tiny_cfg())
    wider = MultimodalAutoencoder(tiny_cfg(dims={**DIMS, "audio": 4})).state_dict()
    with pytest.raises(ValueError, match=r"autoencoders\.audio\.encoder\.conv\.weight"):
        model.load_pretrained_encoders(wider)
    lstm = MultimodalAutoencoder(tiny_cfg("lstm")).state_dict()
    with pytest.raises(ValueError, match="autoencoders.text.encoder"):
        model.load_pretrained_encoders(lstm)


def test_build_encoder_interface() -> None:
    xs, masks = make_batch()
    for encoder in ENCODERS:
        enc = build_encoder(tiny_cfg(encoder), "vision").eval()
        h = enc(xs["vision"], masks["vision"])
        assert h.shape == (5, LENGTHS["vision"], 8) and torch.isfinite(h).all()
    with pytest.raises(ValueError, match="modality"):
        build_encoder(tiny_cfg(), "smell")


@pytest.mark.parametrize("encoder", ENCODERS)
def test_autoencoder_learns_to_reconstruct(encoder: str) -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(encoder, dropout=0.0, attn_dropout=0.0, embed_dropout=0.0)
    ae = MultimodalAutoencoder(cfg).train()
    xs, masks = make_batch(8)
    opt = torch.optim.Adam(ae.parameters(), lr=1e-2)

    def loss_fn() -> torch.Tensor:
        recon, _ = ae(xs, masks)
        return sum(masked_mse(recon[m], xs[m], masks[m]) for m in MODALITIES)

    first = loss_fn().item()
    for _ in range(60):
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_aemt_fits_a_tiny_regression() -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg(dropout=0.0, attn_dropout=0.0, embed_dropout=0.0, out_dropout=0.0)
    model = AEMT(cfg).train()
    xs, masks = make_batch(8)
    y = torch.linspace(-1, 1, 8)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    first = torch.nn.functional.mse_loss(model(xs, masks)[0], y).item()
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(xs, masks)[0], y)
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first


@pytest.mark.parametrize("encoder", ENCODERS)
def test_each_sample_alone_matches_the_batch(encoder: str) -> None:
    """Padding of other samples in the batch never changes a sample's outputs."""
    torch.manual_seed(0)
    model = AEMT(tiny_cfg(encoder)).eval()
    xs, masks = make_batch()
    with torch.no_grad():
        pred, z = model(xs, masks)
        for i in range(5):
            p1, z1 = model(
                {m: xs[m][i : i + 1] for m in MODALITIES},
                {m: masks[m][i : i + 1] for m in MODALITIES},
            )
            torch.testing.assert_close(p1, pred[i : i + 1])
            torch.testing.assert_close(z1, z[i : i + 1])


@pytest.mark.parametrize("cross", [False, True])
def test_attention_ignores_padded_keys(cross: bool) -> None:
    """Keys at padded positions (with arbitrary content) do not change any valid output."""
    torch.manual_seed(0)
    stack = TransformerStack(
        d=8, n_heads=2, n_layers=2, ff_mult=2, dropout=0.0, attn_dropout=0.0, cross=cross
    ).eval()
    x = torch.randn(3, 5, 8)
    src = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 1, 0, 0]], dtype=torch.bool)
    junk = 50 * torch.randn(3, 5, 8)
    if cross:  # only the key/value source is masked; queries are all kept
        out = stack(x, mask, src=src)
        out2 = stack(x, mask, src=torch.where(mask[..., None], src, junk))
        torch.testing.assert_close(out2, out)
    else:
        out = stack(x, mask)
        out2 = stack(torch.where(mask[..., None], x, junk), mask)
        torch.testing.assert_close(out2[mask], out[mask])
    # and the same sample with its padding cut off gives the same valid outputs
    first = stack(x[2:3, :3], mask[2:3, :3], src=src[2:3, :3] if cross else None)
    torch.testing.assert_close(
        first[0, [0, 2]] if not cross else first[0], out[2, [0, 2]] if not cross else out[2, :3]
    )


def test_fast_dropout_rate_and_scale() -> None:
    x = torch.ones(400_000)
    torch.manual_seed(0)
    for p in (0.1, 0.5):
        y = dropout(x, p, training=True)
        kept = (y != 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005
        assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))
        assert abs(y.mean().item() - 1.0) < 0.01
    assert dropout(x, 0.5, training=False) is x
    assert torch.equal(dropout(x, 1.0, training=True), torch.zeros_like(x))


def test_explicit_attention_matches_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    """The training path (explicit weights + dropout) equals SDPA when dropout keeps everything."""
    import aemt.models.layers as layers

    torch.manual_seed(0)
    attn = layers.Attention(d=8, n_heads=2, attn_dropout=0.25, cross=True)
    torch.nn.init.zeros_(attn.out.bias)  # so that the dropout scale can be undone on the output
    x, src = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    mask = torch.tensor(
        [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.bool
    )
    keys = layers.KeyMask(mask)
    ref = attn.eval()(x, src, keys)  # SDPA
    monkeypatch.setattr(
        layers, "keep_mask", lambda shape, p, device: torch.ones(shape, dtype=torch.bool)
    )
    out = attn.train()(x, src, keys) * (1 - 0.25)  # undo the inverted-dropout scale
    torch.testing.assert_close(out, ref)
    assert torch.all(ref[2] == 0)  # no valid key: zero attention output
