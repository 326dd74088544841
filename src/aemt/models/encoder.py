"""Per-modality encoders E_m (SPEC §6): Conv1D -> positional encoding -> Transformer encoder, or
Conv1D -> bidirectional LSTM projected back to d (the ``aemt_wo_tr`` variant).

Both take ``x`` [B, L, D] and ``mask`` [B, L] (True = valid) and return ``h`` [B, L, d] with zeros at padded
positions. Inputs are zeroed at padded positions before the convolution, so values there never reach a
valid position.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from aemt.constants import MODALITIES
from aemt.models.config import ModelConfig
from aemt.models.dropout import Dropout
from aemt.models.layers import (
    PositionalEncoding,
    TransformerStack,
    apply_conv,
    conv1d_same,
)


class TransformerModalityEncoder(nn.Module):
    """Conv1D(D -> d, kernel k_m) -> sqrt(d) scale + sinusoidal positions -> pre-LN Transformer.

    With ``enc_layers == 0`` there is no Transformer (``stack`` is None): H_m is the embedding itself,
    MulT's front-end.
    """

    def __init__(self, cfg: ModelConfig, modality: str) -> None:
        super().__init__()
        d = cfg.d_model
        self.conv = conv1d_same(cfg.dims[modality], d, cfg.kernels[modality])
        self.pos = PositionalEncoding(d=d, max_len=cfg.lengths[modality], enabled=cfg.positional)
        self.embed_drop = Dropout(cfg.embed_dropout)
        self.stack = None
        if cfg.enc_layers > 0:
            self.stack = TransformerStack(
                d=d,
                n_heads=cfg.n_heads,
                n_layers=cfg.enc_layers,
                ff_mult=cfg.ff_mult,
                dropout=cfg.dropout,
                attn_dropout=cfg.attn_dropout,
            )

    def embed(self, x: Tensor, mask: Tensor) -> Tensor:
        """F_m: masked Conv1D projection [B, L, D] -> [B, L, d]."""
        m = mask.unsqueeze(-1).to(x.dtype)  # [B, L, 1]
        return apply_conv(self.conv, x * m) * m  # [B, L, d]

    def features(self, x: Tensor, mask: Tensor) -> Tensor:
        """The stack's input: embedding, positions and embedding dropout [B, L, d]."""
        return self.embed_drop(self.pos(self.embed(x, mask)))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.features(x, mask)  # [B, L, d]
        if self.stack is not None:
            h = self.stack(h, mask)  # [B, L, d]
        return h * mask.unsqueeze(-1).to(h.dtype)


class LSTMModalityEncoder(nn.Module):
    """Conv1D(D -> d) -> bidirectional LSTM (enc_layers) over the valid prefix -> Linear(2d -> d)."""

    def __init__(self, cfg: ModelConfig, modality: str) -> None:
        super().__init__()
        d = cfg.d_model
        self.conv = conv1d_same(cfg.dims[modality], d, cfg.kernels[modality])
        self.embed_drop = Dropout(cfg.embed_dropout)
        self.lstm = BiLSTM(d, cfg.enc_layers, cfg.dropout)
        self.norm = nn.LayerNorm(d)

    def embed(self, x: Tensor, mask: Tensor) -> Tensor:
        m = mask.unsqueeze(-1).to(x.dtype)  # [B, L, 1]
        return apply_conv(self.conv, x * m) * m  # [B, L, d]

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        f = self.embed_drop(self.embed(x, mask))  # [B, L, d]
        h = self.norm(self.lstm(f, mask))  # [B, L, d]
        return h * mask.unsqueeze(-1).to(h.dtype)


class BiLSTM(nn.Module):
    """Bidirectional LSTM d -> d (a 2d -> d projection), run on each sequence up to its last valid step.

    Gaps inside the valid prefix (e.g. frames without a face) are zero vectors; trailing padding is not
    run at all (packed sequences), so the backward direction starts at the last valid step.
    """

    def __init__(self, d: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.rnn = nn.LSTM(
            d,
            d,
            num_layers=n_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if n_layers > 1 else 0.0,
        )
        self.proj = nn.Linear(2 * d, d)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        # x [B, L, d]; mask [B, L]
        length = x.shape[1]
        pos = torch.arange(1, length + 1, device=mask.device)  # [L]
        lengths = (mask.long() * pos).amax(dim=1).clamp_min(1)  # [B] last valid index + 1
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)  # [B, L, 2d]
        return self.proj(out)  # [B, L, d]


def build_encoder(cfg: ModelConfig, modality: str) -> nn.Module:
    """E_m for one modality: ``forward(x [B, L, D], mask [B, L]) -> h [B, L, d]``."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    if cfg.encoder == "lstm":
        return LSTMModalityEncoder(cfg, modality)
    return TransformerModalityEncoder(cfg, modality)
