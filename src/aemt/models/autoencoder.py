"""Per-modality autoencoders for pretraining (SPEC §6) and their joint container.

Transformer autoencoder: ``E_m`` (Conv1D + positions + Transformer encoder) gives ``H_m``; the decoder
``D_m`` starts from input-independent queries (sinusoidal positions + a learned start embedding), so the
only path from ``X_m`` to the reconstruction goes through the memory ``H_m`` (cross-attention with the
memory key padding mask); a Conv1D maps the decoder output back to the normalised input ``X_m`` [B, L, D].

With ``cfg.grouped``, one sequence length for every modality and Transformer encoders, the three encoder
stacks and the three decoders run grouped (:mod:`aemt.models.grouped`, the same result); otherwise one by
one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aemt.constants import MODALITIES
from aemt.models import grouped
from aemt.models.config import ModelConfig
from aemt.models.encoder import build_encoder
from aemt.models.layers import (
    DecoderBlock,
    KeyMask,
    apply_conv,
    sinusoid_table,
    trim_common,
    trim_each,
)


class TransformerAutoencoder(nn.Module):
    """X_m [B, L, D] -> (reconstruction [B, L, D], H_m [B, L, d])."""

    def __init__(self, cfg: ModelConfig, modality: str) -> None:
        super().__init__()
        d, k = cfg.d_model, cfg.kernels[modality]
        self.encoder = build_encoder(cfg, modality)
        self.start = nn.Parameter(torch.randn(d) * 0.02)  # [d] learned start embedding
        self.register_buffer(
            "queries", sinusoid_table(cfg.lengths[modality], d), persistent=False
        )  # [L, d]
        self.layers = nn.ModuleList(
            DecoderBlock(
                d=d,
                n_heads=cfg.n_heads,
                ff_mult=cfg.ff_mult,
                dropout=cfg.dropout,
                attn_dropout=cfg.attn_dropout,
            )
            for _ in range(cfg.dec_layers)
        )
        self.norm = nn.LayerNorm(d)
        self.out = nn.Conv1d(d, cfg.dims[modality], kernel_size=k, padding=k // 2)

    def start_queries(self, b: int, length: int) -> Tensor:
        """The decoder's input-independent queries [B, L, d]: positions + learned start embedding."""
        if length > self.queries.shape[0]:
            self.queries = sinusoid_table(length, self.queries.shape[-1]).to(self.queries)
        return (self.queries[:length] + self.start).expand(b, length, -1)

    def decode(self, h: Tensor, mask: Tensor) -> Tensor:
        # h [B, L, d] memory; mask [B, L] -> reconstruction [B, L, D]
        y = self.start_queries(h.shape[0], h.shape[1])  # [B, L, d]
        keys = KeyMask(mask)
        for layer in self.layers:
            y = layer(y, keys, h, keys)
        y = self.norm(y) * mask.unsqueeze(-1).to(h.dtype)  # [B, L, d]
        return apply_conv(self.out, y)  # [B, L, D]

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x, mask)  # [B, L, d]
        return self.decode(h, mask), h


def build_autoencoder(cfg: ModelConfig, modality: str) -> nn.Module:
    """The autoencoder of one modality for ``cfg.encoder`` ("transformer" or "lstm")."""
    if cfg.encoder == "lstm":
        from aemt.models.lstm_autoencoder import LSTMAutoencoder

        return LSTMAutoencoder(cfg, modality)
    return TransformerAutoencoder(cfg, modality)


class MultimodalAutoencoder(nn.Module):
    """One autoencoder per modality, trained jointly; ``autoencoders[m].encoder`` is E_m."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.autoencoders = nn.ModuleDict({m: build_autoencoder(cfg, m) for m in MODALITIES})

    def forward(
        self, xs: dict[str, Tensor], masks: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """xs[m] [B, L_m, D_m], masks[m] [B, L_m] -> (recon[m] [B, L_m, D_m], hidden[m] [B, L_m, d])."""
        lengths = {m: xs[m].shape[1] for m in MODALITIES}
        fast = grouped.applies(self.cfg, xs) and self.cfg.encoder == "transformer"
        fast = fast and self.cfg.enc_layers > 0
        xs, masks = trim_common(xs, masks) if fast else trim_each(xs, masks)
        if fast:  # the one switch: encoders and decoders as groups of three, the same result
            recon, hidden = grouped.autoencode(self.autoencoders, xs, masks)
        else:
            recon, hidden = self.autoencode(xs, masks)
        return pad_to(recon, lengths), pad_to(hidden, lengths)

    def autoencode(
        self, xs: dict[str, Tensor], masks: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Each modality's autoencoder on its own: (recon[m], hidden[m])."""
        out = {m: self.autoencoders[m](xs[m], masks[m]) for m in MODALITIES}
        return {m: r for m, (r, _) in out.items()}, {m: h for m, (_, h) in out.items()}


def pad_to(xs: dict[str, Tensor], lengths: dict[str, int]) -> dict[str, Tensor]:
    """Restore trimmed sequences [B, L', .] to [B, L, .] with zeros after the valid part."""
    return {m: F.pad(x, (0, 0, 0, lengths[m] - x.shape[1])) for m, x in xs.items()}
