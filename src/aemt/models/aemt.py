"""AE-MT fine-tuning model (SPEC §6): pretrained per-modality encoders + MulT cross-modal fusion.

H_m = E_m(X_m) (Conv1D + Transformer or LSTM encoder, weights from the autoencoder checkpoint). Six
cross-modal transformers give Z_{j->i} (target i is the query, source j gives keys/values with j's key
padding mask), named ``cross["<target>_from_<source>"]``. For each target i, Z_i = [Z_{j->i}; Z_{k->i}]
(2d features) goes through a self-attention transformer with i's mask; masked-mean read-outs are
concatenated into Z [B, 6d]; a residual MLP head (as MulT) and a Linear layer give the score.

When every modality has the same sequence length (the aligned default), the three encoder stacks, the
six cross-modal stacks and the three fusion stacks each run as one grouped stack
(:mod:`aemt.models.grouped`: the same result, ~12% faster per fine-tuning step on a 2-core CPU);
positions that are padding in every modality of the batch are dropped first. Otherwise (e.g. text
pooled to one [CLS] vector, or ``grouped = False``) the stacks run one by one, each modality trimmed on
its own.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aemt.models.config import MODALITIES, ModelConfig
from aemt.models.encoder import build_encoder
from aemt.models.grouped import run_stacks
from aemt.models.layers import TransformerStack, masked_mean, trim_common, trim_padding

ENCODER_PREFIX = "autoencoders.{m}.encoder."


def cross_name(target: str, source: str) -> str:
    return f"{target}_from_{source}"


PAIRS = [(t, s) for t in MODALITIES for s in MODALITIES if s != t]  # (target, source), by target


class AEMT(nn.Module):
    """``forward(xs, masks) -> (pred [B], z [B, 6 * d_model])``."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.encoders = nn.ModuleDict({m: build_encoder(cfg, m) for m in MODALITIES})
        self.cross = nn.ModuleDict(
            {
                cross_name(t, s): TransformerStack(
                    d,
                    cfg.n_heads,
                    cfg.cross_layers,
                    cfg.ff_mult,
                    cfg.dropout,
                    cfg.attn_dropout,
                    cross=True,
                )
                for t in MODALITIES
                for s in MODALITIES
                if s != t
            }
        )
        self.fusion = nn.ModuleDict(
            {
                m: TransformerStack(
                    2 * d, cfg.n_heads, cfg.self_layers, cfg.ff_mult, cfg.dropout, cfg.attn_dropout
                )
                for m in MODALITIES
            }
        )
        width = 6 * d
        self.proj1 = nn.Linear(width, width)
        self.proj2 = nn.Linear(width, width)
        self.out_drop = nn.Dropout(cfg.out_dropout)
        self.out = nn.Linear(width, 1)
        self.grouped = True  # run same-shaped stacks as one when lengths allow (same result)

    def forward(self, xs: dict[str, Tensor], masks: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        # xs[m] [B, L_m, D_m]; masks[m] [B, L_m] bool
        if self.grouped and len({xs[m].shape[1] for m in MODALITIES}) == 1:
            xs, masks = trim_common(xs, masks)
            reads = self._fuse_grouped(self._encode_grouped(xs, masks), masks)  # 3 x [B, 2d]
        else:
            xs, masks = dict(xs), dict(masks)
            for (
                m
            ) in MODALITIES:  # positions that are padding in the whole batch are dropped (exact)
                xs[m], masks[m] = trim_padding(xs[m], masks[m])
            h = {m: self.encoders[m](xs[m], masks[m]) for m in MODALITIES}  # [B, L_m', d]
            reads = []
            for t in MODALITIES:
                zs = [
                    self.cross[cross_name(t, s)](h[t], masks[s], src=h[s])  # [B, L_t, d]
                    for s in MODALITIES
                    if s != t
                ]
                fused = self.fusion[t](torch.cat(zs, dim=-1), masks[t])  # [B, L_t, 2d]
                reads.append(masked_mean(fused, masks[t]))  # [B, 2d]
        z = torch.cat(reads, dim=-1)  # [B, 6d]
        hidden = self.proj2(self.out_drop(torch.relu(self.proj1(z)))) + z  # [B, 6d]
        pred = self.out(hidden).squeeze(-1)  # [B]
        return pred, z

    def _encode_grouped(self, xs: dict[str, Tensor], masks: dict[str, Tensor]) -> dict[str, Tensor]:
        """H_m [B, L, d] per modality; transformer encoder stacks run as one group of three."""
        if self.cfg.encoder != "transformer":
            return {m: self.encoders[m](xs[m], masks[m]) for m in MODALITIES}
        f = torch.stack([self.encoders[m].features(xs[m], masks[m]) for m in MODALITIES])
        mk = torch.stack([masks[m] for m in MODALITIES])  # [3, B, L]
        h = run_stacks([self.encoders[m].stack for m in MODALITIES], f, mk)  # [3, B, L, d]
        h = h * mk.unsqueeze(-1).to(h.dtype)
        return dict(zip(MODALITIES, h.unbind(0), strict=True))

    def _fuse_grouped(self, h: dict[str, Tensor], masks: dict[str, Tensor]) -> list[Tensor]:
        """Masked-mean read-outs [B, 2d] per target: six cross stacks, then three fusion stacks."""
        q = torch.stack([h[t] for t, _ in PAIRS])  # [6, B, L, d]
        src = torch.stack([h[s] for _, s in PAIRS])  # [6, B, L, d]
        keys = torch.stack([masks[s] for _, s in PAIRS])  # [6, B, L]
        z = run_stacks([self.cross[cross_name(t, s)] for t, s in PAIRS], q, keys, src)
        _, b, length, d = z.shape
        # pairs are ordered by target: members 2i, 2i+1 are Z_{j->i}, Z_{k->i} -> [3, B, L, 2d]
        zt = z.view(3, 2, b, length, d).permute(0, 2, 3, 1, 4).reshape(3, b, length, 2 * d)
        mt = torch.stack([masks[t] for t in MODALITIES])  # [3, B, L]
        fused = run_stacks([self.fusion[t] for t in MODALITIES], zt, mt)  # [3, B, L, 2d]
        reads = masked_mean(fused, mt)  # [3, B, 2d]
        return list(reads.unbind(0))

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
