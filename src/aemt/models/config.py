"""Typed model configuration shared by the autoencoders, the consistency classifier and AE-MT.

Input dimensions and lengths come from the aligned data (``info.json``); everything else defaults to
MMSA's MulT settings for CH-SIMS v2 (d = 30, 6 heads, Conv1D kernels 5/3/1, 4 cross-modal layers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from aemt.constants import MODALITIES

ENCODERS: tuple[str, str] = ("transformer", "lstm")


def _default_kernels() -> dict[str, int]:
    return {"text": 5, "audio": 3, "vision": 1}


@dataclass
class ModelConfig:
    """Hyper-parameters of every model in :mod:`aemt.models`.

    ``dims`` and ``lengths`` are keyed by :data:`MODALITIES`; ``kernels`` are odd Conv1D kernel sizes
    ("same" padding, so sequence lengths are preserved and masks stay valid).
    """

    dims: dict[str, int]
    lengths: dict[str, int]
    d_model: int = 30
    n_heads: int = 6
    kernels: dict[str, int] = field(default_factory=_default_kernels)
    encoder: str = "transformer"
    enc_layers: int = 3
    dec_layers: int = 3
    cross_layers: int = 4
    self_layers: int = 3
    dropout: float = 0.1
    attn_dropout: float = 0.1
    embed_dropout: float = 0.1
    out_dropout: float = 0.1
    ff_mult: int = 4
    positional: bool = True
    # Run same-shaped stacks as one grouped stack when the modalities share a length
    # (aemt.models.grouped: the same result, faster). False runs every stack on its own.
    grouped: bool = True

    def __post_init__(self) -> None:
        self.dims = {str(k): int(v) for k, v in dict(self.dims).items()}
        self.lengths = {str(k): int(v) for k, v in dict(self.lengths).items()}
        self.kernels = {str(k): int(v) for k, v in dict(self.kernels).items()}
        for name in ("dims", "lengths", "kernels"):
            table = getattr(self, name)
            missing = [m for m in MODALITIES if m not in table]
            if missing:
                raise ValueError(
                    f"ModelConfig.{name} lacks modalities {missing}; need {MODALITIES}"
                )
            bad = [m for m in MODALITIES if table[m] < 1]
            if bad:
                raise ValueError(f"ModelConfig.{name} must be >= 1 for every modality; got {table}")
        even = [m for m in MODALITIES if self.kernels[m] % 2 == 0]
        if even:
            raise ValueError(
                f"ModelConfig.kernels must be odd ('same' padding); got {self.kernels}"
            )
        if self.encoder not in ENCODERS:
            raise ValueError(f"ModelConfig.encoder must be one of {ENCODERS}; got {self.encoder!r}")
        if self.d_model < 1 or self.n_heads < 1 or self.d_model % self.n_heads:
            raise ValueError(
                f"ModelConfig.d_model ({self.d_model}) must be a positive multiple of "
                f"n_heads ({self.n_heads})"
            )
        for name in ("dec_layers", "cross_layers", "self_layers", "ff_mult"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1; got {getattr(self, name)}")
        # enc_layers 0: no per-modality encoder, the Conv1D embedding goes straight to the cross-modal
        # stacks (a true MulT); an LSTM encoder needs at least one layer.
        if self.enc_layers < (1 if self.encoder == "lstm" else 0):
            raise ValueError(
                f"ModelConfig.enc_layers must be >= {1 if self.encoder == 'lstm' else 0} for "
                f"{self.encoder} encoders; got {self.enc_layers}"
            )
        for name in ("dropout", "attn_dropout", "embed_dropout", "out_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1); got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (stored in checkpoints); inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Build from a dict; unknown keys raise ``ValueError`` naming them and the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ModelConfig keys {unknown}; known keys are {sorted(known)}")
        return cls(**d)
