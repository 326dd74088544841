"""AE-MT fine-tuning model (SPEC §6): pretrained per-modality encoders + MulT cross-modal fusion.

H_m = E_m(X_m) (Conv1D + Transformer or LSTM encoder, weights from the autoencoder checkpoint). Six
cross-modal transformers give Z_{j->i} (target i is the query, source j gives keys/values with j's key
padding mask), named ``cross["<target>_from_<source>"]``. For each target i, Z_i = [Z_{j->i}; Z_{k->i}]
(2d features) goes through a self-attention transformer with i's mask; masked-mean read-outs are
concatenated into Z [B, 6d]; a residual MLP head (as MulT) and a Linear layer give the score.

Positions that are padding in the whole batch are dropped first (exact). With ``cfg.grouped`` and one
sequence length for every modality (the aligned default), the encoder, cross-modal and fusion stacks run
as grouped stacks (:mod:`aemt.models.grouped`: the same result, faster on a CPU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aemt.constants import MODALITIES
from aemt.models import grouped
from aemt.models.config import ModelConfig
from aemt.models.encoder import build_encoder
from aemt.models.grouped import cross_name
from aemt.models.layers import TransformerStack, masked_mean, trim_common, trim_each

ENCODER_PREFIX = "autoencoders.{m}.encoder."


class AEMT(nn.Module):
    """``forward(xs, masks) -> (pred [B], z [B, 6 * d_model])``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.encoders = nn.ModuleDict({m: build_encoder(cfg, m) for m in MODALITIES})
        layer = dict(
            n_heads=cfg.n_heads,
            ff_mult=cfg.ff_mult,
            dropout=cfg.dropout,
            attn_dropout=cfg.attn_dropout,
        )
        self.cross = nn.ModuleDict(
            {
                cross_name(t, s): TransformerStack(
                    d=d, n_layers=cfg.cross_layers, cross=True, **layer
                )
                for t in MODALITIES
                for s in MODALITIES
                if s != t
            }
        )
        self.fusion = nn.ModuleDict(
            {m: TransformerStack(d=2 * d, n_layers=cfg.self_layers, **layer) for m in MODALITIES}
        )
        width = 6 * d
        self.proj1 = nn.Linear(width, width)
        self.proj2 = nn.Linear(width, width)
        self.out_drop = nn.Dropout(cfg.out_dropout)
        self.out = nn.Linear(width, 1)

    def forward(self, xs: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        # xs[m] [B, L_m, D_m]; masks[m] [B, L_m] bool (True = valid)
        fast = grouped.applies(self.cfg, xs)  # the one switch: same result, grouped stacks
        xs, masks = trim_common(xs, masks) if fast else trim_each(xs, masks)
        h = grouped.encode(self.encoders, xs, masks) if fast else self.encode(xs, masks)
        z = grouped.fuse(self.cross, self.fusion, h, masks) if fast else self.fuse(h, masks)
        return self.head(z), z  # [B], [B, 6d]

    def encode(self, xs: dict[str, Tensor], masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """H_m = E_m(X_m) [B, L_m, d] for each modality."""
        return {m: self.encoders[m](xs[m], masks[m]) for m in MODALITIES}

    def fuse(self, h: dict[str, Tensor], masks: dict[str, Tensor]) -> Tensor:
        """Z [B, 6d]: per target i, cross-modal Z_{j->i} and Z_{k->i}, fusion stack, masked mean."""
        reads = []
        for t in MODALITIES:
            sources = [s for s in MODALITIES if s != t]
            zs = [self.cross[cross_name(t, s)](h[t], masks[s], src=h[s]) for s in sources]
            fused = self.fusion[t](torch.cat(zs, dim=-1), masks[t])  # Z_t [B, L_t, 2d]
            reads.append(masked_mean(fused, masks[t]))  # [B, 2d]
        return torch.cat(reads, dim=-1)  # [B, 6d]

    def head(self, z: Tensor) -> Tensor:
        """Residual MLP (as MulT) and a Linear layer: Z [B, 6d] -> score [B]."""
        hidden = self.proj2(self.out_drop(torch.relu(self.proj1(z)))) + z  # [B, 6d]
        return self.out(hidden).squeeze(-1)  # [B]

    def load_pretrained_encoders(self, autoencoder_state: dict[str, Tensor]) -> list[str]:
        """Copy ``autoencoders.{m}.encoder.*`` of a MultimodalAutoencoder state dict into ``encoders.{m}``.

        Returns the names loaded (as named in this model). Raises ``ValueError`` naming the tensor when
        one is missing from the checkpoint or its shape differs (e.g. another ``d_model``, input
        dimension or encoder type).
        """
        loaded: list[str] = []
        with torch.no_grad():
            for m in MODALITIES:
                prefix = ENCODER_PREFIX.format(m=m)
                own = self.encoders[m].state_dict(keep_vars=True)
                extra = sorted(
                    k
                    for k in autoencoder_state
                    if k.startswith(prefix) and k[len(prefix) :] not in own
                )
                if extra:
                    raise ValueError(
                        f"pretrained checkpoint has encoder tensors this model lacks: {extra[:5]} "
                        "(was it pretrained with another encoder type?)"
                    )
                for name, target in own.items():
                    key = prefix + name
                    if key not in autoencoder_state:
                        raise ValueError(
                            f"pretrained checkpoint lacks tensor {key!r} needed by encoders.{m}.{name} "
                            "(was it pretrained with another encoder type?)"
                        )
                    source = autoencoder_state[key]
                    if tuple(source.shape) != tuple(target.shape):
                        raise ValueError(
                            f"pretrained tensor {key!r} has shape {tuple(source.shape)} but "
                            f"encoders.{m}.{name} needs {tuple(target.shape)}; pretrain and fine-tune "
                            "must use the same features and model config"
                        )
                    target.copy_(source.to(dtype=target.dtype, device=target.device))
                    loaded.append(f"encoders.{m}.{name}")
        return loaded
