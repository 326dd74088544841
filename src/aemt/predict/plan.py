"""What a prediction run would do, checked against the checkpoint before anything is computed.

`build_plan` rebuilds the extractors, the alignment (length, text pooling, mode) and, where needed, the
speech recognizer from the checkpoint's `feature_info`; `compare` / `check_plan` list every field in which
this run would differ from what the model was trained on (see `aemt.predict`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aemt.constants import ALIGN_MODES, FEATURE_DIR, MODALITIES
from aemt.errors import UserError
from aemt.features.base import Extractor, make_extractor

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
    asr_model: str | None = None  # another location (or choice) of its speech recognizer


@dataclass
class Plan:
    """What this run would extract and how it would align it (keyed by aligned modality name)."""

    extractors: dict[str, Extractor]
    dims: dict[str, int]
    lengths: dict[str, int]
    align_length: int
    text_pooling: str
    align_mode: str = "bins"  # bins | words (the checkpoint's)
    asr_mode: str = "never"  # how the training transcripts got their word times (never: spread)
    asr_options: Any = None  # aemt.asr.recognizer.AsrOptions for clips that need recognition
    asr_record: dict | None = None  # the checkpoint's `asr` record (model, hash, settings)
    recognizer: Any = None  # built when every clip needs recognition (words mode), else on demand


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
    from aemt.features.text import GT_MINILM, gt_minilm_folder

    text = dict(prov["text"]["config"])
    model = str(text.pop("model", "auto"))
    if cfg.text_model:
        model = cfg.text_model
    elif model == GT_MINILM:  # "auto" (en) at training: the bundled folder, whatever the language
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
    mode = str(info.get("align_mode") or "bins")  # checkpoints from before word alignment: bins
    if mode not in ALIGN_MODES:
        raise UserError(
            f"{path}: the checkpoint was trained on tensors aligned with mode {mode!r}, which this "
            f"aemt does not know ({', '.join(ALIGN_MODES)}); predict with the aemt version that "
            "trained it, or retrain"
        )
    record = info.get("asr") or {}
    plan = Plan(
        extractors=extractors,
        dims={m: _dim(extractors[m]) for m in MODALITIES},
        lengths={"text": 1 if pooling == "cls" else length, "audio": length, "vision": length},
        align_length=length,
        text_pooling=pooling,
        align_mode=mode,
        asr_mode=str(record.get("mode") or "never"),
        asr_options=asr_options(info, options["text"], cfg),
        asr_record=record or None,
    )
    if mode == "words" and plan.asr_mode != "never":  # every clip gets word times, as in training
        plan.recognizer = recognizer(path, plan)
    return plan


def asr_options(info: dict, text_options: dict, cfg: PredictConfig):
    """Recognition settings from the checkpoint's `asr` record (`--asr-model` overrides the model;
    without a record: the `auto` model of the text's language)."""
    from aemt.asr.recognizer import AUTO_LABEL, AsrOptions

    record = info.get("asr") or {}
    config = record.get("config") or {}
    model = cfg.asr_model or record.get("model") or "auto"
    return AsrOptions(
        model="auto" if model == AUTO_LABEL else str(model),
        language=str(record.get("language") or text_options.get("language") or "en"),
        beam_size=int(config.get("beam_size", 1)),
        compute_type=str(config.get("compute_type", "int8")),
        vad=bool(config.get("vad", False)),
        threads=int(text_options.get("threads") or 1),
        device=cfg.device,
    )


def recognizer(path: str | Path, plan: Plan):
    """The speech recognizer this run needs (model resolved, not loaded)."""
    from aemt.asr.recognizer import Recognizer

    try:
        return Recognizer(plan.asr_options)
    except UserError as err:
        raise UserError(
            f"{path}: cannot set up the speech recognition this prediction needs ({err}). Give "
            "each clip its transcript (--text / --transcripts) where that is enough, or point "
            "--asr-model at the Whisper model the checkpoint was trained with"
        ) from err


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
    differ("alignment mode", info.get("align_mode"), plan.align_mode)
    trained_asr = (plan.asr_record or {}).get("model_hash")
    here = plan.recognizer.model_hash if plan.recognizer is not None else None
    if trained_asr and here and trained_asr != here:  # word times come from another recognizer
        diffs.append(
            f"speech recognizer (word times): checkpoint was trained with "
            f"{plan.asr_record.get('model')!r} (sha256 {trained_asr[:12]}...), this run would use "
            f"{plan.recognizer.model!r} (sha256 {here[:12]}...); use --asr-model pointing at the "
            "Whisper model it was trained with"
        )
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
