"""Shared building blocks: positional encoding, masked mean, key-padding-mask attention and pre-LayerNorm
transformer stacks (self-attention and MulT-style cross-modal attention).

Conventions: sequences are batch-first ``[B, L, d]``; masks are bool ``[B, L]`` with True = valid.
Attention uses a key padding mask (``F.scaled_dot_product_attention``, or explicit weights when attention
dropout is on). A sample whose keys are all padding (e.g. a clip with no audio stream) attends to one dummy
key and its attention output is then zeroed, so the block reduces to its residual path: no NaN, and the
padded values never matter. Dropout: :mod:`aemt.models.dropout`. Constructors are keyword-only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aemt.models.dropout import Dropout, keep_mask


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` [..., B, L, d] over valid positions of ``mask`` [..., B, L] -> [..., B, d] (zeros if
    none valid)."""
    w = mask.to(x.dtype).unsqueeze(-1)  # [..., B, L, 1]
    return (x * w).sum(-2) / w.sum(-2).clamp_min(1.0)  # [..., B, d]


def sinusoid_table(length: int, d: int) -> Tensor:
    """Sinusoidal positional table [length, d] (sin on even, cos on odd channels)."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)  # [L, 1]
    idx = torch.arange(0, d, 2, dtype=torch.float32)  # [ceil(d/2)]
    freq = torch.exp(-math.log(10000.0) * idx / d)  # [ceil(d/2)]
    table = torch.zeros(length, d)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d // 2])
    return table


class PositionalEncoding(nn.Module):
    """Scale by sqrt(d) and add a sinusoidal table (MulT style); the table is a non-persistent buffer."""

    def __init__(self, *, d: int, max_len: int, enabled: bool = True) -> None:
        super().__init__()
        self.d = d
        self.scale = math.sqrt(d)
        self.enabled = enabled
        self.register_buffer("table", sinusoid_table(max_len, d), persistent=False)

    def forward(self, x: Tensor) -> Tensor:  # x [B, L, d]
        x = x * self.scale
        if not self.enabled:
            return x
        length = x.shape[1]
        if length > self.table.shape[0]:
            self.table = sinusoid_table(length, self.d).to(self.table)
        return x + self.table[:length]


class KeyMask:
    """A key padding mask prepared once per stack.

    ``attn_mask`` [B, 1, 1, Lk] bool and ``bias`` [B, 1, 1, Lk] (0 / -inf) for attention; ``gate``
    [B, 1, 1] zeroes the attention output of samples without any valid key; ``no_padding`` and
    ``all_have_keys`` let the common cases skip the masking work.
    """

    def __init__(self, mask: Tensor) -> None:  # mask [B, Lk] bool, True = valid
        any_valid = mask.any(dim=1)  # [B]
        self.no_padding = bool(mask.all())
        self.all_have_keys = bool(any_valid.all())
        first = torch.zeros_like(mask)
        first[:, 0] = True
        # samples with no valid key attend to key 0 only; their output is zeroed by the gate
        fixed = mask | (first & ~any_valid[:, None])  # [B, Lk]
        self.attn_mask = fixed[:, None, None, :]  # [B, 1, 1, Lk]
        bias = torch.zeros(fixed.shape, dtype=torch.get_default_dtype(), device=mask.device)
        self.bias = bias.masked_fill(~fixed, float("-inf"))[:, None, None, :]  # [B, 1, 1, Lk]
        self.gate = any_valid.to(torch.get_default_dtype())[:, None, None]  # [B, 1, 1]


class Attention(nn.Module):
    """Multi-head attention (self or cross) with a key padding mask.

    Without attention dropout this is ``F.scaled_dot_product_attention``; with it (training), the
    weights are computed explicitly so that the fast dropout mask can be used.
    """

    def __init__(self, *, d: int, n_heads: int, attn_dropout: float, cross: bool) -> None:
        super().__init__()
        if d % n_heads:
            raise ValueError(f"attention width {d} is not a multiple of n_heads {n_heads}")
        self.h = n_heads
        self.cross = cross
        self.attn_dropout = attn_dropout
        if cross:
            self.q = nn.Linear(d, d)
            self.kv = nn.Linear(d, 2 * d)
        else:
            self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x: Tensor, src: Tensor | None, keys: KeyMask) -> Tensor:
        # x [B, Lq, d] queries; src [B, Lk, d] keys/values (None: self-attention on x)
        b, lq, d = x.shape
        h, dh = self.h, d // self.h
        if self.cross:
            assert src is not None
            q = self.q(x).view(b, lq, h, dh).transpose(1, 2)  # [B, h, Lq, dh]
            k, v = self.kv(src).view(b, src.shape[1], 2, h, dh).permute(2, 0, 3, 1, 4)
        else:
            q, k, v = self.qkv(x).view(b, lq, 3, h, dh).permute(2, 0, 3, 1, 4)  # 3 x [B, h, L, dh]
        o = attend(q, k, v, keys, self.attn_dropout, self.training)  # [B, h, Lq, dh]
        o = self.out(o.transpose(1, 2).reshape(b, lq, d))  # [B, Lq, d]
        return o if keys.all_have_keys else o * keys.gate.to(o.dtype)


def attend(q: Tensor, k: Tensor, v: Tensor, keys: KeyMask, p: float, training: bool) -> Tensor:
    """Scaled dot-product attention with a key padding mask and (training) attention dropout ``p``.

    q [N, h, Lq, dh]; k, v [N, h, Lk, dh]; ``keys`` built from the [N, Lk] key mask -> [N, h, Lq, dh].
    Without dropout this is ``F.scaled_dot_product_attention``; with it the weights are computed
    explicitly so that the fast CPU dropout mask can be used.
    """
    if not (training and p > 0):
        mask = None if keys.no_padding else keys.attn_mask
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    n, h, lq, dh = q.shape
    lk = k.shape[2]
    q3 = q.reshape(n * h, lq, dh)  # [N*h, Lq, dh]
    kt = k.reshape(n * h, lk, dh).transpose(1, 2)  # [N*h, dh, Lk]
    if keys.no_padding:
        scores = torch.bmm(q3, kt).mul_(dh**-0.5)  # [N*h, Lq, Lk]
    else:  # scale, matmul and the -inf padding bias in one call
        bias = keys.bias.to(q.dtype).expand(n, h, 1, lk).reshape(n * h, 1, lk)
        scores = torch.baddbmm(bias, q3, kt, alpha=dh**-0.5)  # [N*h, Lq, Lk]
    weights = torch.softmax(scores, dim=-1)  # [N*h, Lq, Lk]
    v3 = v.reshape(n * h, lk, dh)  # [N*h, Lk, dh]
    if weights.device.type != "cpu" or p >= 1.0:
        o = torch.bmm(F.dropout(weights, p, training=True), v3)
    else:  # fast mask; the 1/(1-p) of inverted dropout is applied to the smaller output
        keep = keep_mask(weights.shape, p, weights.device).to(weights.dtype)
        o = torch.bmm(weights * keep, v3) * (1.0 / (1.0 - p))
    return o.view(n, h, lq, dh)  # [N, h, Lq, dh]


class FeedForward(nn.Module):
    """Position-wise MLP of a transformer layer: fc1 (d -> ff_mult * d), ReLU, dropout, fc2 (-> d)."""

    def __init__(self, *, d: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, ff_mult * d)
        self.drop = Dropout(dropout)
        self.fc2 = nn.Linear(ff_mult * d, d)

    def forward(self, x: Tensor) -> Tensor:  # x [..., d]
        return self.fc2(self.drop(torch.relu(self.fc1(x))))


class Block(nn.Module):
    """Pre-LayerNorm transformer layer: x + Attn(LN(x), LN_kv(src)); x + FFN(LN(x))."""

    def __init__(
        self,
        *,
        d: int,
        n_heads: int,
        ff_mult: int,
        dropout: float,
        attn_dropout: float,
        cross: bool,
    ) -> None:
        super().__init__()
        self.ln_q = nn.LayerNorm(d)
        self.ln_kv = nn.LayerNorm(d) if cross else None
        self.attn = Attention(d=d, n_heads=n_heads, attn_dropout=attn_dropout, cross=cross)
        self.ln_ff = nn.LayerNorm(d)
        self.ff = FeedForward(d=d, ff_mult=ff_mult, dropout=dropout)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, src: Tensor | None, keys: KeyMask) -> Tensor:
        # x [B, Lq, d]; src [B, Lk, d] or None
        hq = self.ln_q(x)
        hk = self.ln_kv(src) if self.ln_kv is not None and src is not None else None
        x = x + self.drop(self.attn(hq, hk, keys))
        return x + self.drop(self.ff(self.ln_ff(x)))  # [B, Lq, d]


class TransformerStack(nn.Module):
    """``n_layers`` pre-LN blocks and a final LayerNorm; self-attention or cross-modal (query x, kv src)."""

    def __init__(
        self,
        *,
        d: int,
        n_heads: int,
        n_layers: int,
        ff_mult: int,
        dropout: float,
        attn_dropout: float,
        cross: bool = False,
    ) -> None:
        super().__init__()
        self.cross = cross
        self.layers = nn.ModuleList(
            Block(
                d=d,
                n_heads=n_heads,
                ff_mult=ff_mult,
                dropout=dropout,
                attn_dropout=attn_dropout,
                cross=cross,
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d)

    def forward(self, x: Tensor, key_mask: Tensor, src: Tensor | None = None) -> Tensor:
        # x [B, Lq, d]; key_mask [B, Lk] bool (of src for cross, of x for self); src [B, Lk, d]
        if self.cross and src is None:
            raise ValueError("a cross-modal stack needs a key/value sequence")
        keys = KeyMask(key_mask)
        for layer in self.layers:
            x = layer(x, src, keys)
        return self.norm(x)  # [B, Lq, d]


class DecoderBlock(nn.Module):
    """Pre-LN transformer decoder layer: cross-attention to the memory, then self-attention and FFN."""

    def __init__(
        self, *, d: int, n_heads: int, ff_mult: int, dropout: float, attn_dropout: float
    ) -> None:
        super().__init__()
        self.self_block = Block(
            d=d,
            n_heads=n_heads,
            ff_mult=ff_mult,
            dropout=dropout,
            attn_dropout=attn_dropout,
            cross=False,
        )
        self.ln_q = nn.LayerNorm(d)
        self.ln_mem = nn.LayerNorm(d)
        self.cross = Attention(d=d, n_heads=n_heads, attn_dropout=attn_dropout, cross=True)
        self.drop = Dropout(dropout)

    def forward(self, y: Tensor, self_keys: KeyMask, memory: Tensor, mem_keys: KeyMask) -> Tensor:
        # y [B, L, d] decoder stream; memory [B, L, d]
        y = y + self.drop(self.cross(self.ln_q(y), self.ln_mem(memory), mem_keys))
        return self.self_block(y, None, self_keys)  # [B, L, d]


def conv1d_same(in_dim: int, out_dim: int, kernel: int) -> nn.Conv1d:
    """Temporal Conv1D with 'same' padding (odd kernel), no bias (MulT's input projection)."""
    return nn.Conv1d(in_dim, out_dim, kernel_size=kernel, padding=kernel // 2, bias=False)


def apply_conv(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """Apply a Conv1d to a batch-first sequence: [B, L, Din] -> [B, L, Dout]."""
    return conv(x.transpose(1, 2)).transpose(1, 2)


def trim_padding(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the trailing positions that are padding in every sample of the batch (exact speed-up).

    x [B, L, D], mask [B, L] -> x [B, L', D], mask [B, L'] with L' = last position valid in any sample
    + 1 (at least 1). Models zero padded inputs and use absolute positions, so valid outputs are unchanged.
    """
    cols = mask.any(dim=0).nonzero()  # [n, 1]
    keep = int(cols.max()) + 1 if cols.numel() else 1
    if keep == mask.shape[1]:
        return x, mask
    return x[:, :keep], mask[:, :keep]


def trim_each(
    xs: dict[str, Tensor], masks: dict[str, Tensor]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """:func:`trim_padding` of every modality on its own (exact)."""
    trimmed = {m: trim_padding(xs[m], masks[m]) for m in xs}
    return {m: t[0] for m, t in trimmed.items()}, {m: t[1] for m, t in trimmed.items()}


def trim_common(
    xs: dict[str, Tensor], masks: dict[str, Tensor]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """:func:`trim_padding` over several modalities of one length, to one common length (exact).

    Drops the trailing positions that are padding in every sample AND every modality of ``masks``.
    """
    valid = torch.stack([m.any(dim=0) for m in masks.values()]).any(dim=0).nonzero()  # [n, 1]
    keep = int(valid.max()) + 1 if valid.numel() else 1
    return {k: x[:, :keep] for k, x in xs.items()}, {k: m[:, :keep] for k, m in masks.items()}


# Checkpoints written before the feed-forward layers had names stored them as `ff.0` / `ff.3`.
_RENAMED = (("ff.0.", "ff.fc1."), ("ff.3.", "ff.fc2."))


def upgrade_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict with the parameter names of this version (older checkpoints load unchanged)."""
    out = {}
    for key, value in state.items():
        for old, new in _RENAMED:
            key = key.replace(f".{old}", f".{new}")
        out[key] = value
    return out
