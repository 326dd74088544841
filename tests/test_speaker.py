"""The right face in generated film-like scenes: two people with one voice, a small face in a 1080p
frame, black borders, a speaker who changes halfway (real MediaPipe models, clips made in tmp dirs)."""

from __future__ import annotations

import numpy as np
import pytest

from aemt.features.base import Clip, make_extractor
from aemt.features.media import video_info
from tests._scene_helpers import Actor, make_scene, speech

BIG, SMALL = 130, 70  # face widths (pixels) in a 960 x 540 frame
LEFT, RIGHT = (260, 270), (700, 270)


@pytest.fixture(scope="module")
def extractor():
    visual = make_extractor("visual", {})
    yield visual
    visual.close()


@pytest.fixture(scope="module")
def voices():
    return speech(3.0, seed=1), speech(3.0, seed=2)


def run(extractor, path) -> tuple[np.ndarray, dict]:
    clip = Clip("v/c", "v", "c", video=str(path), duration=video_info(path).duration)
    return extractor.extract(clip)


def centres_x(sidecar: dict) -> np.ndarray:
    """[n] x centre (0-1) of the followed face per row, NaN where none."""
    boxes = sidecar["face_box"]
    return np.array([np.nan if b is None else (b[0] + b[2]) / 2 for b in boxes])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("size", ["big", "small"])
def test_the_face_whose_mouth_follows_the_voice_is_chosen(extractor, voices, tmp_path, side, size):
    (voice, talking), (_, other) = voices  # the other mouth moves too, to another voice
    here, there = (LEFT, RIGHT) if side == "left" else (RIGHT, LEFT)
    width, rival = (BIG, SMALL) if size == "big" else (SMALL, BIG)
    actors = [Actor(0, here, width, talking), Actor(1, there, rival, other)]
    features, sidecar = run(extractor, make_scene(tmp_path / "two.mp4", actors, voice))
    speaker = sidecar["speaker"]
    assert speaker["method"] == "sync" and speaker["confidence"] > 0.5
    assert len(speaker["tracks"]) == 2 and np.mean(np.array(sidecar["n_faces"]) == 2) > 0.9
    assert sidecar["face_ratio"] >= 0.9
    x = centres_x(sidecar)
    mask = np.array(sidecar["mask"], bool)
    assert np.isnan(x[~mask]).all() and not np.isnan(x[mask]).any()
    assert np.all(np.abs(x[mask] - here[0] / 960) < 0.05), "another person's face was followed"
    chosen = [
        t for t in speaker["tracks"] if abs((t["box"][0] + t["box"][2]) / 2 - x[mask][0]) < 0.05
    ]
    others = [t for t in speaker["tracks"] if t is not chosen[0]]
    assert chosen[0]["sync"] > 0.5 > others[0]["sync"]
    assert not features[~mask].any()


def test_largest_mode_and_clips_without_audio_take_the_prominent_face(extractor, voices, tmp_path):
    (voice, talking), (_, other) = voices
    actors = [Actor(0, LEFT, SMALL, talking), Actor(1, RIGHT, BIG, other)]
    largest = make_extractor("visual", {"speaker": "largest"})
    try:
        _, sidecar = run(largest, make_scene(tmp_path / "a.mp4", actors, voice))
    finally:
        largest.close()
    assert sidecar["speaker"]["method"] == "largest" and sidecar["config"]["speaker"] == "largest"
    assert np.nanmean(centres_x(sidecar)) > 0.6  # the big face on the right, not the speaker
    _, silent = run(extractor, make_scene(tmp_path / "b.mp4", actors, None))
    assert (silent["speaker"]["method"], silent["speaker"]["reason"]) == ("largest", "no_audio")
    assert np.nanmean(centres_x(silent)) > 0.6


def test_the_followed_face_changes_when_the_speaker_does(extractor, tmp_path):
    first, first_mouth = speech(4.0, seed=3)
    second, second_mouth = speech(4.0, seed=4)
    half = len(first) // 2
    track = np.concatenate([first[:half], second[half:]])  # A speaks, then B
    actors = [Actor(0, LEFT, 110, first_mouth), Actor(1, RIGHT, 110, second_mouth)]
    _, sidecar = run(extractor, make_scene(tmp_path / "change.mp4", actors, track, seconds=4.0))
    times, x = np.array(sidecar["timestamps"]), centres_x(sidecar)
    assert sidecar["speaker"]["method"] == "sync"
    assert (x[times < 1.2] < 0.5).all() and (x[times > 2.8] > 0.5).all()
    segments = sidecar["speaker"]["segments"]
    assert len(segments) == 2 and 1.2 < segments[1]["start"] < 2.8


def test_a_small_face_in_a_1080p_frame_is_found(extractor, voices, tmp_path):
    (voice, talking), _ = voices
    actors = [Actor(1, (1400, 300), 64, talking)]  # a 64 px face: 3% of the frame width
    path = make_scene(tmp_path / "small.mp4", actors, voice, size=(1920, 1080))
    features, sidecar = run(extractor, path)
    assert sidecar["face_ratio"] >= 0.9 and sidecar["frame_size"] == [1920, 1080]
    box = np.nanmean(np.array([b for b in sidecar["face_box"] if b is not None]), axis=0)
    assert (
        abs((box[0] + box[2]) / 2 - 1400 / 1920) < 0.02
        and abs((box[1] + box[3]) / 2 - 300 / 1080) < 0.03
    )
    assert 0.02 < box[2] - box[0] < 0.05  # about 64 px of 1920
    assert sidecar["speaker"]["method"] == "single" and sidecar["faces"]["searches"] >= 1
    assert features[np.array(sidecar["mask"], bool), :52].max() > 0.05  # real blendshapes


@pytest.mark.parametrize(
    "picture", [(0, 140, 1920, 940), (640, 0, 1280, 804)], ids=["letterbox", "pillarbox"]
)
def test_black_borders_are_cropped_before_the_search(extractor, voices, tmp_path, picture):
    (voice, talking), _ = voices
    x0, y0, x1, y1 = picture
    height = 1080 if y1 == 940 else 804
    centre = ((x0 + x1) // 2 + 60, (y0 + y1) // 2 - 80)
    actors = [Actor(0, centre, 100, talking)]
    path = make_scene(tmp_path / "bars.mp4", actors, voice, size=(1920, height), picture=picture)
    _, sidecar = run(extractor, path)
    want = [x0 / 1920, y0 / height, x1 / 1920, y1 / height]
    np.testing.assert_allclose(sidecar["picture_box"], want, atol=0.02)
    assert sidecar["face_ratio"] >= 0.9
