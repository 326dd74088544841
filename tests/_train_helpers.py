"""Write a small synthetic aligned dataset in the contract layout (docs/contracts.md) for training tests.

`<root>/<split>/{text,audio,vision}.npy` float32 [N, L, D], `*_mask.npy` bool [N, L], `meta.csv`
(key, split, label, label_T, label_A, label_V, text, status) and `info.json`. Labels depend on the
features (so a model can learn them), end-padding is random per clip, and features have non-zero means
and scales so that normalisation matters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

DIMS = {"text": 12, "audio": 5, "vision": 7}
SPLITS = {"train": 40, "valid": 12, "test": 12, "unlabeled": 24}

TINY_MODEL = {
    "d_model": 8,
    "n_heads": 2,
    "enc_layers": 1,
    "dec_layers": 1,
    "cross_layers": 1,
    "self_layers": 1,
    "dropout": 0.1,
    "attn_dropout": 0.0,
    "embed_dropout": 0.1,
    "out_dropout": 0.1,
}
# The demo pipeline's model (tests/test_predict.py, tests/test_predict_words.py) and its 1-epoch training
TINY = {"d_model": 8, "n_heads": 2, "enc_layers": 1, "dec_layers": 1}
TINY |= {"cross_layers": 1, "self_layers": 1}
DEMO_TRAIN = {"epochs": 1, "batch_size": 4, "early_stop": 2, "lr_patience": 1}


class Killed(Exception):
    """Raised from `on_epoch_end` to simulate a job killed after an epoch."""


def kill_after(k: int):
    """An `on_epoch_end` hook raising `Killed` once epoch `k` has ended."""

    def hook(epoch: int) -> None:
        if epoch == k:
            raise Killed(epoch)

    return hook


def write_aligned(
    root: Path,
    length: int = 8,
    sizes: dict[str, int] | None = None,
    seed: int = 0,
    scale: str = "sims",
    unimodal: bool = True,
    offsets: dict[str, float] | None = None,
) -> Path:
    """Write splits under `root`; `offsets[split]` shifts that split's features (to test normalisers)."""
    sizes = SPLITS if sizes is None else sizes
    offsets = offsets or {}
    rng = np.random.default_rng(seed)
    top = 1.0 if scale == "sims" else 3.0
    for split, n in sizes.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        xs, masks = {}, {}
        for j, (m, d) in enumerate(DIMS.items()):
            lens = rng.integers(max(1, length // 2), length + 1, size=n)
            mask = np.arange(length)[None, :] < lens[:, None]  # [N, L]
            x = rng.normal(2.0 + j + offsets.get(split, 0.0), 1.5 + j, size=(n, length, d))
            x = np.where(mask[..., None], x, 0.0).astype(np.float32)
            xs[m], masks[m] = x, mask
            np.save(folder / f"{m}.npy", x)
            np.save(folder / f"{m}_mask.npy", mask)
        # per-clip mean of feature 0 of each modality (over valid positions), centred
        sig = {
            m: (xs[m][..., 0] * masks[m]).sum(1) / masks[m].sum(1) - (2.0 + j)
            for j, m in enumerate(DIMS)
        }
        uni = {m: np.clip(np.round(np.tanh(sig[m] / 2.0) * 5) / 5 * top, -top, top) for m in DIMS}
        label = np.clip(
            np.round((uni["text"] + 0.5 * uni["audio"] + 0.5 * uni["vision"]) / 2 * 5) / 5,
            -top,
            top,
        )
        labelled = split != "unlabeled"
        meta = pd.DataFrame(
            {
                "key": [f"vid{i // 4:03d}/{i % 4:04d}" for i in range(n)],
                "split": split,
                "label": label if labelled else np.nan,
                "label_T": uni["text"] if labelled and unimodal else np.nan,
                "label_A": uni["audio"] if labelled and unimodal else np.nan,
                "label_V": uni["vision"] if labelled and unimodal else np.nan,
                "text": "some words",
                "status": "ok",
            }
        )
        meta.to_csv(folder / "meta.csv", index=False)
        info = {
            "dims": {"text": DIMS["text"], "audio": DIMS["audio"], "vision": DIMS["vision"]},
            "lengths": {m: length for m in DIMS},
            "text_model": "synthetic",
            "text_model_hash": "0" * 64,
            "audio_feature_set": "synthetic",
            "visual_features": ["synthetic"],
            "align_length": length,
            "text_pooling": "tokens",
            "scale": scale,
            "n_clips": n,
            "n_excluded": 0,
            "status_counts": {"ok": n},
        }
        (folder / "info.json").write_text(json.dumps(info))
    return root


def hparams(kind: str, **train: object) -> dict:
    """Tiny model + fast training settings for tests."""
    base = (
        {"epochs": 3, "batch_size": 16, "early_stop": 3, "lr_patience": 1, "lr": 2e-3, "seed": 7}
        if kind == "pretrain"
        else {"epochs": 3, "batch_size": 8, "early_stop": 3, "lr_patience": 1, "lr": 2e-3}
    )
    return {"model": dict(TINY_MODEL), "train": {**base, **train}}


def altered_checkpoint(checkpoint: Path, tmp_path: Path, **changes) -> Path:
    """A copy of a checkpoint whose `feature_info` has `changes` (a value None deletes the key)."""
    import torch

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is None:
            del ckpt["feature_info"][key]
        else:
            ckpt["feature_info"][key] = value
    path = tmp_path / "altered.pt"
    torch.save(ckpt, path)
    return path


def demo_pipeline(root: Path, length: int, options: dict, words: bool = False) -> pd.DataFrame:
    """Run the pipeline once on a few generated demo clips under `root` (`ds/`, `results/`): manifest,
    (with `words`: asr with the offline `missing` recognizer) text / audio / visual extraction with
    `options`, alignment to `length` (word-aligned with `words`) and a 1-epoch tiny `mult` fine-tuning
    into `results/finetune`. Returns the manifest."""
    from aemt.align.split import align_split
    from aemt.dataset import demo
    from aemt.dataset.manifest import write_manifest
    from aemt.features.runner import run_shard
    from aemt.train.finetune import run_finetune

    data, res = root / "ds", root / "results"
    demo.generate(data, n_train=4, n_valid=1, n_test=2, n_unlabeled=0, seconds=1.0, fps=8)
    pattern = "Raw/{video_id}/{clip_id}.mp4"
    manifest = write_manifest(data, "label.csv", None, pattern, "sims", 64, res / "manifest.csv")
    if words:
        from aemt.asr.recognizer import AsrOptions
        from aemt.asr.runner import asr_shard

        done = res / "asr" / "shard_0000.csv"
        asr_shard(res / "manifest.csv", 0, res / "asr", done, "missing", AsrOptions())
    for modality, opts in options.items():
        out = res / "features" / modality
        extra = {"transcripts": done} if words and modality == "text" else {}
        run_shard(modality, res / "manifest.csv", 0, out, out / "shard_0000.csv", opts, **extra)
    mode = {"mode": "words", "asr_dir": res / "asr"} if words else {}
    for split in ("train", "valid", "test"):
        align_split(res / "manifest.csv", res / "features", split, length, res / "aligned" / split,
                    **mode)  # fmt: skip
    hp = {"model": TINY, "train": DEMO_TRAIN}
    run_finetune(res / "aligned", res / "finetune", hp, None, "sims", "mult", 1111, threads=2)
    return manifest
