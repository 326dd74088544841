"""Run G transformer stacks of identical shape as one ("horizontal fusion"), exactly.

AE-MT has six cross-modal stacks, three fusion stacks and three encoder stacks, each tiny (d = 30, L = 50).
Run one by one, a step is thousands of small kernels and CPU time goes to per-call overhead and to
matrix products too thin to use the cores. Here the G stacks' parameters are stacked per step
(``torch.stack`` of the modules' own tensors, so state dicts, checkpoints and the pretrained-encoder
transfer are unchanged and gradients reach every module's parameters) and each layer runs as batched
products over the group: a linear layer is one ``baddbmm`` [G, N, din] x [G, din, dout], attention runs on
[G * B, h, L, dh].

The result equals running each stack alone (the same operations per group member; dropout masks are
drawn for the whole group at once, so training-mode draws differ from the one-by-one order).

The models use it behind one switch, `ModelConfig.grouped` (recorded in every checkpoint): `encode` and
`fuse` are AE-MT's grouped encoder and fusion steps, `autoencode` the pretraining autoencoders'.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aemt.constants import MODALITIES
from aemt.models.config import ModelConfig
from aemt.models.dropout import dropout
from aemt.models.layers import (
    Attention,
    Block,
    DecoderBlock,
    KeyMask,
    TransformerStack,
    apply_conv,
    attend,
    masked_mean,
)

# AE-MT's six cross-modal stacks as (target, source), ordered by target: members 2i and 2i + 1 are the
# two sources of target i.
PAIRS = [(t, s) for t in MODALITIES for s in MODALITIES if s != t]


def cross_name(target: str, source: str) -> str:
    """The name of the cross-modal stack Z_{source -> target} (target = query)."""
    return f"{target}_from_{source}"


def applies(cfg: ModelConfig, xs: dict[str, Tensor]) -> bool:
    """The switch: grouped execution is on and every modality has the same sequence length."""
    return cfg.grouped and len({x.shape[1] for x in xs.values()}) == 1


def _stacked(modules: list[nn.Module], name: str) -> Tensor:
    return torch.stack([getattr(m, name) for m in modules])


def linear(x: Tensor, layers: list[nn.Linear]) -> Tensor:
    """x [G, N, din] -> [G, N, dout], member g through ``layers[g]``."""
    w = _stacked(layers, "weight")  # [G, dout, din]
    b = _stacked(layers, "bias")  # [G, dout]
    return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))


def layer_norm(x: Tensor, norms: list[nn.LayerNorm]) -> Tensor:
    """x [G, N, d] -> [G, N, d], member g normalised with ``norms[g]``'s affine parameters."""
    d = x.shape[-1]
    w = _stacked(norms, "weight").unsqueeze(1)  # [G, 1, d]
    b = _stacked(norms, "bias").unsqueeze(1)  # [G, 1, d]
    return torch.addcmul(b, F.layer_norm(x, (d,), eps=norms[0].eps), w)


def attention(attns: list[Attention], hq: Tensor, hk: Tensor | None, keys: KeyMask) -> Tensor:
    """Grouped multi-head attention: member g through ``attns[g]``.

    hq [G, B, Lq, d] (normalised queries); hk [G, B, Lk, d] (normalised keys/values, None for self);
    ``keys`` from the [G * B, Lk] key mask -> [G, B, Lq, d].
    """
    g, b, lq, d = hq.shape
    h = attns[0].h
    dh = d // h
    if attns[0].cross:
        assert hk is not None
        lk = hk.shape[2]
        q = linear(hq.reshape(g, b * lq, d), [a.q for a in attns])  # [G, B*Lq, d]
        q = q.view(g * b, lq, h, dh).transpose(1, 2)  # [G*B, h, Lq, dh]
        kv = linear(hk.reshape(g, b * lk, d), [a.kv for a in attns])  # [G, B*Lk, 2d]
        k, v = kv.view(g * b, lk, 2, h, dh).permute(2, 0, 3, 1, 4)  # 2 x [G*B, h, Lk, dh]
    else:
        qkv = linear(hq.reshape(g, b * lq, d), [a.qkv for a in attns])  # [G, B*L, 3d]
        q, k, v = qkv.view(g * b, lq, 3, h, dh).permute(2, 0, 3, 1, 4)  # 3 x [G*B, h, L, dh]
    o = attend(q, k, v, keys, attns[0].attn_dropout, attns[0].training)  # [G*B, h, Lq, dh]
    o = linear(o.transpose(1, 2).reshape(g, b * lq, d), [a.out for a in attns])  # [G, B*Lq, d]
    o = o.view(g, b, lq, d)
    if keys.all_have_keys:
        return o
    return o * keys.gate.view(g, b, 1, 1).to(o.dtype)


