"""The pretext tasks of pretraining (SPEC §6) and their diagnostics.

Loss per batch: the batch is tampered (`tamper_batch`, one modality swapped with a donor's with
probability `p_tamper`) and ONE forward gives both terms,
`L_ae = sum_m masked_mse(recon_m, x_m) + lambda1 * BCE(consistency logits, tampered)`; with lambda1 == 0
the batch is left intact and there is no consistency classifier.

Diagnostics in history.csv, so that users can see what was learned: holdout MCD accuracy (50% is
chance) and each modality's holdout reconstruction error `valid_recon_<m>` next to `mean_recon_<m>`, the
error of predicting every position as the per-feature mean of the pretraining clips (audio
reconstruction is nearly an identity map, reference/science-notes.md §5).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from aemt.constants import MODALITIES
from aemt.train.donors import SameVideoDonors
from aemt.train.losses import masked_mse, tamper_batch
from aemt.train.runtime import Runtime, epoch_generator
from aemt.train.splits import Tensors, batch_indices, gather


def pretrain_losses(
    model: Any,
    xs: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    cfg: Any,
    generator: torch.Generator,
    runtime: Runtime,
    donors: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]] | None = None,
) -> dict[str, torch.Tensor]:
    """loss / recon / recon_<m> / consistency / correct (right MCD calls) for one batch.

    `model` is a PretrainModel, `cfg` its PretrainConfig; `donors` are tampering donor rows
    (`donor_rows`) or None for donors from the batch.
    """
    use_mcd = model.consistency is not None and cfg.lambda1 > 0
    if use_mcd:  # tampered [B]
        xs, masks, tampered, _ = tamper_batch(xs, masks, cfg.p_tamper, generator, donors)
    with runtime.autocast():
        recon, hidden = model.autoencoder(xs, masks)  # recon[m] [B, L, D_m], hidden[m] [B, L, d]
        parts = {m: masked_mse(recon[m].float(), xs[m], masks[m]) for m in MODALITIES}
        rec = sum(parts.values())
        out: dict[str, torch.Tensor] = {"recon": rec, **{f"recon_{m}": parts[m] for m in parts}}
        if use_mcd:
            logits = model.consistency(hidden, masks).float()  # [B]
            bce = F.binary_cross_entropy_with_logits(logits, tampered.float())
            out["consistency"] = bce
            out["correct"] = ((logits > 0).float() == tampered.float()).float().sum()
            out["loss"] = rec + cfg.lambda1 * bce
        else:
            out["loss"] = rec
    return out


def donor_rows(
    data: Tensors,
    donors: SameVideoDonors,
    idx: torch.Tensor,
    generator: torch.Generator,
    runtime: Runtime,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Rows of `data` that serve as tampering donors for the batch `idx` (same video when possible)."""
    return gather(data.xs, data.masks, donors.draw(idx, generator), runtime.device)


def evaluate_pretrain(
    model: Any,
    data: Tensors,
    cfg: Any,
    runtime: Runtime,
    donors: SameVideoDonors | None = None,
) -> dict[str, float]:
    """Holdout losses; the tampering is the same every epoch (fixed generator) so epochs compare."""
    model.eval()
    tamper = epoch_generator(cfg.seed, 0, 2)
    sums = Sums()
    with torch.inference_mode():
        for idx in batch_indices(len(data), cfg.batch_size):
            bx, bm = gather(data.xs, data.masks, idx, runtime.device)
            donor = None if donors is None else donor_rows(data, donors, idx, tamper, runtime)
            sums.add(pretrain_losses(model, bx, bm, cfg, tamper, runtime, donor), len(idx))
    return sums.row("valid")


def mean_baseline(fit: Tensors, holdout: Tensors) -> dict[str, float]:
    """`mean_recon_<m>`: holdout masked MSE of predicting each feature's mean over the fitting clips."""
    out = {}
    for m in MODALITIES:
        valid = fit.xs[m][fit.masks[m]]  # [n_valid, D]
        mean = valid.mean(0) if len(valid) else torch.zeros(fit.xs[m].shape[-1])  # [D]
        guess = mean.expand_as(holdout.xs[m])  # [N, L, D]
        out[f"mean_recon_{m}"] = float(masked_mse(guess, holdout.xs[m], holdout.masks[m]))
    return out


class Sums:
    """Running sample-weighted sums of batch losses (kept on device: one sync per epoch)."""

    def __init__(self) -> None:
        self.totals: dict[str, torch.Tensor] = {}
        self.n = 0

    def add(self, parts: dict[str, torch.Tensor], n: int) -> None:
        for k, v in parts.items():
            v = v.detach().float() * (1 if k == "correct" else n)
            self.totals[k] = self.totals[k] + v if k in self.totals else v
        self.n += n

    def row(self, prefix: str) -> dict[str, float]:
        """`<prefix>_loss`, `_recon`, `_consistency`; the validation row adds the MCD accuracy and each
        modality's reconstruction error."""
        get = {k: float(v) / max(self.n, 1) for k, v in self.totals.items()}
        nan = float("nan")
        row = {
            f"{prefix}_loss": get["loss"],
            f"{prefix}_recon": get["recon"],
            f"{prefix}_consistency": get.get("consistency", nan),
        }
        if prefix == "valid":
            row["valid_consistency_acc"] = get.get("correct", nan)
            row |= {f"valid_recon_{m}": get[f"recon_{m}"] for m in MODALITIES}
        return row
