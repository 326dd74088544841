"""Projection head of the contrastive loss (SPEC §6): a small MLP on AE-MT's fused representation Z,
used only by the contrastive term, so that clustering by polarity happens on its output and not on the
regression head's input (which must keep the sentiment intensity that MAE measures)."""

from __future__ import annotations

from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """Linear(in -> in), ReLU, Linear(in -> out): ``forward(z [B, in]) -> [B, out]``."""

    def __init__(self, *, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, in_dim)
        self.fc2 = nn.Linear(in_dim, out_dim)

    def forward(self, z: Tensor) -> Tensor:
        return self.fc2(self.fc1(z).relu())  # [B, out]