def block(blocks: list[Block], x: Tensor, src: Tensor | None, keys: KeyMask) -> Tensor:
    """One pre-LN layer per member (see :class:`Block`): x [G, B, Lq, d], src [G, B, Lk, d] or None."""
    g, b, lq, d = x.shape
    first = blocks[0]
    hq = layer_norm(x.reshape(g, b * lq, d), [blk.ln_q for blk in blocks]).view(g, b, lq, d)
    hk = None
    if src is not None and first.ln_kv is not None:
        lk = src.shape[2]
        hk = layer_norm(src.reshape(g, b * lk, d), [blk.ln_kv for blk in blocks]).view(g, b, lk, d)
    a = attention([blk.attn for blk in blocks], hq, hk, keys)  # [G, B, Lq, d]
    x = x + dropout(a, first.drop.p, first.training)
    hf = layer_norm(x.reshape(g, b * lq, d), [blk.ln_ff for blk in blocks])  # [G, B*Lq, d]
    hf = torch.relu(linear(hf, [blk.ff.fc1 for blk in blocks]))  # [G, B*Lq, ff*d]
    hf = dropout(hf, first.ff.drop.p, first.training)
    hf = linear(hf, [blk.ff.fc2 for blk in blocks]).view(g, b, lq, d)  # [G, B, Lq, d]
    return x + dropout(hf, first.drop.p, first.training)


def decoder_block(blocks: list[DecoderBlock], y: Tensor, memory: Tensor, keys: KeyMask) -> Tensor:
    """One decoder layer per member (see :class:`DecoderBlock`); the memory's mask serves both attentions.

    y [G, B, L, d] decoder streams; memory [G, B, L, d]; ``keys`` from the [G * B, L] mask -> [G, B, L, d].
    """
    g, b, length, d = y.shape
    hq = layer_norm(y.reshape(g, b * length, d), [blk.ln_q for blk in blocks])
    hm = layer_norm(memory.reshape(g, b * length, d), [blk.ln_mem for blk in blocks])
    shape = (g, b, length, d)
    a = attention([blk.cross for blk in blocks], hq.view(shape), hm.view(shape), keys)
    y = y + dropout(a, blocks[0].drop.p, blocks[0].training)
    return block([blk.self_block for blk in blocks], y, None, keys)


def run_stacks(
    stacks: list[TransformerStack], x: Tensor, key_mask: Tensor, src: Tensor | None = None
) -> Tensor:
    """``stacks[g](x[g], key_mask[g], src[g])`` for every g, computed as one grouped stack.

    x [G, B, Lq, d]; key_mask [G, B, Lk] bool (of src for cross stacks, of x for self stacks);
    src [G, B, Lk, d] for cross stacks -> [G, B, Lq, d]. The stacks must have the same shape.
    """
    g, b, lq, d = x.shape
    if len(stacks) != g:
        raise ValueError(f"{len(stacks)} stacks for a group of {g}")
    if len({len(s.layers) for s in stacks}) != 1 or len({s.cross for s in stacks}) != 1:
        raise ValueError("grouped stacks must have the same number of layers and kind")
    if stacks[0].cross and src is None:
        raise ValueError("a cross-modal stack needs a key/value sequence")
    keys = KeyMask(key_mask.reshape(g * b, key_mask.shape[-1]))
    for layer_blocks in zip(*(s.layers for s in stacks), strict=True):
        x = block(list(layer_blocks), x, src, keys)
    out = layer_norm(x.reshape(g, b * lq, d), [s.norm for s in stacks])
    return out.view(g, b, lq, d)


