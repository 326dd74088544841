"""Losses and batch transforms of AE-MT pretraining and fine-tuning (SPEC §6).

- :func:`masked_mse`: reconstruction loss over valid positions only.
- :func:`tamper_batch`: modality-consistency detection (MCD) corruption of a batch.
- :func:`polarity` and :func:`contrastive_loss`: the supervised contrastive auxiliary task (SupCon by
  default; paper eq. 18 and InfoNCE selectable).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CONTRASTIVE_FORMS: tuple[str, ...] = ("supcon", "paper", "infonce")


def masked_mse(recon: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Mean squared error over valid positions and all feature dims.

    recon, target: [B, L, D]; mask: [B, L] bool (True = valid). With no valid position at all the
    result is ``0 * recon.sum()`` (zero, still attached to the graph).
    """
    if recon.shape != target.shape:
        raise ValueError(f"masked_mse: recon {tuple(recon.shape)} != target {tuple(target.shape)}")
    weight = mask.to(recon.dtype).unsqueeze(-1)  # [B, L, 1]
    n_valid = weight.sum() * recon.shape[-1]
    if n_valid.item() == 0:
        return recon.sum() * 0.0
    sq = (recon - target).pow(2) * weight  # [B, L, D]
    return sq.sum() / n_valid


def tamper_batch(
    xs: dict[str, Tensor],
    masks: dict[str, Tensor],
    p: float,
    generator: torch.Generator,
    donors: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor, Tensor]:
    """Replace, with probability ``p`` per sample, one uniformly chosen modality by another sample's.

    xs[m]: [B, L_m, D_m]; masks[m]: [B, L_m] bool. The donor is a uniformly chosen *other* sample of the
    batch, or, when ``donors = (donor_xs, donor_masks)`` is given (rows [B, ...] chosen by the caller, e.g.
    another clip of the same video), sample i's donor is row i of those; both the features and the mask
    of that modality are copied. Returns
    ``(xs2, masks2, labels [B] float 0/1, modality_index [B] long)`` where ``modality_index`` indexes
    ``list(xs)`` (the dict's key order) and is -1 for untampered samples. A batch of 1 is never tampered.
    Random draws use ``generator`` (on its own device) so that runs are reproducible.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"tamper_batch: p must be in [0, 1]; got {p}")
    names = list(xs)
    first = xs[names[0]]
    batch, device = first.shape[0], first.device
    gdev = generator.device
    if batch < 2:
        labels = torch.zeros(batch, device=device)
        return (
            dict(xs),
            dict(masks),
            labels,
            torch.full((batch,), -1, dtype=torch.long, device=device),
        )
    tampered = torch.rand(batch, generator=generator, device=gdev) < p  # [B]
    which = torch.randint(len(names), (batch,), generator=generator, device=gdev)  # [B]
    # donor = i + offset (mod B) with offset in 1..B-1: uniform over the other samples, never itself
    offset = torch.randint(1, batch, (batch,), generator=generator, device=gdev)  # [B]
    donor = (torch.arange(batch, device=gdev) + offset) % batch  # [B]
    tampered, which, donor = tampered.to(device), which.to(device), donor.to(device)
    modality_index = torch.where(tampered, which, torch.full_like(which, -1))  # [B]
    xs2: dict[str, Tensor] = {}
    masks2: dict[str, Tensor] = {}
    for k, m in enumerate(names):
        sel = modality_index == k  # [B]
        other_x = xs[m][donor] if donors is None else donors[0][m]  # [B, L_m, D_m]
        other_m = masks[m][donor] if donors is None else donors[1][m]  # [B, L_m]
        xs2[m] = torch.where(sel[:, None, None], other_x, xs[m])
        masks2[m] = torch.where(sel[:, None], other_m, masks[m])
    return xs2, masks2, tampered.to(first.dtype), modality_index


def polarity(labels: Tensor) -> Tensor:
    """Sign of each label as long: -1 (negative), 0 (exactly 0 = neutral), +1 (positive)."""
    return torch.sign(labels).long()


def contrastive_loss(
    z: Tensor,
    z_sp: Tensor,
    pol_m: Tensor,
    pol_uni: Tensor,
    tau: float = 0.1,
    form: str = "supcon",
) -> Tensor:
    """Supervised contrastive loss with strong positives, weak positives and negatives (SPEC §6).

    z, z_sp: [B, k] anchor view and strong-positive (dropout) view; pol_m: [B] polarity of the M label;
    pol_uni: [B, 3] polarities of T, A, V. Similarities are cosine / ``tau``. For clip i: the strong
    positive is its dropout view; weak positives are the clips j != i whose three unimodal polarities all
    equal i's; negatives are the clips j with ``pol_m[j] == -pol_m[i] != 0``. A pair is never both: a
    negative is not a weak positive.

    - ``form="supcon"`` (default): SupCon's "L_out" over the two-view batch of 2B samples. Every sample
      of either view is an anchor; its positives are the other view of the same clip and both views of
      each weak positive; each positive p gives one term ``-log(e^s_ip / sum_{a != i} e^s_ia)`` with
      EVERY other sample of the two-view batch in the denominator; terms are averaged per anchor, then
      over anchors. >= 0, and a near-duplicate strong positive cannot hide the weak positives' terms.
    - ``form="paper"`` (eq. 18 as written): ``-log[(e^s_sp + sum e^s_wp) / sum e^s_neg]``, positives
      not in the denominator (unbounded below in practice; docs/method.md).
    - ``form="infonce"``: ``-log[(e^s_sp + sum e^s_wp) / (e^s_sp + sum e^s_wp + sum e^s_neg)]``.

    `paper` and `infonce` average over anchors (first view) with at least one negative and return
    ``0 * z.sum()`` when no anchor has one. Computed with log-sum-exp; free of NaN gradients.
    """
    if form not in CONTRASTIVE_FORMS:
        raise ValueError(f"contrastive_loss: form must be one of {CONTRASTIVE_FORMS}; got {form!r}")
    if z.shape != z_sp.shape or z.dim() != 2:
        raise ValueError(
            f"contrastive_loss: z {tuple(z.shape)} and z_sp {tuple(z_sp.shape)} must be [B, k]"
        )
    if tau <= 0:
        raise ValueError(f"contrastive_loss: tau must be > 0; got {tau}")
    batch = z.shape[0]
    pol_m = pol_m.reshape(batch)
    pol_uni = pol_uni.reshape(batch, -1)
    zn = F.normalize(z, dim=-1)  # [B, k]
    zspn = F.normalize(z_sp, dim=-1)  # [B, k]
    eye = torch.eye(batch, dtype=torch.bool, device=z.device)
    neg = (pol_m[None, :] == -pol_m[:, None]) & (pol_m[:, None] != 0)  # [B, B]
    weak = (pol_uni[:, None, :] == pol_uni[None, :, :]).all(-1) & ~eye & ~neg  # [B, B]
    if form == "supcon":
        return _supcon(zn, zspn, weak, tau)
    return _with_negatives(zn, zspn, weak, neg, tau, form)


def _supcon(zn: Tensor, zspn: Tensor, weak: Tensor, tau: float) -> Tensor:
    """SupCon L_out over the two views; zn, zspn [B, k] unit vectors; weak [B, B] bool."""
    batch = zn.shape[0]
    views = torch.cat([zn, zspn])  # [2B, k]
    sim = views @ views.t() / tau  # [2B, 2B]
    eye = torch.eye(2 * batch, dtype=torch.bool, device=zn.device)
    logits = sim.masked_fill(eye, float("-inf"))  # an anchor is never its own contrast
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # [2B, 2B]
    strong = eye.roll(batch, dims=1)  # [2B, 2B]: i <-> i + B, the other view of the same clip
    positives = strong | weak.repeat(2, 2)  # [2B, 2B]: both views of each weak positive
    terms = log_prob.masked_fill(~positives, 0.0).sum(1)  # [2B]
    return (-terms / positives.sum(1)).mean()


def _with_negatives(
    zn: Tensor, zspn: Tensor, weak: Tensor, neg: Tensor, tau: float, form: str
) -> Tensor:
    """Eq. 18 (`paper`) or InfoNCE over the first view's anchors that have a negative."""
    sim = zn @ zn.t() / tau  # [B, B]
    s_sp = (zn * zspn).sum(-1, keepdim=True) / tau  # [B, 1]
    has_neg = neg.any(-1)  # [B]
    if not bool(has_neg.any()):
        return zn.sum() * 0.0 + zspn.sum() * 0.0
    minus_inf = torch.finfo(sim.dtype).min
    pos_logits = torch.cat([s_sp, sim.masked_fill(~weak, minus_inf)], dim=1)  # [B, 1 + B]
    # rows without negatives get a harmless finite row (dropped below) so no NaN reaches the gradient
    neg_logits = sim.masked_fill(~neg, minus_inf)  # [B, B]
    neg_logits = torch.where(has_neg[:, None], neg_logits, torch.zeros_like(neg_logits))
    log_pos = torch.logsumexp(pos_logits, dim=1)  # [B]
    if form == "paper":
        log_den = torch.logsumexp(neg_logits, dim=1)  # [B]
    else:
        log_den = torch.logsumexp(torch.cat([pos_logits, neg_logits], dim=1), dim=1)  # [B]
    per_anchor = log_den - log_pos  # [B]
    return per_anchor[has_neg].mean()
