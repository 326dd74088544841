"""Extraction, alignment and scoring of new clips for `aemt predict` (see `aemt.predict`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.align.bins import align_clip
from aemt.align.words import align_clip_words, clip_token_spans
from aemt.constants import ABSENT_FLAG, EXCLUDED, MODALITIES
from aemt.dataset.clips import is_excluded, join_flags, split_flags
from aemt.dataset.manifest import probe_video
from aemt.errors import UserError
from aemt.features.base import Clip
from aemt.features.media import MediaError
from aemt.predict.plan import (
    Plan,
    PredictConfig,
    build_plan,
    check_plan,
    load_finetuned,
    recognizer,
)

SEVEN = {-3: "strongly negative", -2: "negative", -1: "weakly negative", 0: "neutral"}
SEVEN |= {1: "weakly positive", 2: "positive", 3: "strongly positive"}
COLUMNS = ["video", "score", "class", "polarity", "status"]


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
    items = [clip for clip, _ in clips]  # the text becomes the transcript used
    todo = [i for i in range(n) if not flags[i] & EXCLUDED]
    records = transcribe(plan, items, flags, todo)  # {i: asr record}
    todo = [i for i in todo if not flags[i] & EXCLUDED]
    results: dict[str, dict[int, tuple[np.ndarray, dict]]] = {m: {} for m in MODALITIES}
    index = {id(items[i]): i for i in todo}
    text = plan.extractors["text"]
    for clip, values, sidecar in text.extract_many([items[i] for i in todo]):  # batched
        results["text"][index[id(clip)]] = (values, sidecar)
    for i in tqdm(todo, desc="extract audio+visual", unit="clip", file=sys.stderr):
        for m in ("audio", "vision"):
            try:
                results[m][i] = plan.extractors[m].extract(items[i])
            except MediaError as err:
                _fail(flags[i], items[i], err)
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - one bad clip never stops the others
                _fail(flags[i], items[i], err)
    for ext in plan.extractors.values():
        ext.close()
    for i in todo:
        sidecars = {m: results[m][i][1] for m in MODALITIES if i in results[m]}
        flags[i] |= {f for sc in sidecars.values() for f in split_flags(sc.get("status", "ok"))}
        if flags[i] & EXCLUDED:
            continue
        spans = None  # [T, 2] token spans in words mode
        if plan.align_mode == "words":
            spans = clip_token_spans(sidecars["text"], records[i], items[i].video)
        for m in MODALITIES:
            values, sidecar = results[m][i]  # [T, D], sidecar dict
            absent, duration = ABSENT_FLAG[m] in flags[i], items[i].duration
            if spans is None:  # [L, D], [L]
                seq, seq_mask = align_clip(m, values, sidecar, absent, duration, plan.lengths[m])
            else:
                seq, seq_mask = align_clip_words(
                    m, values, sidecar, absent, duration, spans, plan.lengths[m]
                )
            xs[m][i] = np.where(seq_mask[:, None], np.nan_to_num(seq), 0.0)
            masks[m][i] = seq_mask
    return xs, masks, [join_flags(f) for f in flags]


def transcribe(plan: Plan, clips: list[Clip], flags: list[set[str]], todo: list[int]) -> dict:
    """Transcripts and word times where this run needs them; {clip index: asr record}.

    A clip given no text is recognised (its transcript is then the recognised text); with
    `align.mode: words` every clip gets word times as its training data did (recognised and matched,
    or spread over the clip when the checkpoint's transcripts were never recognised). Updates
    `clips` (text) and `flags` in place.
    """
    import dataclasses

    from tqdm import tqdm

    from aemt.asr.transcript import transcribe_clip

    need = [i for i in todo if plan.align_mode == "words" or not clips[i].text.strip()]
    records = {}
    for i in tqdm(need, desc="speech recognition", unit="clip", file=sys.stderr, disable=not need):
        given = bool(clips[i].text.strip())
        mode = "never" if given and plan.asr_mode == "never" else "missing"
        if mode != "never" and plan.recognizer is None:
            plan.recognizer = recognizer("aemt predict", plan)  # resolved once, on demand
        clip = clips[i]  # its status is still join_flags(flags[i]) (make_clips)
        try:
            records[i] = transcribe_clip(clip, mode, plan.asr_options.language, plan.recognizer)
        except MediaError as err:
            _fail(flags[i], clip, err)
            continue
        except UserError:
            raise  # configuration problems (the model) stop the run
        except Exception as err:  # noqa: BLE001 - one clip that fails recognition: no prediction
            _fail(flags[i], clip, err)
            continue
        clips[i] = dataclasses.replace(clips[i], text=records[i]["text"])
        flags[i] = (flags[i] - {"empty_text"}) | split_flags(records[i]["status"])
    return records


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
    from aemt.train.checkpoint import checkpoint_scale, finetuned_model
    from aemt.train.finetune import predict
    from aemt.train.runtime import setup_runtime
    from aemt.train.splits import Normaliser, SplitData, to_tensors

    if len(videos) != len(texts):
        raise ValueError("predict_videos: one transcript per video")
    ckpt = load_finetuned(checkpoint)
    plan = build_plan(checkpoint, ckpt, cfg)
    check_plan(checkpoint, ckpt, plan)  # before any extraction and before building the model
    scale = checkpoint_scale(ckpt)
    clips = make_clips(videos, texts)
    xs, masks, statuses = extract_aligned(plan, clips)
    ok = np.array([not is_excluded(s) for s in statuses], dtype=bool)  # [N]
    scores = np.full(len(clips), np.nan)  # [N]
    if ok.any():
        runtime = setup_runtime(cfg.threads, cfg.device)
        model = finetuned_model(ckpt, checkpoint, runtime.device)
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