# ---- the models' grouped steps -------------------------------------------------------------------


def encode(encoders: nn.ModuleDict, xs: dict[str, Tensor], masks: dict[str, Tensor]):
    """AE-MT's H_m [B, L, d] per modality; Transformer encoder stacks run as one group of three."""
    if any(getattr(encoders[m], "stack", None) is None for m in MODALITIES):
        return {m: encoders[m](xs[m], masks[m]) for m in MODALITIES}  # LSTM, or no encoder layers
    f = torch.stack([encoders[m].features(xs[m], masks[m]) for m in MODALITIES])  # [3, B, L, d]
    mk = torch.stack([masks[m] for m in MODALITIES])  # [3, B, L]
    h = run_stacks([encoders[m].stack for m in MODALITIES], f, mk)  # [3, B, L, d]
    h = h * mk.unsqueeze(-1).to(h.dtype)
    return dict(zip(MODALITIES, h.unbind(0), strict=True))


def fuse(
    cross: nn.ModuleDict, fusion: nn.ModuleDict, h: dict[str, Tensor], masks: dict[str, Tensor]
) -> Tensor:
    """AE-MT's Z [B, 6d]: six cross-modal stacks as one group, then three fusion stacks as one."""
    q = torch.stack([h[t] for t, _ in PAIRS])  # [6, B, L, d]
    src = torch.stack([h[s] for _, s in PAIRS])  # [6, B, L, d]
    keys = torch.stack([masks[s] for _, s in PAIRS])  # [6, B, L]
    z = run_stacks([cross[cross_name(t, s)] for t, s in PAIRS], q, keys, src)  # [6, B, L, d]
    _, b, length, d = z.shape
    # members 2i, 2i+1 are Z_{j->i}, Z_{k->i} -> Z_i [3, B, L, 2d]
    zt = z.view(3, 2, b, length, d).permute(0, 2, 3, 1, 4).reshape(3, b, length, 2 * d)
    mt = torch.stack([masks[t] for t in MODALITIES])  # [3, B, L]
    fused = run_stacks([fusion[t] for t in MODALITIES], zt, mt)  # [3, B, L, 2d]
    reads = masked_mean(fused, mt)  # [3, B, 2d]
    return torch.cat(reads.unbind(0), dim=-1)  # [B, 6d]


def autoencode(
    autoencoders: nn.ModuleDict, xs: dict[str, Tensor], masks: dict[str, Tensor]
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """The three Transformer autoencoders' (reconstruction [B, L, D_m], H_m [B, L, d]), encoders and
    decoders each run as a group of three."""
    aes = [autoencoders[m] for m in MODALITIES]
    mk = torch.stack([masks[m] for m in MODALITIES])  # [3, B, L]
    w = mk.unsqueeze(-1).to(xs["text"].dtype)  # [3, B, L, 1]
    f = torch.stack(
        [ae.encoder.features(xs[m], masks[m]) for m, ae in zip(MODALITIES, aes, strict=True)]
    )
    h = run_stacks([ae.encoder.stack for ae in aes], f, mk) * w  # [3, B, L, d]
    g, b, length, d = h.shape
    y = torch.stack([ae.start_queries(b, length) for ae in aes])  # [3, B, L, d]
    keys = KeyMask(mk.reshape(g * b, length))
    for layers in zip(*(ae.layers for ae in aes), strict=True):
        y = decoder_block(list(layers), y, h, keys)
    y = layer_norm(y.reshape(g, b * length, d), [ae.norm for ae in aes]).view(g, b, length, d)
    y = y * w
    recon = {
        m: apply_conv(ae.out, y[i]) for i, (m, ae) in enumerate(zip(MODALITIES, aes, strict=True))
    }
    return recon, dict(zip(MODALITIES, h.unbind(0), strict=True))
