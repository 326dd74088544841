"""The epoch loop shared by pretraining and fine-tuning (`fit`): train, validate, step the LR schedule,
early-stop, keep the best weights, and after every epoch rewrite `history.csv` and `last.pt`, so that a
run killed after epoch k and restarted from `last.pt` ends with the same weights as an unbroken run (every
per-epoch random stream comes from a generator seeded by (seed, epoch); the global RNG states are saved).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from aemt.errors import UserError
from aemt.io import save_csv
from aemt.train.checkpoint import (
    LAST,
    cpu_state,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from aemt.train.runtime import Runtime, current_lr, log


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
