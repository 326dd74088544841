"""Autoencoder pretraining (SPEC §6): per-modality Transformer (or LSTM) autoencoders + MCD.

Data: the labelled train split plus the `unlabeled` split (never valid/test); a seeded random `holdout`
fraction of that pool is the validation set for early stopping. The normaliser is fitted on the labelled
train split only. The loss of a batch and the holdout diagnostics (MCD accuracy, each modality's
reconstruction error next to predicting the per-feature mean) are :mod:`aemt.train.pretext`; tampering
donors come from the batch or from other clips of the same video (`donor`, :mod:`aemt.train.donors`).

Outputs in `out_dir`: `model.pt` (state_dict = `MultimodalAutoencoder.state_dict()` of the epoch with the
lowest holdout loss, plus `consistency_state_dict`), `history.csv`; `last.pt` while running.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from aemt.constants import MODALITIES, PRETRAIN_HISTORY
from aemt.errors import UserError
from aemt.io import config_hash
from aemt.models.autoencoder import MultimodalAutoencoder
from aemt.models.config import ModelConfig
from aemt.models.consistency import ConsistencyClassifier
from aemt.train.checkpoint import cpu_state, finish, header
from aemt.train.donors import DONORS, SameVideoDonors
from aemt.train.loop import LoopSpec, fit
from aemt.train.pretext import Sums, donor_rows, evaluate_pretrain, mean_baseline, pretrain_losses
from aemt.train.runtime import (
    build_optimizer,
    build_scheduler,
    check_patience,
    check_sections,
    config_from_dict,
    epoch_generator,
    log,
    optimizer_step,
    progress,
    seed_everything,
    setup_runtime,
)
from aemt.train.splits import (
    Normaliser,
    SplitData,
    batch_indices,
    data_fingerprint,
    gather,
    has_split,
    load_info,
    load_split,
    model_config_for,
    to_tensors,
)


@dataclass
class PretrainConfig:
    """Optimisation settings of autoencoder pretraining (paper: 500 epochs, early stopping)."""

    epochs: int = 500
    batch_size: int = 64
    lr: float = 5e-4
    weight_decay: float = 0.005
    clip: float = 1.0
    lambda1: float = 0.4
    p_tamper: float = 0.5
    holdout: float = 0.1
    early_stop: int = 20
    lr_patience: int = 8
    lr_factor: float = 0.5
    seed: int = 1111
    max_unlabeled: int | None = None
    donor: str = "batch"  # tampering donors: batch | same_video (train/donors.py)

    def __post_init__(self) -> None:
        if not 0.0 < self.holdout < 1.0:
            raise UserError(f"train.holdout must be in (0, 1); got {self.holdout}")
        if self.lambda1 < 0 or not 0.0 <= self.p_tamper <= 1.0:
            raise UserError("train.lambda1 must be >= 0 and train.p_tamper in [0, 1]")
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError("train.epochs and train.batch_size must be >= 1")
        if self.donor not in DONORS:
            raise UserError(f"train.donor must be one of {DONORS}; got {self.donor!r}")
        check_patience(self.lr_patience, self.early_stop)


class PretrainModel(nn.Module):
    """The autoencoders plus (when lambda1 > 0) the consistency classifier, optimised together."""

    def __init__(self, cfg: ModelConfig, with_consistency: bool) -> None:
        super().__init__()
        self.autoencoder = MultimodalAutoencoder(cfg)
        self.consistency = ConsistencyClassifier(cfg) if with_consistency else None


def run_pretrain(
    aligned_dir: str | Path,
    out_dir: str | Path,
    hparams: dict[str, Any],
    threads: int | None = None,
    *,
    device: str | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Pretrain the autoencoders; write `model.pt` and `history.csv` into `out_dir`; return a summary."""
    check_sections(hparams)
    cfg = config_from_dict(PretrainConfig, hparams.get("train"), "train")
    out = Path(out_dir)
    seed_everything(cfg.seed)
    runtime = setup_runtime(threads, device)

    train = load_split(aligned_dir, "train")
    info = load_info(aligned_dir, "train")
    normaliser = Normaliser.fit(train)  # labelled train split only
    pool = _pool(aligned_dir, train, cfg)
    if len(pool) < 2:
        raise UserError(f"{aligned_dir}: pretraining needs at least 2 clips (train + unlabeled)")
    order = np.random.default_rng(cfg.seed).permutation(len(pool))
    n_hold = min(len(pool) - 1, max(1, int(round(cfg.holdout * len(pool)))))
    hold = pool.subset(np.sort(order[:n_hold]), "holdout")
    fit_rows = pool.subset(np.sort(order[n_hold:]), "pretrain")
    n_pool = len(pool)
    del pool  # the subsets are copies; keep peak memory near 2x the features
    model_cfg = model_config_for(hparams.get("model"), train)
    tr = to_tensors(fit_rows, normaliser, runtime.device)
    va = to_tensors(hold, normaliser, runtime.device)
    donors = None
    if cfg.donor == "same_video":
        donors = {"train": SameVideoDonors(fit_rows.keys), "holdout": SameVideoDonors(hold.keys)}
        share = 100 * donors["train"].coverage
        log(f"pretrain: same-video donors for {share:.0f}% of the clips (the rest: batch donors)")
    baseline = mean_baseline(tr, va)  # holdout MSE of predicting the per-feature mean, per modality

    model = PretrainModel(model_cfg, with_consistency=cfg.lambda1 > 0).to(runtime.device)
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.lr_factor, cfg.lr_patience)
    head = header("pretrain", model_cfg.to_dict(), asdict(cfg), info, normaliser.to_dict())
    fingerprint = data_fingerprint(aligned_dir, ["train", "unlabeled"])
    spec = LoopSpec(
        out_dir=out,
        epochs=cfg.epochs,
        early_stop=cfg.early_stop,
        monitor="valid_loss",
        columns=list(PRETRAIN_HISTORY),
        header=head,
        config_hash=config_hash({**head, "data": fingerprint, "device": runtime.device.type}),
    )
    log(
        f"pretrain: {len(fit_rows)} clips ({len(train)} train + {n_pool - len(train)} unlabeled, "
        f"minus {len(hold)} held out) on {runtime.describe()}"
    )

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        shuffle = epoch_generator(cfg.seed, epoch, 0)
        tamper = epoch_generator(cfg.seed, epoch, 1)
        batches = batch_indices(len(fit_rows), cfg.batch_size, shuffle)
        sums = Sums()
        for idx in progress(batches, f"pretrain {epoch}/{cfg.epochs}"):
            bx, bm = gather(tr.xs, tr.masks, idx, runtime.device)
            donor = (
                None if donors is None else donor_rows(tr, donors["train"], idx, tamper, runtime)
            )
            parts = pretrain_losses(model, bx, bm, cfg, tamper, runtime, donor)
            optimizer_step(parts["loss"], model, optimizer, runtime, cfg.clip)
            sums.add(parts, len(idx))
        return sums.row("train")

    def evaluate(epoch: int) -> dict[str, float]:
        pool = None if donors is None else donors["holdout"]
        return {**evaluate_pretrain(model, va, cfg, runtime, pool), **baseline}

    result = fit(spec, model, optimizer, scheduler, runtime, train_epoch, evaluate, on_epoch_end)
    model.load_state_dict(result.best_state)
    consistency = None if model.consistency is None else cpu_state(model.consistency)
    path = finish(
        out,
        {
            **head,
            "state_dict": cpu_state(model.autoencoder),
            "consistency_state_dict": consistency,
            **result.final,
            "best": {"value": result.best_value, "epoch": result.best_epoch},
            "data": {"n_fit": len(fit_rows), "n_holdout": len(hold), "n_train": len(train)},
            "diagnostics": {**result.history[result.best_epoch - 1], **baseline}
            if result.history
            else baseline,
        },
    )
    log(f"pretrain: best holdout loss {result.best_value:.4f} at epoch {result.best_epoch}")
    return {
        "model": str(path),
        "best_epoch": result.best_epoch,
        "best_valid_loss": result.best_value,
        "epochs_run": result.epochs_run,
    }


def _pool(aligned_dir: str | Path, train: SplitData, cfg: PretrainConfig) -> SplitData:
    """Labelled train + (optionally capped, seeded subset of) unlabeled clips."""
    if not has_split(aligned_dir, "unlabeled"):
        return train
    unl = load_split(aligned_dir, "unlabeled")
    if cfg.max_unlabeled is not None and len(unl) > cfg.max_unlabeled:
        keep = np.random.default_rng(cfg.seed + 1).choice(
            len(unl), cfg.max_unlabeled, replace=False
        )
        unl = unl.subset(np.sort(keep))
    for m in MODALITIES:
        if unl.xs[m].shape[1:] != train.xs[m].shape[1:]:
            raise UserError(
                f"{Path(aligned_dir) / 'unlabeled' / (m + '.npy')}: shape {unl.xs[m].shape[1:]} per clip "
                f"differs from train {train.xs[m].shape[1:]}; align both with the same settings"
            )
    return SplitData(
        name="pool",
        keys=train.keys + unl.keys,
        xs={m: np.concatenate([train.xs[m], unl.xs[m]]) for m in MODALITIES},
        masks={m: np.concatenate([train.masks[m], unl.masks[m]]) for m in MODALITIES},
        labels=None,
        info=train.info,
    )
