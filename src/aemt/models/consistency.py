"""Modality-consistency detection (MCD) head for pretraining (SPEC §6).

Predicts whether one modality of a sample was swapped with another sample's, from the masked-mean
read-outs ``[pool(H_t); pool(H_a); pool(H_v)]`` [B, 3d]; returns logits for ``BCEWithLogitsLoss``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aemt.constants import MODALITIES
from aemt.models.config import ModelConfig
from aemt.models.layers import masked_mean


class ConsistencyClassifier(nn.Module):
    """MLP 3d -> d -> 1 on pooled hidden states; ``forward(hidden, masks) -> logits [B]``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.net = nn.Sequential(
            nn.Linear(3 * d, d),
            nn.ReLU(),
            nn.Dropout(cfg.out_dropout),
            nn.Linear(d, 1),
        )

    def forward(self, hidden: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        # hidden[m] [B, L_m, d]; masks[m] [B, L_m]
        pooled = torch.cat(
            [masked_mean(hidden[m], masks[m]) for m in MODALITIES], dim=-1
        )  # [B, 3d]
        return self.net(pooled).squeeze(-1)  # [B]
