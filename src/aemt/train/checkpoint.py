"""Self-describing checkpoints: the header every model.pt / last.pt carries (kind, model and train
config, feature info, normaliser, package version), atomic save, load with a clear error, the global RNG
states that make resume exact, `finish` (write model.pt, drop last.pt), and `finetuned_model` (the network
of a fine-tuned checkpoint, as `aemt predict` and `aemt robustness` rebuild it)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from aemt import __version__
from aemt.errors import UserError
from aemt.io import atomic_path
from aemt.models.layers import upgrade_state_dict
from aemt.train.runtime import Runtime

LAST = "last.pt"
FINAL = "model.pt"


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
    """Load a checkpoint written by `save_checkpoint` (tensors to CPU; parameter names of this version)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad input file
        raise UserError(f"{path}: not a readable aemt checkpoint ({err}); retrain it") from err
    if not isinstance(ckpt, dict) or "kind" not in ckpt or "state_dict" not in ckpt:
        raise UserError(f"{path}: not an aemt checkpoint (no 'kind' / 'state_dict')")
    for key in ("state_dict", "best_state"):
        if isinstance(ckpt.get(key), dict):
            ckpt[key] = upgrade_state_dict(ckpt[key])
    return ckpt


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def finish(out_dir: Path, checkpoint: dict[str, Any]) -> Path:
    """Write the final `model.pt` (selected weights) and remove `last.pt`."""
    out = Path(out_dir)
    path = out / FINAL
    save_checkpoint(path, {"aemt_version": __version__, **checkpoint})
    (out / LAST).unlink(missing_ok=True)
    return path


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


def checkpoint_scale(ckpt: dict[str, Any]) -> str:
    """The label scale of a fine-tuned checkpoint: its feature info's, else its train config's, else
    "sims" (run_finetune stores train_config.scale and refuses data whose info.scale differs)."""
    info, train = ckpt.get("feature_info") or {}, ckpt.get("train_config") or {}
    return str(info.get("scale") or train.get("scale") or "sims")


def finetuned_model(ckpt: dict[str, Any], path: str | Path, device: torch.device) -> nn.Module:
    """The network of a fine-tuned checkpoint (`kind` "finetune") with its weights, in eval mode.

    ``forward(xs, masks) -> (pred [B], z)``, rebuilt from the checkpoint's own `model_config`.
    """
    from aemt.models.aemt import AEMT
    from aemt.models.config import ModelConfig

    try:
        model = AEMT(ModelConfig.from_dict(ckpt["model_config"])).to(device)
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise UserError(
            f"{path}: its weights do not fit its own model_config ({err}); retrain it"
        ) from err
    return model.eval()
