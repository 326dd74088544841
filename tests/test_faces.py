"""Face search and speaker choice, piece by piece: tiles, borders, cuts, crop geometry, synchrony."""

from __future__ import annotations

import numpy as np
import pytest

from aemt.features.faces import (
    FIND,
    KEEP,
    PictureBox,
    iou,
    is_cut,
    nms,
    thumbnail,
    tile_plan,
)
from aemt.features.speaker import envelope, has_speech, select_speaker, viterbi
from aemt.features.tracking import frame_matrix, mouth_opening


def test_tiles_cover_every_face_size_between_min_face_and_the_picture():
    box = (100, 0, 1820, 1080)
    plan = tile_plan(box, 54)
    assert plan[0] == (100, 0, 1720)  # the whole picture first
    assert all(box[0] <= x and box[1] <= y for x, y, _ in plan)
    assert all(x + min(s, 1720) <= box[2] + 1 and y <= box[3] for x, y, s in plan)
    rng = np.random.default_rng(0)
    for _ in range(300):  # any face of 54 px or more lies whole in a tile where it is >= FIND
        size = rng.uniform(54, 700)
        fx, fy = rng.uniform(box[0], box[2] - size), rng.uniform(box[1], box[3] - size)
        ok = [
            (x <= fx and y <= fy and fx + size <= x + s and fy + size <= y + s)
            or (s == 1720 and size >= FIND * s)
            for x, y, s in plan
            if size >= FIND * s * 0.999
        ]
        assert any(ok), (size, fx, fy)
    assert len(plan) <= 30  # 1080p: about 25 detector calls per search
    assert tile_plan((0, 0, 480, 360), 18)[0] == (0, 0, 480)
    assert len(tile_plan((0, 0, 480, 360), 18)) <= 6  # never below MIN_FACE_PX = 40
    assert 0 < FIND < KEEP < 1


def test_iou_and_nms():
    a = np.array([[0, 0, 10, 10]])
    assert iou(a, np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])).tolist() == [
        [1.0, 1 / 3, 0.0]
    ]
    boxes = np.array([[0, 0, 10, 10, 0.6], [1, 1, 11, 11, 0.9], [50, 50, 60, 60, 0.7]])
    kept = nms(boxes)
    assert kept[:, 4].tolist() == [0.9, 0.7]


def test_picture_box_finds_letterbox_and_pillarbox_borders():
    frame = np.zeros((804, 1920, 3), np.uint8)
    rng = np.random.default_rng(0)
    frame[:, 640:1280] = rng.integers(30, 255, (804, 640, 3))  # pillarbox: the middle third
    picture = PictureBox()
    picture.update(frame)
    x0, y0, x1, y1 = picture.box()
    assert abs(x0 - 640) <= 8 and abs(x1 - 1280) <= 8 and (y0, y1) == (0, 804)
    letterbox = np.zeros((1080, 1920, 3), np.uint8)
    letterbox[140:940] = 120
    letterbox[980:1000, 800:1100] = 255  # a subtitle in the bottom bar: sparse, still border
    picture = PictureBox()
    picture.update(letterbox)
    x0, y0, x1, y1 = picture.box()
    assert (x0, x1) == (0, 1920) and abs(y0 - 140) <= 8 and abs(y1 - 940) <= 8
    dark = PictureBox()
    dark.update(np.zeros((100, 200, 3), np.uint8))  # a black frame is not a tiny picture
    assert dark.box() == (0, 0, 200, 100)
    dark.update(letterbox[::10, ::10])  # what a later frame shows is added
    assert dark.box()[1] > 0


def test_shot_cut_is_a_big_change_of_the_thumbnail():
    a = np.full((360, 640, 3), 60, np.uint8)
    b = a.copy()
    b[100:120, 200:260] = 200  # a small movement
    c = np.full((360, 640, 3), 180, np.uint8)
    assert thumbnail(a).shape == (18, 32)
    assert not is_cut(None, thumbnail(a)) and not is_cut(thumbnail(a), thumbnail(b))
    assert is_cut(thumbnail(a), thumbnail(c))
    left, right = a.copy(), a.copy()  # a big face moving fast over a plain background
    left[40:320, 20:300], right[40:320, 340:620] = 220, 220
    assert np.abs(thumbnail(left) - thumbnail(right)).mean() > 30
    assert not is_cut(thumbnail(left), thumbnail(right))  # same grey levels: the same shot


