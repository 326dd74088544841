"""Where and how a training job computes: seeding (exact CPU resume), device and mixed precision (CUDA
only), Adam with real weight decay, a ReduceLROnPlateau that can fire before early stopping, gradient
clipping by norm, progress output, and typed configs from the `--hparams` JSON."""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from aemt.errors import UserError

T = TypeVar("T")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and random; make CPU/cuDNN kernels deterministic."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def epoch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A CPU generator that depends only on (seed, epoch, stream): resumable without saved state."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) * 101 + int(stream))


@dataclass
class Runtime:
    """Where and how to compute: device, autocast dtype (None = fp32) and the fp16 GradScaler."""

    device: torch.device
    amp_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self) -> torch.autocast:
        return torch.autocast(
            device_type=self.device.type,
            dtype=self.amp_dtype or torch.float32,
            enabled=self.amp_dtype is not None,
        )

    def describe(self) -> str:
        amp = "fp32" if self.amp_dtype is None else str(self.amp_dtype).replace("torch.", "")
        return f"{self.device.type} ({amp}, {torch.get_num_threads()} CPU threads)"


def setup_runtime(
    threads: int | None = None, device: str | None = None, amp: bool = True
) -> Runtime:
    """CUDA with mixed precision (bf16 if supported, else fp16 + GradScaler) when available, else CPU."""
    if threads:
        torch.set_num_threads(int(threads))
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but torch sees no CUDA device")
    amp_dtype: torch.dtype | None = None
    if dev.type == "cuda" and amp:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype is torch.float16)
    return Runtime(device=dev, amp_dtype=amp_dtype, scaler=scaler)


def check_patience(lr_patience: int, early_stop: int) -> None:
    """ReduceLROnPlateau must be able to fire before early stopping ends the run."""
    if lr_patience >= early_stop:
        raise UserError(
            f"train.lr_patience ({lr_patience}) must be smaller than train.early_stop ({early_stop}), "
            "otherwise the learning rate is never reduced before training stops; lower lr_patience"
        )


def build_optimizer(model: nn.Module, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with L2 weight decay; the fused kernel (one pass over all ~600 tensors, CPU and CUDA) is
    ~8x faster per step than the default per-parameter loop on a 2-core CPU."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)


def build_scheduler(
    optimizer: torch.optim.Optimizer, factor: float, patience: int
) -> torch.optim.lr_scheduler.ReduceLROnPlateau:
    # threshold 0: "no improvement" means exactly what early stopping means (not strictly lower).
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="min", factor=factor, patience=patience, threshold=0.0
    )


def optimizer_step(
    loss: torch.Tensor,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    runtime: Runtime,
    clip: float,
) -> None:
    """Backward (scaled under fp16), clip the gradient norm, step."""
    optimizer.zero_grad(set_to_none=True)
    runtime.scaler.scale(loss).backward()
    runtime.scaler.unscale_(optimizer)
    if clip and clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    runtime.scaler.step(optimizer)
    runtime.scaler.update()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """tqdm over batches, to stderr (silence with TQDM_DISABLE=1)."""
    return iter(
        tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
    )


def log(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


def check_sections(hparams: dict) -> None:
    """The `--hparams` JSON holds only the sections 'model' and 'train', each a JSON object."""
    unknown = sorted(set(hparams) - {"model", "train"})
    if unknown:
        raise UserError(f"hparams: unknown section(s) {unknown}; expected 'model' and 'train'")
    for section in ("model", "train"):
        check_object(hparams.get(section), section)


def check_object(values: object, section: str) -> None:
    """An hparams section is a JSON object (or absent)."""
    if values is not None and not isinstance(values, dict):
        raise UserError(
            f"hparams '{section}' must be a JSON object (key: value pairs); got "
            f"{type(values).__name__} {values!r}"
        )


def config_from_dict(cls: type[T], values: dict | None, section: str) -> T:
    """Build a dataclass config from a dict, rejecting unknown keys with a UserError."""
    check_object(values, section)
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"hparams '{section}': unknown key(s) {unknown}; allowed: {sorted(names)}")
    try:
        return cls(**values)
    except TypeError as err:  # e.g. a string where a number belongs
        raise UserError(f"hparams '{section}': bad value type ({err})") from err
