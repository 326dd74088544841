"""Training plumbing shared by pretraining and fine-tuning.

Seeding, device and mixed precision (CUDA only), Adam with real weight decay, ReduceLROnPlateau that can
fire before early stopping, gradient clipping by norm, self-describing checkpoints written atomically,
resume from `last.pt`, history CSV, and the epoch loop (`fit`) that ties these together.

Resume is exact on CPU: every per-epoch random stream (shuffling, tampering) comes from a generator seeded by
(seed, epoch), and the global RNG states (torch, numpy, python, CUDA) are saved in `last.pt` after each
epoch, so a run killed after epoch k and restarted ends with the same weights as an unbroken run.
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from aemt import __version__
from aemt.errors import UserError
from aemt.io import atomic_path, save_csv

T = TypeVar("T")
LAST = "last.pt"
FINAL = "model.pt"


# --------------------------------------------------------------------------- seeding and device


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


# --------------------------------------------------------------------------- optimisation


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


@dataclass
class EarlyStopping:
    """Stop after `patience` epochs without a strictly lower monitored value."""

    patience: int
    best: float = float("inf")
    best_epoch: int = 0
    bad_epochs: int = 0

    def update(self, value: float, epoch: int) -> bool:
        """Record one epoch; True if it is a new best."""
        if value < self.best:
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


# --------------------------------------------------------------------------- batches and progress


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """tqdm over batches, to stderr (silence with TQDM_DISABLE=1)."""
    return iter(
        tqdm(iterable, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)
    )


def log(message: str) -> None:
    tqdm.write(message, file=sys.stderr)


# --------------------------------------------------------------------------- RNG state and checkpoints


def rng_state(runtime: Runtime) -> dict[str, Any]:
    """Global RNG states in a form `torch.load(weights_only=True)` accepts."""
    kind, key, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, [int(v) for v in key], int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if runtime.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, key, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, checkpoint: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint` (tensors to CPU)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise UserError(f"{path}: not a readable aemt checkpoint ({err}); retrain it") from err
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path}: not an aemt checkpoint (no 'kind' / 'state_dict')")
    return ckpt


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- the epoch loop


@dataclass
class LoopSpec:
    """What `fit` needs besides the callables: where, how long, and what describes the run."""

    out_dir: Path
    epochs: int
    early_stop: int
    monitor: str  # key of the validation dict used for LR schedule, early stopping and selection
    columns: list[str]  # history.csv columns in order
    header: dict[str, Any]  # kind, model_config, train_config, feature_info, normaliser, ...
    config_hash: str  # resume only from a last.pt with the same hash


@dataclass
class LoopResult:
    best_epoch: int
    best_value: float
    best_state: dict[str, torch.Tensor]
    history: list[dict[str, float]]
    epochs_run: int
    resumed_from: int = 0
    final: dict[str, Any] = field(default_factory=dict)  # optimizer/scheduler/scaler/rng at the end


def fit(
    spec: LoopSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    runtime: Runtime,
    train_epoch: Callable[[int], dict[str, float]],
    evaluate: Callable[[int], dict[str, float]],
    on_epoch_end: Callable[[int], None] | None = None,
) -> LoopResult:
    """Train for up to `spec.epochs`, resuming from `out_dir/last.pt` when its config hash matches.

    `train_epoch(epoch)` returns the train_* columns, `evaluate(epoch)` the valid_* columns (including
    `spec.monitor`). After every epoch `history.csv` and `last.pt` are rewritten; then `on_epoch_end`.
    """
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stopper = EarlyStopping(patience=spec.early_stop)
    history: list[dict[str, float]] = []
    best_state = cpu_state(model)
    start, stopped = 1, False
    resumed_from = 0
    last = out / LAST
    if last.exists():
        ckpt = _try_load(last)
        if ckpt is not None and ckpt.get("config_hash") == spec.config_hash:
            model.load_state_dict(ckpt["state_dict"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            if runtime.scaler.is_enabled() and ckpt.get("scaler"):
                runtime.scaler.load_state_dict(ckpt["scaler"])
            b = ckpt["best"]
            stopper = EarlyStopping(spec.early_stop, b["value"], b["epoch"], b["bad_epochs"])
            best_state = ckpt["best_state"]
            history = list(ckpt["history"])
            set_rng_state(ckpt["rng"])
            resumed_from = int(ckpt["epoch"])
            start, stopped = resumed_from + 1, bool(ckpt.get("stopped", False))
            log(f"resuming from {last} after epoch {resumed_from}")
        else:
            log(f"ignoring {last}: it belongs to another configuration; starting over")
    epoch = start - 1
    for epoch in range(start, spec.epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        lr = current_lr(optimizer)
        train_row = train_epoch(epoch)
        valid_row = evaluate(epoch)
        value = float(valid_row[spec.monitor])
        if not np.isfinite(value) or not np.isfinite(train_row.get("train_loss", 0.0)):
            raise RuntimeError(
                f"training diverged at epoch {epoch} (train_loss={train_row.get('train_loss')}, "
                f"{spec.monitor}={value}); lower train.lr or check the input features"
            )
        scheduler.step(value)
        if stopper.update(value, epoch):
            best_state = cpu_state(model)
        stopped = stopper.should_stop
        row = {"epoch": epoch, "lr": lr, **train_row, **valid_row}
        row["seconds"] = round(time.perf_counter() - t0, 3)
        history.append({c: row.get(c, float("nan")) for c in spec.columns})
        save_csv(out / "history.csv", pd.DataFrame(history, columns=spec.columns))
        save_checkpoint(
            last,
            {
                **spec.header,
                "config_hash": spec.config_hash,
                "state_dict": cpu_state(model),
                "best_state": best_state,
                "stopped": stopped,
                **_states(optimizer, scheduler, runtime, epoch, stopper, history),
            },
        )
        log(
            f"epoch {epoch}/{spec.epochs} lr {lr:.2e} "
            + " ".join(f"{k} {v:.4f}" for k, v in {**train_row, **valid_row}.items())
            + f" [{row['seconds']:.1f}s]"
            + (" *" if stopper.best_epoch == epoch else "")
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        if stopped:
            log(
                f"early stop after epoch {epoch}: no better {spec.monitor} for {spec.early_stop} epochs"
            )
    final = _states(optimizer, scheduler, runtime, max(epoch, resumed_from), stopper, history)
    return LoopResult(
        best_epoch=stopper.best_epoch,
        best_value=stopper.best,
        best_state=best_state,
        history=history,
        epochs_run=len(history),
        resumed_from=resumed_from,
        final=final,
    )


def _states(
    optimizer, scheduler, runtime: Runtime, epoch: int, stopper: EarlyStopping, history
) -> dict:
    return {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": runtime.scaler.state_dict() if runtime.scaler.is_enabled() else {},
        "epoch": int(epoch),
        "best": {
            "value": float(stopper.best),
            "epoch": int(stopper.best_epoch),
            "bad_epochs": int(stopper.bad_epochs),
        },
        "rng": rng_state(runtime),
        "history": list(history),
    }


def _try_load(path: Path) -> dict[str, Any] | None:
    try:
        return load_checkpoint(path)
    except UserError as err:
        log(f"{err}; starting over")
        return None


def finish(out_dir: Path, checkpoint: dict[str, Any]) -> Path:
    """Write the final `model.pt` (selected weights) and remove `last.pt`."""
    out = Path(out_dir)
    path = out / FINAL
    save_checkpoint(path, {"aemt_version": __version__, **checkpoint})
    (out / LAST).unlink(missing_ok=True)
    return path


def config_from_dict(cls: type[T], values: dict | None, section: str) -> T:
    """Build a dataclass config from a dict, rejecting unknown keys with a UserError."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"hparams '{section}': unknown key(s) {unknown}; allowed: {sorted(names)}")
    try:
        return cls(**values)
    except TypeError as err:  # e.g. a string where a number belongs
        raise UserError(f"hparams '{section}': bad value type ({err})") from err


def header(
    kind: str, model_config: dict, train_config: dict, feature_info: dict, normaliser: dict
) -> dict:
    return {
        "kind": kind,
        "model_config": model_config,
        "train_config": train_config,
        "feature_info": feature_info,
        "normaliser": normaliser,
        "aemt_version": __version__,
    }