def test_frame_matrix_maps_a_crop_pose_to_the_frame_camera():
    pose = np.eye(4)
    pose[:3, 3] = [0.0, 0.0, -30.0]
    # A crop that is the whole frame height, centred: nothing changes.
    np.testing.assert_allclose(frame_matrix(pose, (320, 0, 480), (1120, 480)), pose, atol=1e-9)
    # A crop a third of the height: the face is three times as far away.
    out = frame_matrix(pose, (480, 160, 160), (1120, 480))
    np.testing.assert_allclose(out[:3, 3], [0, 0, -90], atol=1e-9)
    # A crop right of centre: the face lies on the ray through the crop centre, 90 away; the head's
    # rotation is kept (MediaPipe's whole-frame estimate does not turn it with the ray either).
    out = frame_matrix(pose, (900, 160, 160), (1120, 480))
    focal = 240 / np.tan(np.radians(31.5))
    assert np.linalg.norm(out[:3, 3]) == pytest.approx(90)
    assert out[0, 3] / -out[2, 3] == pytest.approx((980 - 560) / focal)
    np.testing.assert_allclose(out[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(out[:3, :3] @ out[:3, :3].T, np.eye(3), atol=1e-9)


def test_mouth_opening_is_lip_gap_over_eye_distance():
    points = np.zeros((478, 2))
    points[33], points[263] = (0, 0), (100, 0)
    points[13], points[14] = (50, 80), (50, 110)
    assert mouth_opening(points) == pytest.approx(0.3)


def test_viterbi_switches_only_when_it_pays():
    gain = np.zeros((2, 10))
    gain[0, :6], gain[1, 6:] = 0.1, 0.1  # track 1 better for the last 4 frames: 0.4 in all
    assert viterbi(gain, 0.3).tolist() == [0] * 6 + [1] * 4
    assert viterbi(gain, 0.5).tolist() == [0] * 10  # a change that gains less than it costs


def _scene(n: int = 100, seconds: float = 4.0):
    """Times, a speech envelope (as audio), and two mouths: one follows the speech."""
    rng = np.random.default_rng(1)
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    syllables = np.clip(np.sin(2 * np.pi * 3.7 * t + 2 * np.sin(2 * np.pi * 0.5 * t)), 0, None)
    audio = (
        syllables * np.sin(2 * np.pi * 180 * t) * 0.3 + 0.001 * rng.normal(size=t.size)
    ).astype(np.float32)
    times = (np.arange(n) + 0.5) * seconds / n
    speaking = np.interp(times, t, syllables) * 0.3
    other = np.clip(np.sin(2 * np.pi * 2.3 * times + 1.0), 0, None) * 0.3
    return times, audio, sr, speaking + 0.01 * rng.normal(size=n), other


def test_synchrony_picks_the_mouth_that_follows_the_speech_on_either_track():
    times, audio, sr, speaking, other = _scene()
    boxes = np.zeros((2, len(times), 4))
    boxes[0] = [0.1, 0.3, 0.2, 0.5]  # small, left
    boxes[1] = [0.5, 0.2, 0.8, 0.7]  # big, central
    present = np.ones((2, len(times)), bool)
    env_t, energy = envelope(audio, sr)
    assert has_speech(energy) and env_t[1] - env_t[0] == pytest.approx(0.01)
    for order in ([speaking, other], [other, speaking]):
        choice = select_speaker(times, present, np.array(order), boxes, (audio, sr))
        want = 0 if order[0] is speaking else 1
        assert choice.method == "sync" and set(choice.path.tolist()) == {want}
        assert choice.sync[want] > 0.8 and choice.sync[1 - want] < 0.5
        assert choice.confidence > 0.5
    largest = select_speaker(
        times, present, np.array([speaking, other]), boxes, (audio, sr), "largest"
    )
    assert largest.method == "largest" and set(largest.path.tolist()) == {1}
    silent = select_speaker(times, present, np.array([speaking, other]), boxes, (audio * 0, sr))
    assert (silent.method, silent.reason) == ("largest", "no_speech")
    none = select_speaker(times, present, np.array([speaking, other]), boxes, None)
    assert none.reason == "no_audio" and set(none.path.tolist()) == {1}


def test_the_followed_face_changes_with_the_speaker_and_absent_faces_stay_masked():
    times, audio, sr, speaking, other = _scene(n=200, seconds=8.0)
    half = times >= 4.0
    mouths = np.array([np.where(half, other, speaking), np.where(half, speaking, other)])
    present = np.ones((2, len(times)), bool)
    boxes = np.tile(np.array([0.3, 0.3, 0.5, 0.6]), (2, len(times), 1))
    choice = select_speaker(times, present, mouths, boxes, (audio, sr))
    assert (choice.path[times < 3.0] == 0).all() and (choice.path[times > 5.0] == 1).all()
    assert np.count_nonzero(np.diff(choice.path)) == 1
    present[0, (times > 1.0) & (times < 1.5)] = False  # the speaker leaves the picture briefly
    choice = select_speaker(times, present, mouths, boxes, (audio, sr))
    gone = (times > 1.0) & (times < 1.5)
    assert (choice.path[gone] == -1).all()  # masked, not the listener's face
    assert (choice.path[(times < 3.0) & ~gone] == 0).all()
