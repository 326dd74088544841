"""Tests of aemt.train.losses: masked MSE, MCD tampering, polarity and the contrastive loss."""

from __future__ import annotations

import math

import pytest
import torch

from aemt.train.losses import contrastive_loss, masked_mse, polarity, tamper_batch

MODS = ("text", "audio", "vision")


def _batch(b: int, seed: int = 0) -> tuple[dict, dict]:
    g = torch.Generator().manual_seed(seed)
    xs = {
        "text": torch.randn(b, 4, 3, generator=g),
        "audio": torch.randn(b, 5, 2, generator=g),
        "vision": torch.randn(b, 5, 6, generator=g),
    }
    masks = {m: torch.rand(b, x.shape[1], generator=g) > 0.3 for m, x in xs.items()}
    return xs, masks


# ---------------------------------------------------------------- masked_mse


def test_masked_mse_hand_value_and_ignores_padding() -> None:
    target = torch.zeros(1, 3, 2)
    recon = torch.tensor([[[1.0, 3.0], [2.0, 0.0], [100.0, -50.0]]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss = masked_mse(recon, target, mask)
    assert loss.item() == pytest.approx((1 + 9 + 4 + 0) / 4)
    loss.backward()
    assert torch.all(recon.grad[0, 2] == 0)  # padded position gets no gradient
    recon2 = recon.detach().clone()
    recon2[0, 2] = torch.tensor([-7.0, 1e6])
    assert masked_mse(recon2, target, mask).item() == pytest.approx(loss.item())


def test_masked_mse_no_valid_position_is_zero_with_graph() -> None:
    recon = torch.randn(2, 3, 4, requires_grad=True)
    loss = masked_mse(recon, torch.ones(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(recon.grad == 0)


# ---------------------------------------------------------------- tamper_batch


def test_tamper_replaces_with_another_sample() -> None:
    xs, masks = _batch(8)
    g = torch.Generator().manual_seed(3)
    for _ in range(20):
        xs2, masks2, labels, idx = tamper_batch(xs, masks, 0.5, g)
        assert labels.shape == (8,) and idx.shape == (8,) and idx.dtype == torch.long
        assert torch.equal(labels, (idx >= 0).float())
        for i in range(8):
            if idx[i] < 0:
                for m in MODS:  # untampered sample unchanged
                    assert torch.equal(xs2[m][i], xs[m][i])
                    assert torch.equal(masks2[m][i], masks[m][i])
                continue
            changed = MODS[int(idx[i])]
            for m in MODS:
                if m != changed:
                    assert torch.equal(xs2[m][i], xs[m][i])
                    assert torch.equal(masks2[m][i], masks[m][i])
            donors = [
                j
                for j in range(8)
                if j != i
                and torch.equal(xs2[changed][i], xs[changed][j])
                and torch.equal(masks2[changed][i], masks[changed][j])
            ]
            assert donors, f"sample {i}: tampered {changed} comes from no other sample"
            assert not torch.equal(xs2[changed][i], xs[changed][i])


def test_tamper_rate_modalities_and_donors_uniform() -> None:
    xs, masks = _batch(2000, seed=1)
    g = torch.Generator().manual_seed(0)
    _, _, labels, idx = tamper_batch(xs, masks, 0.5, g)
    assert abs(labels.mean().item() - 0.5) < 0.04
    counts = torch.bincount(idx[idx >= 0], minlength=3).float() / (idx >= 0).sum()
    assert torch.all((counts - 1 / 3).abs() < 0.05)
    _, _, labels0, _ = tamper_batch(xs, masks, 0.0, g)
    _, _, labels1, _ = tamper_batch(xs, masks, 1.0, g)
    assert labels0.sum() == 0 and labels1.sum() == 2000


def test_tamper_batch_of_one_never_tampered_and_reproducible() -> None:
    xs, masks = _batch(1)
    xs2, masks2, labels, idx = tamper_batch(xs, masks, 1.0, torch.Generator().manual_seed(0))
    assert labels.tolist() == [0.0] and idx.tolist() == [-1]
    assert all(torch.equal(xs2[m], xs[m]) and torch.equal(masks2[m], masks[m]) for m in MODS)
    xs, masks = _batch(6)
    a = tamper_batch(xs, masks, 0.5, torch.Generator().manual_seed(7))
    b = tamper_batch(xs, masks, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(a[3], b[3]) and all(torch.equal(a[0][m], b[0][m]) for m in MODS)
    with pytest.raises(ValueError):
        tamper_batch(xs, masks, 1.5, torch.Generator())


# ---------------------------------------------------------------- polarity / contrastive


def test_polarity_signs() -> None:
    out = polarity(torch.tensor([-0.4, 0.0, 1e-6, 2.0, -0.0]))
    assert out.tolist() == [-1, 0, 1, 1, 0]


def _cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


Z = [[1.0, 0.0, 0.5], [0.8, 0.3, 0.1], [-0.6, 0.9, 0.2], [0.1, -0.7, 1.0]]
ZSP = [[0.9, 0.1, 0.4], [0.7, 0.5, 0.0], [-0.5, 1.0, 0.1], [0.3, -0.6, 0.8]]
POL_M = [1, 1, -1, 0]
POL_UNI = [[1, 1, 0], [1, 1, 0], [-1, 0, 1], [1, 1, 0]]


def _expected(form: str, tau: float) -> float:
    losses = []
    for i in range(4):
        negs = [j for j in range(4) if POL_M[i] != 0 and POL_M[j] == -POL_M[i]]
        if not negs:
            continue
        weak = [j for j in range(4) if j != i and POL_UNI[j] == POL_UNI[i]]
        pos = math.exp(_cos(Z[i], ZSP[i]) / tau) + sum(
            math.exp(_cos(Z[i], Z[j]) / tau) for j in weak
        )
        neg = sum(math.exp(_cos(Z[i], Z[j]) / tau) for j in negs)
        den = neg if form == "paper" else pos + neg
        losses.append(-math.log(pos / den))
    return sum(losses) / len(losses)


@pytest.mark.parametrize("form", ["paper", "infonce"])
@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_contrastive_matches_hand_computation(form: str, tau: float) -> None:
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    loss = contrastive_loss(
        z,
        torch.tensor(ZSP, dtype=torch.float64),
        torch.tensor(POL_M),
        torch.tensor(POL_UNI),
        tau=tau,
        form=form,
    )
    assert loss.item() == pytest.approx(_expected(form, tau), rel=1e-9)
    loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def _supcon_expected(tau: float) -> float:
    """SupCon L_out by hand: 8 anchors (two views), one term per positive, all others below."""
    views = Z + ZSP
    total = 0.0
    for a in range(8):
        i = a % 4
        negs = {j for j in range(4) if POL_M[i] != 0 and POL_M[j] == -POL_M[i]}
        weak = {j for j in range(4) if j != i and POL_UNI[j] == POL_UNI[i] and j not in negs}
        pos = [(a + 4) % 8] + [j for j in weak] + [j + 4 for j in weak]
        den = sum(math.exp(_cos(views[a], views[c]) / tau) for c in range(8) if c != a)
        terms = [-math.log(math.exp(_cos(views[a], views[p]) / tau) / den) for p in pos]
        total += sum(terms) / len(terms)
    return total / 8


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_supcon_matches_hand_computation(tau: float) -> None:
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    z_sp = torch.tensor(ZSP, dtype=torch.float64, requires_grad=True)
    loss = contrastive_loss(z, z_sp, torch.tensor(POL_M), torch.tensor(POL_UNI), tau=tau)
    assert loss.item() == pytest.approx(_supcon_expected(tau), rel=1e-9)
    loss.backward()
    for grad in (z.grad, z_sp.grad):
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_supcon_bounds_and_weak_positives_count() -> None:
    g = torch.Generator().manual_seed(0)
    b, tau = 16, 0.1
    pol = torch.tensor([1, -1] * 8)
    uni = pol[:, None].repeat(1, 3)  # every same-polarity clip is a weak positive
    for _ in range(5):
        z = torch.randn(b, 24, generator=g)
        z_sp = z + 0.02 * torch.randn(b, 24, generator=g)  # near-duplicate strong positive
        sup = contrastive_loss(z, z_sp, pol, uni, tau=tau, form="supcon")
        info = contrastive_loss(z, z_sp, pol, uni, tau=tau, form="infonce")
        assert 0.0 <= sup.item() <= math.log(2 * b - 1) + 2 / tau
        assert sup.item() > 2.0 and info.item() < 0.05  # InfoNCE is swamped; SupCon is not
        # no weak positive at all: only the strong terms, near zero but never negative
        none = contrastive_loss(z, z_sp, pol, torch.arange(b)[:, None].repeat(1, 3), tau=tau)
        assert 0.0 <= none.item() < 0.05
    # the optimum (views identical, classes at opposite poles) is still >= 0
    u = torch.tensor([[1.0, 0.0]] * 8 + [[-1.0, 0.0]] * 8)
    pol2 = torch.tensor([1] * 8 + [-1] * 8)
    best = contrastive_loss(u, u, pol2, pol2[:, None].repeat(1, 3), tau=tau)
    assert best.item() >= 0.0


def test_contrastive_without_negatives_or_positives_never_nan() -> None:
    z = torch.randn(4, 6, requires_grad=True)
    z_sp = torch.randn(4, 6, requires_grad=True)
    for pol_m in ([1, 1, 0, 1], [0, 0, 0, 0], [-1, -1, -1, -1]):
        for form in ("paper", "infonce"):  # no anchor with a negative: zero, still differentiable
            loss = contrastive_loss(
                z, z_sp, torch.tensor(pol_m), torch.ones(4, 3).long(), form=form
            )
            assert loss.item() == 0.0
            loss.backward()
            assert torch.isfinite(z.grad).all() and torch.isfinite(z_sp.grad).all()
        for uni in (torch.ones(4, 3).long(), torch.arange(4)[:, None].repeat(1, 3)):
            loss = contrastive_loss(z, z_sp, torch.tensor(pol_m), uni, form="supcon")
            loss.backward()
            assert torch.isfinite(loss) and loss.item() > 0
            assert torch.isfinite(z.grad).all() and torch.isfinite(z_sp.grad).all()
    one = contrastive_loss(z[:1], z_sp[:1], torch.tensor([1]), torch.ones(1, 3).long())
    assert torch.isfinite(one) and one.item() == pytest.approx(0.0, abs=1e-6)  # one pair


def test_contrastive_mixed_anchors_and_tiny_tau_finite() -> None:
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 12, generator=g, requires_grad=True)
    z_sp = torch.zeros(16, 12)  # a zero view: cosine 0, must not give NaN
    pol_m = torch.tensor([1, -1, 0, 0] * 4)
    for form in ("supcon", "paper", "infonce"):
        z.grad = None
        loss = contrastive_loss(z, z_sp, pol_m, pol_m[:, None].repeat(1, 3), tau=0.01, form=form)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    with pytest.raises(ValueError, match="form"):
        contrastive_loss(z, z_sp, pol_m, pol_m[:, None], form="bogus")


def test_a_negative_is_never_a_weak_positive() -> None:
    """Same unimodal polarities (all neutral) but opposite multimodal polarity: a negative only."""
    g = torch.Generator().manual_seed(1)
    z, z_sp = torch.randn(2, 5, generator=g), torch.randn(2, 5, generator=g)
    pol_m = torch.tensor([1, -1])
    both = contrastive_loss(z, z_sp, pol_m, torch.zeros(2, 3).long())
    apart = contrastive_loss(z, z_sp, pol_m, torch.tensor([[0, 0, 0], [1, 1, 1]]))
    assert both.item() == pytest.approx(apart.item())
