"""Models of AE-MT (SPEC §6): per-modality encoders and autoencoders, the modality-consistency
classifier, and the AE-MT fine-tuning model (pretrained encoders + MulT cross-modal attention).

Names are imported lazily so that ``import aemt.models.config`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from aemt.models.config import MODALITIES, ModelConfig

_LAZY = {
    "build_encoder": "aemt.models.encoder",
    "MultimodalAutoencoder": "aemt.models.autoencoder",
    "ConsistencyClassifier": "aemt.models.consistency",
    "AEMT": "aemt.models.aemt",
    "masked_mean": "aemt.models.layers",
}

__all__ = ["MODALITIES", "ModelConfig", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aemt.models' has no attribute {name!r}")
