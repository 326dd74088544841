"""Frame sampling (PyAV) and the MediaPipe FaceLandmarker extractor on generated clips."""

from __future__ import annotations

import numpy as np
import pytest

from aemt.errors import UserError
from aemt.features.base import Clip, make_extractor
from aemt.features.media import DecodeReport, sample_frames, sample_times, video_info
from aemt.features.visual import BLENDSHAPES, head_pose, resolve_model_asset
from aemt.io import sha256_file
from tests._media_helpers import make_clip, make_counter_clip, truncate

FAST = {"align_length": 20}  # 2 s clips -> 20 frames (10 frames/s), keeps the tests quick


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("visual")
    face = make_clip(root / "face.mp4", duration=2.0)
    return {
        "face": face,
        "half": make_clip(root / "half.mp4", duration=2.0, blank_from=1.0, audio=False),
        "noface": make_clip(root / "noface.mp4", duration=1.2, face=False),
        "counter": make_counter_clip(root / "counter.mp4", n_frames=40, fps=25, step=6),
        "bframes": make_counter_clip(root / "bframes.mp4", n_frames=40, step=6, bframes=True),
        "truncated": truncate(face, root / "truncated.mp4", 0.5),
        "portrait": make_clip(root / "portrait.mp4", duration=1.0, size=(240, 320), rotation=-90),
        "portrait_upright": make_clip(root / "portrait_upright.mp4", duration=1.0, size=(240, 320)),
    }


def as_clip(path, key="v/c") -> Clip:
    return Clip(key, *key.split("/"), video=str(path), duration=video_info(path).duration)


def test_sample_frames_picks_the_frame_on_screen_and_downscales(clips):
    info = video_info(clips["counter"])
    assert (info.fps, info.width, info.height, info.n_frames) == (25.0, 64, 48, 40)
    assert info.duration == pytest.approx(1.6) and not info.has_audio
    times = [0.0, 0.039, 0.04, 0.5, 0.99, 1.599, 1.7]  # frame i is on screen over [i/25, (i+1)/25)
    report = DecodeReport()
    got = list(sample_frames(clips["counter"], times, max_side=32, report=report))
    assert [t for t, _ in got] == times[:-1]  # 1.7 s is past the end of the video
    assert [int(round(img.mean() / 6)) for _, img in got] == [0, 0, 1, 12, 24, 39]
    assert all(img.shape == (24, 32, 3) and img.dtype == np.uint8 for _, img in got)
    assert report.frames_decoded == 40 and report.truncated and report.error is None


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_frames_are_turned_upright_by_the_display_rotation(clips, tmp_path, rotation):
    """Phone clips are stored sideways with a display rotation; frames come out as a player shows them."""
    upright = make_clip(tmp_path / "upright.mp4", duration=0.4, size=(320, 200), audio=False)
    turned = make_clip(tmp_path / "turned.mp4", duration=0.4, size=(320, 200), audio=False,
                       rotation=rotation)  # fmt: skip
    times = [0.1, 0.3]
    for (_, a), (_, b) in zip(
        sample_frames(upright, times), sample_frames(turned, times), strict=True
    ):
        assert a.shape == b.shape == (200, 320, 3)
        assert np.abs(a.astype(int) - b).mean() < 6  # the same picture, up to coding noise


def test_face_is_found_in_a_phone_clip_stored_sideways(clips):
    extractor = make_extractor("visual", FAST)
    features, meta = extractor.extract(as_clip(clips["portrait"]))
    upright, _ = extractor.extract(as_clip(clips["portrait_upright"]))
    extractor.close()
    assert meta["status"] == "ok" and np.mean(meta["mask"]) >= 0.9
    assert features.shape == upright.shape == (20, 58)
    roll = len(BLENDSHAPES) + 2  # head roll, radians: a sideways frame would read about +-pi/2
    assert np.abs(features[:, roll] - upright[:, roll]).mean() < 0.1


def test_sparse_sampling_skips_unneeded_b_frames_without_changing_the_choice(clips):
    times = sample_times(1.6, 6.25)  # 10 samples, one every 4 frames
    report = DecodeReport()
    levels = [
        int(round(img.mean() / 6)) for _, img in sample_frames(clips["bframes"], times, 480, report)
    ]
    assert levels == [int(t * 25) for t in times]  # still the frame on screen at each time
    assert report.frames_decoded < 40  # non-reference frames nobody needs were not decoded
    dense = DecodeReport()
    list(sample_frames(clips["bframes"], sample_times(1.6, 25.0), 480, dense))
    assert dense.frames_decoded == 40


