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
from tests._media_helpers import read_sidecars, write_manifest

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
VISUAL_ONLY = [  # clips only the visual test reads (film frames: borders, small faces, two people)
    ("sims", "video_0001_0001", "chsims/clips/video_0001_0001.mp4", ""),
    ("sims", "video_0001_0035", "chsims/clips/video_0001_0035.mp4", ""),
    ("sims", "hospital", "chsims/clips/zh_film_hospital_raw_video.mp4", ""),
    ("en", "openvna", "english_unlabelled/openvna_noise_api_test.mp4", ""),
]
# Share of analysed frames with the speaker's face, at least (measured: 0.94-1.0 on every clip).
FACE_RATE = {"sims/video_0001_0008": 0.9, "sims/aqgy_00022": 0.85}


def real_row(shared_data, video_id: str, clip_id: str, rel: str, text: str) -> dict:
    """A manifest row for the real clip `rel` (a path under the shared data), with its duration."""
    path = shared_data / rel
    return {"video_id": video_id, "clip_id": clip_id, "video": path, "text": text,
            "duration": video_info(path).duration}  # fmt: skip


@pytest.fixture(scope="module")
def manifest(shared_data, tmp_path_factory):
    rows = [real_row(shared_data, *clip) for clip in CLIPS]
    return write_manifest(tmp_path_factory.mktemp("real") / "manifest.csv", rows)


def test_audio_on_real_clips(manifest, tmp_path, shared_data):
    table = run_shard("audio", manifest, 0, tmp_path, tmp_path / "shard_0.csv", {})
    assert set(table["status"]) == {"ok"}
    for key, sidecar in read_sidecars(tmp_path).items():
        features = np.load(tmp_path / f"{key}.npy")
        assert features.shape == (sidecar["shape"][0], 25)
        assert abs(features.shape[0] - 100 * sidecar["duration"]) < 10
        f0 = features[:, sidecar["feature_names"].index("F0semitoneFrom27.5Hz_sma3nz")]
        assert (f0 > 0).mean() > 0.1, key  # speech is partly voiced
    samples, sr = decode_audio(shared_data / "audio" / "arctic_a0007.wav")
    assert sr == 16000 and abs(samples.size / sr - 4.0) < 0.1  # a plain WAV decodes too


@pytest.fixture(scope="module")
def visual(shared_data, tmp_path_factory):
    """Visual features of every real clip (one shard, default options): (folder, sidecars)."""
    rows = [real_row(shared_data, *clip) for clip in CLIPS + VISUAL_ONLY]
    out = tmp_path_factory.mktemp("real_visual")
    manifest = write_manifest(out / "manifest.csv", rows)
    table = run_shard("visual", manifest, 0, out / "features", out / "shard_0.csv", {})
    assert set(table["status"]) == {"ok"}
    return out / "features", read_sidecars(out / "features")


def test_visual_on_real_clips(visual):
    folder, found = visual
    assert set(found) == {f"{v}/{c}" for v, c, _, _ in CLIPS + VISUAL_ONLY}
    for key, sidecar in found.items():
        features = np.load(folder / f"{key}.npy")
        rows = min(50, round(25 * sidecar["duration"]))  # 1 frame per bin, at most 25 frames/s
        assert features.shape == (rows, 58) and len(sidecar["mask"]) == rows
        assert len(sidecar["face_box"]) == len(sidecar["n_faces"]) == rows
        assert not features[np.array(sidecar["mask"]) == 0].any()
        assert max(sidecar["frame_size"]) <= 1920
        assert sidecar["face_ratio"] >= FACE_RATE.get(key, 0.95), (key, sidecar["face_ratio"])


def test_pillarboxed_film_frame_is_cropped_to_its_picture(visual):
    _, found = visual
    for key in ("sims/video_0001_0001", "sims/video_0001_0008", "sims/video_0001_0035"):
        x0, y0, x1, y1 = found[key]["picture_box"]  # 1920 x 804 frames, picture in the middle
        assert (y0, y1) == (0.0, 1.0) and x1 - x0 < 0.6, (key, found[key]["picture_box"])
    assert found["mosi/0h-zjBukYpk_1"]["picture_box"] == [0.0, 0.0, 1.0, 1.0]


def test_speaker_is_the_face_in_the_burnt_in_green_box(visual, shared_data):
    """aqgy_00022 shows an active-speaker detector's boxes: green = speaking, red = not."""
    from aemt.features.media import sample_frames

    _, found = visual
    sidecar = found["sims/aqgy_00022"]
    path = shared_data / "chsims/clips/aqgy_00022_with_asd_boxes.mp4"
    checked = 0
    frames = sample_frames(path, sidecar["timestamps"], 0)
    for (_, rgb), box in zip(frames, sidecar["face_box"], strict=False):
        pixels = rgb.astype(int)
        green = (pixels[..., 1] > 200) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)
        if box is None or green.sum() < 500:
            continue  # no face followed, or no green box drawn on this frame
        ys, xs = np.nonzero(green)
        height, width = green.shape
        cx, cy = (box[0] + box[2]) / 2 * width, (box[1] + box[3]) / 2 * height
        assert xs.min() <= cx <= xs.max() and ys.min() <= cy <= ys.max()
        checked += 1
    assert checked >= 40
    # After the last shot cut (about 4.5 s) only the listener is in the picture: masked, not followed.
    late = [
        box for t, box in zip(sidecar["timestamps"], sidecar["face_box"], strict=True) if t > 4.6
    ]
    assert late and all(box is None for box in late)


def test_text_on_real_transcripts(manifest, tmp_path):
    table = run_shard("text", manifest, 0, tmp_path, tmp_path / "shard_0.csv", {})
    statuses = dict(zip(table["key"], table["status"], strict=True))
    assert statuses["mosi/0h-zjBukYpk_24"] == "ok" and statuses["sims/aqgy_00022"] == "empty_text"
    sidecar = read_sidecars(tmp_path)["mosi/0h-zjBukYpk_24"]
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
    rows = [real_row(shared_data, v, c, rel, "") for v, c, rel in mosi]
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    asr_shard(manifest, 0, tmp_path / "asr", tmp_path / "done.csv", "missing", AsrOptions())
    errors = words = 0
    for _, clip_id, _ in mosi:
        record = json.loads((tmp_path / "asr" / "mosi" / f"{clip_id}.json").read_text())
        assert record["source"] == "asr" and record["status"] == "ok"
        e, n = word_errors(reference[clip_id], record["text"])
        errors, words = errors + e, words + n
    assert words == 24 and errors / words <= 0.2, (errors, words)
