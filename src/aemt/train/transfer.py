"""Fine-tuning from a pretraining checkpoint: the checkpoint must come from pretraining on the same
features (checked field by field), and the model fields that shape the encoders are taken from it so that
its encoder weights fit."""

from __future__ import annotations

from pathlib import Path

from aemt.errors import UserError
from aemt.models.config import ModelConfig
from aemt.train.runtime import log
from aemt.train.splits import feature_mismatch

# Model fields that shape the encoders: taken from the pretraining checkpoint.
ENCODER_FIELDS = ("encoder", "d_model", "n_heads", "kernels", "enc_layers", "ff_mult", "positional")


def missing(path: Path, field: str) -> None:
    raise UserError(
        f"{path}: the pretraining checkpoint has no '{field}' (written by another aemt version, or "
        "damaged); pretrain again"
    )


def check_pretrained(path: Path, ckpt: dict, info: dict) -> None:
    if ckpt.get("kind") != "pretrain":
        raise UserError(
            f"{path}: a '{ckpt.get('kind')}' checkpoint, expected a pretraining one (kind 'pretrain')"
        )
    for key in ("model_config", "normaliser"):
        if not isinstance(ckpt.get(key), dict):
            missing(path, key)
    for key in (*ENCODER_FIELDS, "dims", "lengths"):
        if key not in ckpt["model_config"]:
            missing(path, f"model_config.{key}")
    diff = feature_mismatch(ckpt.get("feature_info"), info)
    if diff:
        k, theirs, ours = diff
        raise UserError(
            f"{path}: pretrained on other features ({k}: checkpoint {theirs!r}, aligned data "
            f"{ours!r}); pretrain again on this dataset's aligned features"
        )


def check_dims(path: Path, theirs: dict, cfg: ModelConfig) -> None:
    for key in ("dims", "lengths"):
        if {m: int(v) for m, v in theirs[key].items()} != getattr(cfg, key):
            raise UserError(
                f"{path}: model {key} {theirs[key]} do not match the aligned data {getattr(cfg, key)}; "
                "pretrain again on these features"
            )


def merge_encoder_fields(model_hp: dict, theirs: dict) -> dict:
    merged = dict(model_hp)
    for key in ENCODER_FIELDS:
        if key in model_hp and model_hp[key] != theirs[key]:
            log(f"finetune: model.{key} = {theirs[key]!r} taken from the pretrained checkpoint")
        merged[key] = theirs[key]
    return merged