def test_repeated_frames_are_converted_and_analysed_once(clips):
    times = sample_times(1.6, 50.0)  # twice the video's 25 frames/s
    images = [img for _, img in sample_frames(clips["counter"], times, 480)]
    assert len(images) == 80 and len({id(img) for img in images}) == 40
    extractor = make_extractor("visual", {"fps": 50, "frames_per_bin": 0})
    features, sidecar = extractor.extract(as_clip(clips["counter"]))
    extractor.close()
    assert features.shape == (80, 58) and sidecar["status"] == "no_face"
    assert sidecar["decode"]["frames_analysed"] == 40 and sidecar["decode"]["frames_used"] == 80


def test_truncated_file_stops_cleanly(clips):
    report = DecodeReport()
    times = sample_times(2.0, 25.0)
    got = list(sample_frames(clips["truncated"], times, 480, report))
    assert 0 < len(got) < len(times) and report.truncated
    assert report.last_frame_time < 1.5 and len(got) == report.frames_yielded


def test_blendshapes_pose_shape_mask_and_sidecar(clips):
    extractor = make_extractor("visual", {})
    features, sidecar = extractor.extract(as_clip(clips["face"]))
    assert features.shape == (50, 58) and features.dtype == np.float32  # 25 fps cap over 2 s
    assert sidecar["mask"] == [1] * 50 and sidecar["status"] == "ok"
    np.testing.assert_allclose(sidecar["timestamps"], (np.arange(50) + 0.5) * 0.04, atol=1e-6)
    assert sidecar["frame_rate"] == pytest.approx(25.0)
    assert sidecar["feature_names"][:52] == BLENDSHAPES and sidecar["feature_names"][52:] == [
        "pitch", "yaw", "roll", "tx", "ty", "tz",
    ]  # fmt: skip
    scores = features[:, :52]
    assert scores.min() >= 0 and scores.max() <= 1 and scores.max() > 0.05
    pitch_yaw_roll, translation = features[:, 52:55], features[:, 55:58]
    assert np.abs(pitch_yaw_roll).max() < 0.8  # a near-frontal portrait
    assert (translation[:, 2] < 0).all()  # the face is in front of the camera (-z)
    # The face slides left to right across the frame: x translation grows.
    assert translation[-1, 0] - translation[0, 0] > 3
    assert sidecar["tool"] == "mediapipe" and sidecar["model"] == "face_landmarker.task"
    assert sidecar["model_hash"] == sha256_file(resolve_model_asset("auto"))
    assert sidecar["face_ratio"] == 1.0 and sidecar["decode"]["truncated"] is False
    blank = np.zeros((240, 320, 3), np.uint8)
    assert extractor.tracker.detector.detect(blank, (0, 0, 320, 240), 40).shape == (0, 5)
    extractor.close()


def test_fast_c_path_matches_mediapipe_result_objects(clips):
    """The ctypes fast path reads exactly the numbers of MediaPipe's public result objects."""
    groups = {"features": ["blendshapes", "pose", "landmarks"]}
    fast, portable = make_extractor("visual", groups), make_extractor("visual", groups)
    fast.load()
    portable.load()
    try:
        if fast.tracker.slots[0]._c is None:
            pytest.skip("this MediaPipe has no ctypes C API (the portable path is the only one)")
        portable.tracker.slots[0]._c = None  # force the public API + object conversion
        a, _ = fast.extract(as_clip(clips["half"]))
        b, _ = portable.extract(as_clip(clips["half"]))
        np.testing.assert_array_equal(a, b)
        assert a.any()
        # Category order of MediaPipe's output matches the names we write.
        import mediapipe as mp

        rgb = next(img for _, img in sample_frames(clips["face"], [0.5], 480))
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        result = portable.tracker.slots[0]._task.detect_for_video(image, 10**9)
        assert [c.category_name for c in result.face_blendshapes[0]] == BLENDSHAPES
        assert [c.index for c in result.face_blendshapes[0]] == list(range(52))
    finally:
        fast.close()
        portable.close()


def test_head_pose_matches_scipy_euler_angles():
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(0)
    for rot in Rotation.random(50, random_state=1):
        matrix = np.eye(4)
        matrix[:3, :3] = rot.as_matrix() * rng.uniform(0.5, 2.0)  # scaled, as a pose fit may be
        matrix[:3, :3] += rng.normal(0, 1e-3, (3, 3))  # and not exactly orthogonal
        matrix[:3, 3] = rng.normal(0, 10, 3)
        got = head_pose(matrix)
        want = Rotation.from_matrix(matrix[:3, :3]).as_euler("xyz")
        np.testing.assert_allclose(got[:3], want, atol=1e-5)
        np.testing.assert_allclose(got[3:], matrix[:3, 3], rtol=1e-6)


