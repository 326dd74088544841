"""`align.mode: words`: per-token pooling over word spans (frames with known times), and the whole
feature half in words mode on generated clips (generated audio, no real speech: `asr: never` spreads the
label's words over each clip, so every word's span is known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aemt.align.split import align_split
from aemt.align.words import align_clip_words, clip_token_spans, pool_spans, token_spans
from aemt.asr.recognizer import AsrOptions
from aemt.asr.runner import asr_shard
from aemt.errors import UserError
from aemt.features.runner import run_shard
from tests._media_helpers import make_clip, write_manifest

RATE = 100.0  # frames per second of the synthetic frames below


def frames(duration: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """values [F, 2] = (time, 1) at frame centres, times [F]."""
    times = (np.arange(int(duration * RATE)) + 0.5) / RATE
    return np.stack([times, np.ones_like(times)], axis=1), times


def test_pool_spans_means_the_frames_inside_each_span():
    values, times = frames()
    mask = np.ones(len(times), bool)
    mask[100:110] = False  # 1.00-1.10 s invalid (e.g. no face)
    values[120, 0] = np.nan  # a broken frame counts as invalid
    spans = np.array(
        [[0.0, 0.5], [1.0, 1.1], [1.1, 1.3], [0.7, 0.7], [np.nan, np.nan], [0.3, 0.302]]
    )
    pooled, ok = pool_spans(values, times, mask, spans, half=0.5 / RATE)
    assert ok.tolist() == [True, False, True, False, False, True]
    assert pooled[0, 0] == pytest.approx(np.mean(times[:50]))
    inside = [i for i in range(110, 130) if i != 120]
    assert pooled[2, 0] == pytest.approx(np.mean(times[inside]))
    assert not pooled[[1, 3, 4]].any()  # masked rows are zero, never NaN
    assert pooled[5, 0] == pytest.approx(0.305)  # too short for a centre: the overlapping frame
    assert np.isfinite(pooled).all()


def test_special_tokens_truncation_and_absent_modality():
    values, times = frames(1.0)
    sidecar = {"key": "v/c", "mask": [1] * len(times), "frame_rate": RATE, "timestamps": None}
    spans = token_spans([None, 0, 0, 1, None], [(0.0, 0.4), (0.4, 1.0)])
    assert np.isnan(spans[4]).all() and spans[0].tolist() == [-np.inf, np.inf]  # [CLS]: every frame
    out, ok = align_clip_words("audio", values, sidecar, False, 1.0, spans, length=7)
    assert out.shape == (7, 2) and ok.tolist() == [True, True, True, True, False, False, False]
    assert out[0, 0] == pytest.approx(0.5) and out[1, 0] == out[2, 0] == pytest.approx(0.2)
    short, ok = align_clip_words("audio", values, sidecar, False, 1.0, spans, length=2)
    assert short.shape == (2, 2) and ok.all()
    _, ok = align_clip_words("audio", values, sidecar, True, 1.0, spans, length=7)
    assert not ok.any()  # no_audio: zeros with mask False


def test_token_spans_refuse_another_transcript():
    record = {
        "key": "v/c",
        "text": "a b",
        "words": [{"start": 0, "end": 1}, {"start": 1, "end": 2}],
    }
    sidecar = {"key": "v/c", "text": "a b", "n_words": 2, "word_ids": [None, 0, 1, None]}
    sidecar["shape"] = [4, 8]
    assert clip_token_spans(sidecar, record, "rec.json")[2].tolist() == [1.0, 2.0]
    with pytest.raises(UserError, match="another transcript than rec.json"):
        clip_token_spans({**sidecar, "text": "a c"}, record, "rec.json")
    with pytest.raises(UserError, match="no `word_ids`"):
        clip_token_spans({**sidecar, "word_ids": None}, record, "rec.json")


@pytest.fixture(scope="module")
def features(tmp_path_factory) -> Path:
    """Three generated clips (one without audio), asr `never`, the three extractors."""
    root = tmp_path_factory.mktemp("words")
    texts = ["the movie was good", "i really liked it , the acting was great !", "bad"]
    rows = []
    for i, text in enumerate(texts):
        video = make_clip(root / "Raw" / "v" / f"{i}.mp4", duration=2.0, audio=i != 2)
        status = "no_audio" if i == 2 else "ok"
        rows.append({"video_id": "v", "clip_id": str(i), "video": video, "duration": 2.0,
                     "text": text, "status": status})  # fmt: skip
    manifest = write_manifest(root / "manifest.csv", rows)
    asr_shard(manifest, 0, root / "asr", root / "asr" / "shard_0000.csv", "never", AsrOptions())
    for modality in ("text", "audio", "visual"):
        out = root / "features" / modality
        extra = {"transcripts": root / "asr" / "shard_0000.csv"} if modality == "text" else {}
        run_shard(modality, manifest, 0, out, out / "shard_0000.csv", {}, **extra)
    return root


def test_words_mode_pools_audio_over_each_word(features):
    root = features
    info = align_split(root / "manifest.csv", root / "features", "train", 16, root / "w", mode="words",
                       asr_dir=root / "asr")  # fmt: skip
    assert info["align_mode"] == "words" and info["asr"]["mode"] == "never"
    assert info["asr"]["model"] is None and info["asr"]["sources"] == {"label": 3}
    arrays = {m: np.load(root / "w" / f"{m}.npy") for m in ("text", "audio", "vision")}
    masks = {m: np.load(root / "w" / f"{m}_mask.npy") for m in ("text", "audio", "vision")}
    assert {a.shape[:2] for a in arrays.values()} == {(3, 16)}
    assert all(np.isfinite(a).all() for a in arrays.values())
    record = json.loads((root / "asr" / "v" / "0.json").read_text())
    assert [w["timing"] for w in record["words"]] == ["even"] * 4 and record["match_rate"] == 0.0
    side = json.loads((root / "features" / "text" / "v" / "0.json").read_text())
    assert side["word_ids"] == [None, 0, 1, 2, 3, None] and side["text"] == "the movie was good"
    audio = np.load(root / "features" / "audio" / "v" / "0.npy")  # [F, 25]
    times = np.asarray(json.loads((root / "features" / "audio" / "v" / "0.json").read_text())[
        "timestamps"])  # fmt: skip
    for token, word in ((1, 0), (2, 1), (4, 3)):  # "the", "movie", "good": known spans
        start, end = record["words"][word]["start"], record["words"][word]["end"]
        inside = (times >= start) & (times < end)
        np.testing.assert_allclose(arrays["audio"][0, token], audio[inside].mean(0), rtol=1e-5)
    valid = np.asarray(json.loads((root / "features" / "audio" / "v" / "0.json").read_text())[
        "mask"], bool)  # fmt: skip
    np.testing.assert_allclose(arrays["audio"][0, 0], audio[valid].mean(0), rtol=1e-5)  # [CLS]
    assert masks["audio"][0].tolist() == [True] * 5 + [False] * 11  # [SEP] and padding masked
    assert masks["text"][0, :6].all() and not masks["text"][0, 6:].any()
    assert not masks["audio"][2].any() and masks["vision"][2, 0]  # no_audio clip: audio absent
    assert masks["vision"][1].sum() == masks["text"][1].sum() - 1  # every word has a frame
    meta = pd.read_csv(root / "w" / "meta.csv")
    assert meta["text"].tolist()[0] == "the movie was good"
    assert meta["status"].tolist() == ["ok", "ok", "no_audio"]


def test_bins_mode_is_unchanged_by_the_asr_stage(features):
    root = features
    info = align_split(root / "manifest.csv", root / "features", "train", 16, root / "b",
                       asr_dir=root / "asr")  # fmt: skip
    plain = align_split(root / "manifest.csv", root / "features", "train", 16, root / "p")
    assert info["align_mode"] == plain["align_mode"] == "bins" and plain["asr"] is None
    for name in ("text", "audio", "vision", "text_mask", "audio_mask", "vision_mask"):
        np.testing.assert_array_equal(np.load(root / "b" / f"{name}.npy"),
                                      np.load(root / "p" / f"{name}.npy"))  # fmt: skip
    with pytest.raises(UserError, match="needs the asr records"):
        align_split(root / "manifest.csv", root / "features", "train", 16, root / "x", mode="words")
