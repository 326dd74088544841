"""LSTM autoencoder for the ``aemt_wo_tr`` variant (``cfg.encoder == "lstm"``): same interface as the
Transformer autoencoder.

``E_m`` = Conv1D + bidirectional LSTM (see :mod:`aemt.models.encoder`); the decoder is a second
bidirectional LSTM (``dec_layers``) that reads only ``H_m`` and a Conv1D back to the input dimension.
"""

from __future__ import annotations

from torch import Tensor, nn

from aemt.models.config import ModelConfig
from aemt.models.encoder import BiLSTM, build_encoder


class LSTMAutoencoder(nn.Module):
    """X_m [B, L, D] -> (reconstruction [B, L, D], H_m [B, L, d])."""

    def __init__(self, cfg: ModelConfig, modality: str) -> None:
        super().__init__()
        if cfg.encoder != "lstm":
            raise ValueError(f"LSTMAutoencoder needs cfg.encoder == 'lstm'; got {cfg.encoder!r}")
        d, k = cfg.d_model, cfg.kernels[modality]
        self.encoder = build_encoder(cfg, modality)
        self.decoder = BiLSTM(d, cfg.dec_layers, cfg.dropout)
        self.norm = nn.LayerNorm(d)
        self.out = nn.Conv1d(d, cfg.dims[modality], kernel_size=k, padding=k // 2)

    def decode(self, h: Tensor, mask: Tensor) -> Tensor:
        # h [B, L, d]; mask [B, L] -> reconstruction [B, L, D]
        m = mask.unsqueeze(-1).to(h.dtype)  # [B, L, 1]
        y = self.norm(self.decoder(h, mask)) * m  # [B, L, d]
        return self.out(y.transpose(1, 2)).transpose(1, 2)  # [B, L, D]

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x, mask)  # [B, L, d]
        return self.decode(h, mask), h
