"""The three extractors on real research clips from ../shared/data (skipped when it is absent).

The clips are read in place and never copied; outputs go to tmp_path.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aemt.features.media import decode_audio, video_info
from aemt.features.runner import run_shard
from tests._media_helpers import write_manifest

pytestmark = pytest.mark.realdata

CLIPS = [  # (video_id, clip_id, path under shared data, transcript)
    ("mosi", "0h-zjBukYpk_1", "mosi/clips/0h-zjBukYpk_1.mp4",
     "NOW THE TITLE OF THE MOVIE BASICALLY SAYS IT ALL"),
    ("mosi", "0h-zjBukYpk_24", "mosi/clips/0h-zjBukYpk_24.mp4", "I MEAN THAT WAS IMPRESSIVE"),
    ("mosi", "Sqr0AcuoNnk_12", "mosi/clips/Sqr0AcuoNnk_12.mp4",
     "AND HE IS ONE OF MY FAVORITE ACTORS EVER"),
    ("sims", "video_0001_0008", "chsims/clips/video_0001_0008.mp4", ""),
    ("sims", "aqgy_00022", "chsims/clips/aqgy_00022_with_asd_boxes.mp4", ""),
]  # fmt: skip
FACE_EVERYWHERE = {"mosi/0h-zjBukYpk_1", "mosi/0h-zjBukYpk_24", "mosi/Sqr0AcuoNnk_12"}


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory):
    rows = []
    for video_id, clip_id, rel, text in CLIPS:
        path = shared_data / rel
        rows.append(
            {"video_id": video_id, "clip_id": clip_id, "video": path, "text": text,
             "duration": video_info(path).duration}
        )  # fmt: skip
    return write_manifest(tmp_path_factory.mktemp("real") / "manifest.csv", rows)


def sidecars(out) -> dict[str, dict]:
    return {f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in out.glob("*/*.json")}


def test_audio_on_real_clips(manifest, tmp_path, shared_data):
    table = run_shard("audio", manifest, 0, tmp_path, tmp_path / "shard_0.csv", {})
    assert set(table["status"]) == {"ok"}
    for key, sidecar in sidecars(tmp_path).items():
        features = np.load(tmp_path / f"{key}.npy")
        assert features.shape == (sidecar["shape"][0], 25)
        assert abs(features.shape[0] - 100 * sidecar["duration"]) < 10
        f0 = features[:, sidecar["feature_names"].index("F0semitoneFrom27.5Hz_sma3nz")]
        assert (f0 > 0).mean() > 0.1, key  # speech is partly voiced
    samples, sr = decode_audio(shared_data / "audio" / "arctic_a0007.wav")
    assert sr == 16000 and abs(samples.size / sr - 4.0) < 0.1  # a plain WAV decodes too


def test_visual_on_real_clips(manifest, tmp_path):
    table = run_shard("visual", manifest, 0, tmp_path, tmp_path / "shard_0.csv", {})
    assert set(table["status"]) <= {"ok", "no_face"}
    found = sidecars(tmp_path)
    assert set(found) == {f"{v}/{c}" for v, c, _, _ in CLIPS}
    for key, sidecar in found.items():
        features = np.load(tmp_path / f"{key}.npy")
        rows = min(50, round(25 * sidecar["duration"]))  # 1 frame per bin, at most 25 frames/s
        assert features.shape == (rows, 58) and len(sidecar["mask"]) == rows
        assert not features[np.array(sidecar["mask"]) == 0].any()
        assert max(sidecar["frame_size"]) <= 480
        if key in FACE_EVERYWHERE:
            assert sidecar["face_ratio"] >= 0.9, key


def test_text_on_real_transcripts(manifest, tmp_path):
    table = run_shard("text", manifest, 0, tmp_path, tmp_path / "shard_0.csv", {})
    statuses = dict(zip(table["key"], table["status"], strict=True))
    assert statuses["mosi/0h-zjBukYpk_24"] == "ok" and statuses["sims/aqgy_00022"] == "empty_text"
    sidecar = sidecars(tmp_path)["mosi/0h-zjBukYpk_24"]
    assert sidecar["tokens"] == ["[CLS]", "i", "mean", "that", "was", "impressive", "[SEP]"]
    assert np.load(tmp_path / "mosi" / "0h-zjBukYpk_24.npy").shape == (7, 384)
    assert pd.read_csv(tmp_path / "shard_0.csv").shape == (len(CLIPS), 3)


def test_asr_word_error_rate_on_mosi(shared_data, tmp_path):
    """The offline Whisper tiny.en against MOSI's reference transcripts: WER <= 0.2."""
    from aemt.asr.recognizer import AsrOptions
    from aemt.asr.runner import asr_shard
    from aemt.asr.words import word_errors

    table = pd.read_csv(shared_data / "mosi" / "mosi_segments.tsv", sep="\t", dtype=str)
    reference = dict(zip(table["segment_id"], table["transcript_upper"], strict=True))
    mosi = [(v, c, rel) for v, c, rel, _ in CLIPS if v == "mosi"]
    rows = [{"video_id": v, "clip_id": c, "video": shared_data / rel, "text": "",
             "duration": video_info(shared_data / rel).duration} for v, c, rel in mosi]  # fmt: skip
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    asr_shard(manifest, 0, tmp_path / "asr", tmp_path / "done.csv", "missing", AsrOptions())
    errors = words = 0
    for _, clip_id, _ in mosi:
        record = json.loads((tmp_path / "asr" / "mosi" / f"{clip_id}.json").read_text())
        assert record["source"] == "asr" and record["status"] == "ok"
        e, n = word_errors(reference[clip_id], record["text"])
        errors, words = errors + e, words + n
    assert words == 24 and errors / words <= 0.2, (errors, words)
