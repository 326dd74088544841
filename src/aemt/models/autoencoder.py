"""Per-modality autoencoders for pretraining (SPEC §6) and their joint container.

Transformer autoencoder: ``E_m`` (Conv1D + positions + Transformer encoder) gives ``H_m``; the decoder
``D_m`` starts from input-independent queries (sinusoidal positions + a learned start embedding), so the
only path from ``X_m`` to the reconstruction goes through the memory ``H_m`` (cross-attention with the
memory key padding mask); a Conv1D maps the decoder output back to the normalised input ``X_m`` [B, L, D].

When the modalities share one sequence length and the encoders are Transformers, the three encoder stacks
and the three decoders run grouped (:mod:`aemt.models.grouped`, the same result); otherwise one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aemt.models.config import MODALITIES, ModelConfig
from aemt.models.encoder import build_encoder
from aemt.models.grouped import decoder_block, layer_norm, run_stacks
from aemt.models.layers import (
    DecoderBlock,
    KeyMask,
    apply_conv,
    sinusoid_table,
    trim_common,
    trim_padding,
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
            DecoderBlock(d, cfg.n_heads, cfg.ff_mult, cfg.dropout, cfg.attn_dropout)
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
        self.grouped = True  # run the three autoencoders as one when shapes allow (same result)

    def forward(
        self, xs: dict[str, Tensor], masks: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """xs[m] [B, L_m, D_m], masks[m] [B, L_m] -> (recon[m] [B, L_m, D_m], hidden[m] [B, L_m, d])."""
        recon: dict[str, Tensor] = {}
        hidden: dict[str, Tensor] = {}
        lengths = {xs[m].shape[1] for m in MODALITIES}
        if self.grouped and self.cfg.encoder == "transformer" and len(lengths) == 1:
            length = lengths.pop()
            r, h = self._forward_grouped(*trim_common(xs, masks))
            pad = (0, 0, 0, length - h["text"].shape[1])  # restore [B, L, .] with zeros
            return {m: F.pad(r[m], pad) for m in MODALITIES}, {
                m: F.pad(h[m], pad) for m in MODALITIES
            }
        for m in MODALITIES:
            length = xs[m].shape[1]
            x, mask = trim_padding(xs[m], masks[m])  # drop batch-wide trailing padding (exact)
            r, h = self.autoencoders[m](x, mask)
            pad = (
                0,
                0,
                0,
                length - x.shape[1],
            )  # restore [B, L_m, .] with zeros after the valid part
            recon[m], hidden[m] = F.pad(r, pad), F.pad(h, pad)
        return recon, hidden

    def _forward_grouped(
        self, xs: dict[str, Tensor], masks: dict[str, Tensor]
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Encoders and decoders of the three Transformer autoencoders as groups of three."""
        aes = [self.autoencoders[m] for m in MODALITIES]
        mk = torch.stack([masks[m] for m in MODALITIES])  # [3, B, L]
        w = mk.unsqueeze(-1).to(xs["text"].dtype)  # [3, B, L, 1]
        f = torch.stack(
            [self.autoencoders[m].encoder.features(xs[m], masks[m]) for m in MODALITIES]
        )
        h = run_stacks([ae.encoder.stack for ae in aes], f, mk) * w  # [3, B, L, d]
        g, b, length, d = h.shape
        y = torch.stack([ae.start_queries(b, length) for ae in aes])  # [3, B, L, d]
        keys = KeyMask(mk.reshape(g * b, length))
        for layers in zip(*(ae.layers for ae in aes), strict=True):
            y = decoder_block(list(layers), y, h, keys)
        y = layer_norm(y.reshape(g, b * length, d), [ae.norm for ae in aes]).view(g, b, length, d)
        y = y * w
        recon = {m: apply_conv(self.autoencoders[m].out, y[i]) for i, m in enumerate(MODALITIES)}
        return recon, dict(zip(MODALITIES, h.unbind(0), strict=True))
