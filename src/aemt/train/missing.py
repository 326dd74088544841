"""Missing modalities as the models see them: a dropped step is masked (mask False) and zeroed.

Used by robust training (`finetune.modality_dropout`: whole modalities dropped per training sample) and by
the robustness evaluation (:mod:`aemt.evaluate.robustness`: per-step random dropping, whole-modality
absence). A dropped step looks exactly like a padded one: the attention never reads it, the masked read-outs
skip it, and a sample whose modality has no valid step left gets a zero read-out for it (the models' key
padding handles that case, see :mod:`aemt.models.layers`).

Text is treated like audio and vision. Our text features are token-state vectors, not token ids, so a
dropped token becomes a masked zero step; MMSA instead replaces the token id by [UNK] before BERT, which
would need the text model at evaluation time. [CLS] (position 0) is not exempt.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aemt.constants import MODALITIES


def drop_steps(
    xs: dict[str, Tensor], masks: dict[str, Tensor], dropped: dict[str, Tensor]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """New inputs with the steps `dropped[m]` masked and zeroed; modalities not in `dropped` unchanged.

    xs[m] [B, L_m, D_m]; masks[m] [B, L_m] bool (True = valid); dropped[m] [B, L_m] bool (True = drop).
    """
    out_x, out_m = dict(xs), dict(masks)
    for m, gone in dropped.items():
        keep = masks[m] & ~gone.to(masks[m].device)  # [B, L_m]
        out_m[m] = keep
        out_x[m] = xs[m].masked_fill(~keep.unsqueeze(-1), 0.0)  # [B, L_m, D_m]
    return out_x, out_m


def modality_dropout(
    masks: dict[str, Tensor], p: float, generator: torch.Generator
) -> dict[str, Tensor]:
    """Whole modalities to drop per sample: each one independently with probability `p`, never all three.

    A sample that would lose every modality keeps one, chosen uniformly (so the rate of dropping one
    given modality is p - p**3 / 3). Random numbers come from the CPU `generator` (a fixed count per call,
    so a run is reproducible and resumable). Returns dropped[m] [B, L_m] bool on the masks' device.
    """
    b = next(iter(masks.values())).shape[0]
    gone = torch.rand(b, len(MODALITIES), generator=generator) < p  # [B, 3]
    spare = torch.randint(len(MODALITIES), (b,), generator=generator)  # [B]
    every = gone.all(dim=1)  # [B]
    gone[every, spare[every]] = False
    return {
        m: gone[:, j, None].to(masks[m].device).expand_as(masks[m])
        for j, m in enumerate(MODALITIES)
    }