def test_frames_without_face_are_kept_as_masked_zeros(clips):
    extractor = make_extractor("visual", FAST)
    features, sidecar = extractor.extract(as_clip(clips["half"], "v/half"))
    mask = np.array(sidecar["mask"])
    times = np.array(sidecar["timestamps"])
    assert features.shape == (20, 58)  # never dropped
    assert mask[times < 0.9].all() and not mask[times > 1.1].any()
    assert not features[mask == 0].any() and features[mask == 1].any(axis=1).all()
    features, sidecar = extractor.extract(as_clip(clips["noface"], "v/none"))
    assert features.shape == (20, 58) and not features.any()
    assert sidecar["status"] == "no_face" and sidecar["mask"] == [0] * 20
    extractor.close()


def test_shared_landmarker_matches_a_fresh_one_per_clip(clips):
    """Tracking state must not leak from one clip into the next."""
    shared = make_extractor("visual", FAST)
    shared.extract(as_clip(clips["face"], "v/a"))
    after_other, _ = shared.extract(as_clip(clips["half"], "v/b"))
    shared.close()
    fresh = make_extractor("visual", {**FAST, "landmarker_per_clip": True})
    alone, _ = fresh.extract(as_clip(clips["half"], "v/b"))
    fresh.close()
    np.testing.assert_allclose(after_other, alone, atol=1e-5)


def test_landmarks_are_centred_and_scaled(clips):
    extractor = make_extractor("visual", {**FAST, "features": ["landmarks", "blendshapes", "pose"]})
    features, sidecar = extractor.extract(as_clip(clips["face"]))
    extractor.close()
    assert features.shape == (20, 58 + 1434) and sidecar["dim"] == 1492
    assert sidecar["config"]["features"] == ["blendshapes", "pose", "landmarks"]
    points = features[:, 58:].reshape(20, 478, 3)
    np.testing.assert_allclose(points.mean(axis=1), 0, atol=1e-4)
    radius = np.sqrt((points[:, :, :2] ** 2).sum(axis=2).mean(axis=1))
    np.testing.assert_allclose(radius, 1.0, atol=1e-4)
    assert sidecar["feature_names"][58:61] == ["lm0_x", "lm0_y", "lm0_z"]


def test_sampling_rate_follows_frames_per_bin():
    extractor = make_extractor("visual", {"frames_per_bin": 1, "align_length": 50})
    assert extractor.sample_rate(4.0) == pytest.approx(12.5)  # 50 bins over 4 s
    assert extractor.sample_rate(1.0) == 25.0  # capped by fps
    assert make_extractor("visual", {"frames_per_bin": 0}).sample_rate(4.0) == 25.0
    assert make_extractor("visual", {"frames_per_bin": 2}).sample_rate(8.0) == pytest.approx(12.5)
    times = sample_times(4.0, 12.5)
    assert len(times) == 50 and times[0] == pytest.approx(0.04) and times[-1] == pytest.approx(3.96)
    # 1 frame per bin: bin k = floor(t / duration * L) holds exactly one sample.
    assert sorted(np.floor(times / 4.0 * 50).astype(int)) == list(range(50))
    assert extractor.config_hash != make_extractor("visual", {"max_side": 320}).config_hash
    assert extractor.config_hash == make_extractor("visual", {"threads": 4}).config_hash


def test_model_asset_and_feature_errors(tmp_path):
    assert resolve_model_asset("auto").name == "face_landmarker.task"
    with pytest.raises(UserError, match="storage.googleapis.com"):
        make_extractor("visual", {"model_asset": str(tmp_path / "missing.task")})
    with pytest.raises(UserError, match="visual.features"):
        make_extractor("visual", {"features": ["blendshapes", "gaze"]})


def test_mediapipe_loads_without_pyplot_and_its_drawing_helpers_still_work():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from aemt.features.base import make_extractor\n"
        "make_extractor('visual', {}).load()\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
        "from mediapipe.tasks.python.vision import drawing_utils\n"
        "assert callable(drawing_utils.plt.figure)\n"
        "import matplotlib.pyplot\n"
        "assert type(sys.modules['matplotlib.pyplot']).__name__ == 'module'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
