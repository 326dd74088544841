"""AE-MT fine-tuning (SPEC §6): pretrained encoders + MulT fusion, L_ft = L_senti + lambda2 * L_con.

With `pretrained`, the pretraining checkpoint's features must match the aligned data, its normaliser is
reused and its encoders are loaded (`AEMT.load_pretrained_encoders`); the encoder-shaping model fields
(encoder kind, d_model, heads, kernels, layers) come from its model config. Without it (the `mult`
variant) the model starts from random weights and the normaliser is fitted on the train split.

Each step with lambda2 > 0 runs the anchor view and the strong-positive view (inputs with dropout, masks
unchanged) as ONE forward of the concatenated batch [2B, ...]; L_senti = MSE on the anchor half.
With `modality_dropout` > 0 (robust training, variant `aemt_md`) each training sample first loses whole
modalities at random (:func:`aemt.train.missing.modality_dropout`; both views alike); valid and test
batches never do.

Selection: the epoch with the lowest validation MAE (`select: "mae"`, default, MMSA's validation L1) or
validation MSE (`select: "loss"`); the same quantity drives ReduceLROnPlateau and early stopping. Only
the valid split is looked at during training; the test split is predicted exactly once, at the end, with
the selected weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from aemt.constants import (
    FINETUNE_HISTORY,
    METRIC_KEYS,
    MODALITIES,
    PREDICTION_COLUMNS,
    SCALES,
)
from aemt.errors import UserError
from aemt.evaluate.metrics import evaluate
from aemt.io import config_hash, save_csv, save_json, sha256_file
from aemt.models.aemt import AEMT
from aemt.models.config import ModelConfig
from aemt.models.projection import ProjectionHead
from aemt.train.checkpoint import cpu_state, finish, header, load_checkpoint
from aemt.train.loop import LoopSpec, fit
from aemt.train.losses import CONTRASTIVE_FORMS, contrastive_loss, polarity
from aemt.train.missing import drop_steps, modality_dropout
from aemt.train.runtime import (
    Runtime,
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
    Tensors,
    batch_indices,
    data_fingerprint,
    gather,
    load_info,
    load_split,
    model_config_for,
    to_tensors,
)
from aemt.train.transfer import check_dims, check_pretrained, merge_encoder_fields

PROJECTIONS = ("mlp", "none")


@dataclass
class FinetuneConfig:
    """Optimisation settings of AE-MT fine-tuning (defaults: MMSA's MulT for SIMS v2 + the paper)."""

    epochs: int = 50
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.005
    clip: float = 1.0
    lambda2: float = 0.1  # the paper's 1.5 with eq. 18; 0.1 chosen by validation MAE with SupCon
    tau: float = 0.5
    contrastive: str = "supcon"
    projection: str = "mlp"  # mlp: the contrastive loss sees a projection head's output; none: Z
    projection_dim: int = 64
    input_dropout: float = 0.1
    modality_dropout: float = 0.0  # per training sample, drop each modality with this probability
    early_stop: int = 8
    lr_patience: int = 4
    lr_factor: float = 0.5
    select: str = "mae"

    def __post_init__(self) -> None:
        if self.contrastive not in CONTRASTIVE_FORMS:
            raise UserError(
                f"train.contrastive must be one of {CONTRASTIVE_FORMS}; got {self.contrastive!r}"
            )
        if self.projection not in PROJECTIONS or self.projection_dim < 1:
            raise UserError(
                f"train.projection must be one of {PROJECTIONS} and train.projection_dim >= 1; got "
                f"{self.projection!r}, {self.projection_dim}"
            )
        if self.select not in ("mae", "loss"):
            raise UserError(f"train.select must be 'mae' or 'loss'; got {self.select!r}")
        if not 0.0 <= self.input_dropout < 1.0 or self.lambda2 < 0 or self.tau <= 0:
            raise UserError("train: need 0 <= input_dropout < 1, lambda2 >= 0, tau > 0")
        if self.epochs < 1 or self.batch_size < 1:
            raise UserError("train.epochs and train.batch_size must be >= 1")
        check_patience(self.lr_patience, self.early_stop)
        if not 0.0 <= self.modality_dropout < 1.0:
            raise UserError(
                f"train.modality_dropout must be in [0, 1); got {self.modality_dropout!r}"
            )


def eval_batch_size(batch_size: int) -> int:
    """The batch size of evaluation passes (valid, test, robustness): 4 x the finetune batch size."""
    return 4 * batch_size


class FinetuneModel(nn.Module):
    """AE-MT plus, when the contrastive loss is on and `projection` is mlp, its projection head; the two
    are trained together, and the head is used by the contrastive term only."""

    def __init__(self, model_cfg: ModelConfig, cfg: FinetuneConfig) -> None:
        super().__init__()
        self.aemt = AEMT(model_cfg)
        self.projection = None
        if cfg.lambda2 > 0 and cfg.projection == "mlp":
            width = 6 * model_cfg.d_model
            self.projection = ProjectionHead(in_dim=width, out_dim=cfg.projection_dim)

    def forward(self, xs: dict[str, torch.Tensor], masks: dict[str, torch.Tensor]):
        return self.aemt(xs, masks)  # pred [B], z [B, 6d]

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """What the contrastive loss compares: the head's output [B, p], or Z itself [B, 6d]."""
        return z if self.projection is None else self.projection(z)


def finetune_losses(
    model: FinetuneModel,
    xs: dict[str, torch.Tensor],
    masks: dict[str, torch.Tensor],
    labels: torch.Tensor,
    cfg: FinetuneConfig,
    runtime: Runtime,
) -> dict[str, torch.Tensor]:
    """loss / senti / con for one batch; labels [B, 4] (M, T, A, V).

    With lambda2 > 0 the anchor view and the strong-positive view (inputs with dropout, masks unchanged)
    run as ONE forward of the concatenated batch [2B]; L_senti is the MSE on the anchor half.
    """
    y = labels[:, 0]  # [B]
    b = y.shape[0]
    if cfg.lambda2 > 0:
        sp = {m: F.dropout(xs[m], cfg.input_dropout, training=True) for m in MODALITIES}
        both_x = {m: torch.cat([xs[m], sp[m]]) for m in MODALITIES}  # [2B, L, D]
        both_m = {m: torch.cat([masks[m], masks[m]]) for m in MODALITIES}  # [2B, L]
        with runtime.autocast():
            pred, z = model(both_x, both_m)  # [2B], [2B, 6d]
            p = model.project(z)  # [2B, k]
        senti = F.mse_loss(pred[:b].float(), y)
        con = contrastive_loss(
            p[:b].float(),
            p[b:].float(),
            polarity(y),
            polarity(labels[:, 1:]),
            tau=cfg.tau,
            form=cfg.contrastive,
        )
        return {"loss": senti + cfg.lambda2 * con, "senti": senti, "con": con}
    with runtime.autocast():
        pred, _ = model(xs, masks)  # [B]
    senti = F.mse_loss(pred.float(), y)
    return {"loss": senti, "senti": senti, "con": torch.zeros((), device=senti.device)}


def predict(model: nn.Module, data: Tensors, runtime: Runtime, batch_size: int) -> np.ndarray:
    """Predictions [N] for a whole split, in its row order (eval mode, no grad)."""
    model.eval()
    outs = []
    with torch.inference_mode():
        for idx in batch_indices(len(data), batch_size):
            bx, bm = gather(data.xs, data.masks, idx, runtime.device)
            with runtime.autocast():
                pred, _ = model(bx, bm)  # [b]
            outs.append(pred.float().cpu())
    return torch.cat(outs).numpy().astype(np.float64)


def run_finetune(
    aligned_dir: str | Path,
    out_dir: str | Path,
    hparams: dict[str, Any],
    pretrained: str | Path | None,
    scale: str,
    variant: str,
    seed: int,
    threads: int | None = None,
    *,
    device: str | None = None,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Fine-tune AE-MT for one seed; write model.pt, predictions.csv, metrics.json, history.csv."""
    check_sections(hparams)
    if scale not in SCALES:
        raise UserError(f"--scale must be one of {SCALES}; got {scale!r}")
    cfg = config_from_dict(FinetuneConfig, hparams.get("train"), "train")
    out = Path(out_dir)
    seed_everything(seed)
    runtime = setup_runtime(threads, device)

    train, valid, test = (load_split(aligned_dir, s) for s in ("train", "valid", "test"))
    for split in (train, valid, test):
        if len(split) == 0:
            raise UserError(
                f"{Path(aligned_dir) / split.name / 'meta.csv'}: no clips in split '{split.name}' "
                "(all excluded?); see the manifest's status column"
            )
    info = load_info(aligned_dir, "train")
    if info.get("scale") not in (None, scale):
        raise UserError(
            f"{Path(aligned_dir) / 'train' / 'info.json'}: data scale is '{info['scale']}' but "
            f"--scale {scale} was given; use the dataset's scale"
        )
    model_hp = dict(hparams.get("model") or {})
    ckpt = None
    if pretrained is not None:
        ckpt = load_checkpoint(pretrained)
        check_pretrained(Path(pretrained), ckpt, info)
        model_hp = merge_encoder_fields(model_hp, ckpt["model_config"])
        normaliser = Normaliser.from_dict(ckpt["normaliser"])
    else:
        normaliser = Normaliser.fit(train)  # labelled train split only
    model_cfg = model_config_for(model_hp, train)
    if ckpt is not None:
        check_dims(Path(pretrained), ckpt["model_config"], model_cfg)
    tr, va, te = (to_tensors(s, normaliser, runtime.device) for s in (train, valid, test))

    model = FinetuneModel(model_cfg, cfg).to(runtime.device)
    if ckpt is not None:
        try:
            loaded = model.aemt.load_pretrained_encoders(ckpt["state_dict"])
        except ValueError as err:
            raise UserError(f"{pretrained}: {err}") from err
        log(f"finetune: loaded {len(loaded)} pretrained encoder tensors from {pretrained}")
    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay)
    scheduler = build_scheduler(optimizer, cfg.lr_factor, cfg.lr_patience)
    train_config = {**asdict(cfg), "seed": int(seed), "variant": variant, "scale": scale}
    head = header("finetune", model_cfg.to_dict(), train_config, info, normaliser.to_dict())
    head["pretrained"] = None if pretrained is None else str(pretrained)
    monitor = "valid_mae" if cfg.select == "mae" else "valid_loss"
    spec = LoopSpec(
        out_dir=out,
        epochs=cfg.epochs,
        early_stop=cfg.early_stop,
        monitor=monitor,
        columns=list(FINETUNE_HISTORY),
        header=head,
        config_hash=config_hash(
            {
                **head,
                "pretrained_sha256": None if pretrained is None else sha256_file(pretrained),
                "data": data_fingerprint(aligned_dir, ["train", "valid", "test"]),
                "device": runtime.device.type,
            }
        ),
    )
    log(
        f"finetune {variant} seed {seed}: {len(tr)} train / {len(va)} valid / {len(te)} test clips "
        f"on {runtime.describe()}"
    )

    def train_epoch(epoch: int) -> dict[str, float]:
        model.train()
        shuffle = epoch_generator(seed, epoch, 0)
        dropper = epoch_generator(seed, epoch, 1)  # modality dropout (train batches only)
        totals = torch.zeros(3, device=runtime.device)
        for idx in progress(
            batch_indices(len(tr), cfg.batch_size, shuffle), f"finetune {epoch}/{cfg.epochs}"
        ):
            bx, bm = gather(tr.xs, tr.masks, idx, runtime.device)
            if cfg.modality_dropout > 0:
                bx, bm = drop_steps(bx, bm, modality_dropout(bm, cfg.modality_dropout, dropper))
            parts = finetune_losses(
                model, bx, bm, tr.labels[idx.to(tr.labels.device)], cfg, runtime
            )
            optimizer_step(parts["loss"], model, optimizer, runtime, cfg.clip)
            totals += torch.stack(
                [parts[k].detach().float() for k in ("loss", "senti", "con")]
            ) * len(idx)
        loss, senti, con = (totals / len(tr)).tolist()
        return {"train_loss": loss, "train_senti": senti, "train_con": con}

    def evaluate_valid(epoch: int) -> dict[str, float]:
        pred = predict(model, va, runtime, eval_batch_size(cfg.batch_size))
        y = valid.labels[:, 0].astype(np.float64)
        return {
            "valid_loss": float(np.mean((pred - y) ** 2)),
            "valid_mae": float(np.mean(np.abs(pred - y))),
        }

    result = fit(
        spec, model, optimizer, scheduler, runtime, train_epoch, evaluate_valid, on_epoch_end
    )
    model.load_state_dict(result.best_state)
    valid_metrics = evaluate(
        predict(model, va, runtime, eval_batch_size(cfg.batch_size)), valid.labels[:, 0], scale
    )
    test_pred = predict(
        model, te, runtime, eval_batch_size(cfg.batch_size)
    )  # the one and only look at test
    test_labels = test.labels[:, 0].astype(np.float64)
    metrics = {
        **evaluate(test_pred, test_labels, scale),
        "variant": variant,
        "seed": int(seed),
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "selection": monitor,
        "valid": valid_metrics,
        "n_train": len(tr),
        "n_valid": len(va),
        "n_test": len(te),
        "scale": scale,
        "pretrained": head["pretrained"],
    }
    save_csv(
        out / "predictions.csv",
        pd.DataFrame(
            dict(zip(PREDICTION_COLUMNS, (test.keys, test_labels, test_pred), strict=True))
        ),
    )
    save_json(out / "metrics.json", metrics)
    finish(
        out,
        {
            **head,
            "state_dict": cpu_state(model.aemt),  # the selected weights, AEMT's own names
            "projection_state_dict": None
            if model.projection is None
            else cpu_state(model.projection),
            **result.final,
            "best": {"value": result.best_value, "epoch": result.best_epoch},
        },
    )
    log(
        f"finetune {variant} seed {seed}: best epoch {result.best_epoch}, test "
        + " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in METRIC_KEYS[scale])
    )
    return metrics
