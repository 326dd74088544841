"""Tests for the alignment stage: mask-aware time binning, token padding, `align_split` outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aemt import constants as data
from aemt.align.bins import bin_frames, pad_tokens
from aemt.align.split import align_split
from aemt.cli import main
from aemt.errors import UserError

DIMS = {"text": 8, "audio": 3, "vision": 4}
RATES = {"audio": 100.0, "vision": 25.0}


def test_bin_frames_hand_computed() -> None:
    # duration 1 s, 4 bins of 0.25 s
    values = np.array([[1, 2], [3, 4], [5, 6], [100, 100], [7, 8], [9, 10]], dtype=np.float32)
    times = np.array([0.05, 0.10, 0.30, 0.80, 0.90, 1.00])  # 1.00 = duration -> last bin
    mask = np.array([1, 1, 0, 0, 1, 1])  # bin 1 holds only a masked frame; 0.80 must not count
    binned, bin_mask = bin_frames(values, times, mask, duration=1.0, length=4)
    assert binned.dtype == np.float32 and bin_mask.dtype == bool
    np.testing.assert_array_equal(binned, [[2, 3], [0, 0], [0, 0], [8, 9]])
    np.testing.assert_array_equal(bin_mask, [True, False, False, True])


def test_bin_frames_edges() -> None:
    # bin index = min(L-1, floor(t / duration * L)); a frame exactly on an edge goes right
    binned, bin_mask = bin_frames(np.eye(3), [0.0, 0.5, 0.99], [1, 1, 1], duration=1.0, length=2)
    np.testing.assert_array_equal(binned, [[1, 0, 0], [0, 0.5, 0.5]])
    assert bin_mask.all()
    empty, empty_mask = bin_frames(np.zeros((0, 5)), [], [], duration=0.0, length=3)
    assert empty.shape == (3, 5) and not empty_mask.any()
    nan = np.array([[np.nan], [2.0]])
    np.testing.assert_array_equal(bin_frames(nan, [0.1, 0.2], [1, 1], 1.0, 1)[0], [[2.0]])
    with pytest.raises(ValueError, match="must be"):
        bin_frames(np.zeros((3, 2)), [0.1, 0.2], [1, 1, 1], 1.0, 2)


def test_pad_tokens_pad_truncate_cls() -> None:
    tokens = np.arange(14, dtype=np.float32).reshape(7, 2)  # row 0 = [CLS]
    padded, mask = pad_tokens(tokens[:3], 5)
    np.testing.assert_array_equal(padded, [[0, 1], [2, 3], [4, 5], [0, 0], [0, 0]])
    np.testing.assert_array_equal(mask, [True, True, True, False, False])
    cut, cut_mask = pad_tokens(tokens, 4)
    np.testing.assert_array_equal(cut, tokens[:4])
    assert cut_mask.all()
    cls, cls_mask = pad_tokens(tokens, 1)
    np.testing.assert_array_equal(cls, [[0, 1]])
    assert cls_mask.tolist() == [True]
    masked, masked_mask = pad_tokens(tokens[:3], 4, mask=np.array([1, 0, 1]))
    np.testing.assert_array_equal(masked, [[0, 1], [0, 0], [4, 5], [0, 0]])
    assert masked_mask.tolist() == [True, False, True, False]


def write_features(
    features: Path, key: str, modality: str, values: np.ndarray, status: str = "ok", **extra
) -> None:
    """One clip's fixture features, extraction layout: <dir>/<video_id>/<clip_id>.npy + .json."""
    video_id, clip_id = key.split("/")
    base = features / data.FEATURE_DIR[modality] / video_id
    base.mkdir(parents=True, exist_ok=True)
    np.save(base / f"{clip_id}.npy", values.astype(np.float32))
    rate = RATES.get(modality)
    sidecar = {
        "key": key,
        "modality": data.FEATURE_DIR[modality],
        "status": status,
        "shape": list(values.shape),
        "dim": DIMS[modality],
        "timestamps": None if rate is None else ((np.arange(len(values)) + 0.5) / rate).tolist(),
        "frame_rate": rate,
        "mask": [0 if status in ("no_face", "no_audio") else 1] * len(values),
        "duration": 1.0,
        "model": f"{modality}-model",
        "model_hash": f"hash-{modality}",
        "config": {"feature_set": "eGeMAPSv02"} if modality == "audio" else {"features": ["bs"]},
        "config_hash": f"cfg-{modality}",
        **extra,
    }
    (base / f"{clip_id}.json").write_text(json.dumps(sidecar))


def clip_features(features: Path, key: str, n_tokens: int, visual_status: str = "ok") -> None:
    rng = np.random.default_rng(len(key) + n_tokens)
    write_features(features, key, "text", rng.normal(size=(n_tokens, DIMS["text"])))
    t = (np.arange(100) + 0.5) / 100  # 100 audio frames over 1 s; feature 0 = frame time
    write_features(features, key, "audio", np.stack([t, -t, np.ones(100)], axis=1))
    vis = np.zeros((25, 4)) if visual_status == "no_face" else rng.normal(size=(25, 4))
    write_features(features, key, "vision", vis, status=visual_status)


MANIFEST_ROWS = [
    # key, split, status, label, label_T, text
    ("007/0001", "train", "ok", 0.4, 0.2, "good"),
    ("007/0002", "train", "ok", -0.2, -0.2, "no face"),
    ("007/0003", "train", "missing_video", 0.6, 0.6, "gone"),
    ("008/0001", "train", "no_audio", 0.0, 0.0, "silent"),
    ("008/0002", "valid", "ok", 1.0, 1.0, "valid clip"),
    ("u01/01", "unlabeled", "ok", np.nan, np.nan, "chat"),
]


@pytest.fixture()
def fixture(tmp_path: Path) -> tuple[Path, Path]:
    rows = []
    for i, (key, split, status, label, label_t, text) in enumerate(MANIFEST_ROWS):
        video_id, clip_id = key.split("/")
        rows.append(
            (key, video_id, clip_id, split, i // 2, f"Raw/{key}.mp4", 1.0, text, label, label_t)
            + (label, label, "", status, "" if status == "ok" else "why")
        )
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame.from_records(rows, columns=list(data.MANIFEST_COLUMNS)).to_csv(
        manifest, index=False
    )
    manifest.with_suffix(".json").write_text(json.dumps({"scale": "sims"}))
    features = tmp_path / "features"
    clip_features(features, "007/0001", n_tokens=6)
    clip_features(features, "007/0002", n_tokens=60, visual_status="no_face")
    clip_features(features, "008/0001", n_tokens=3)
    write_features(features, "008/0001", "audio", np.zeros((0, 3)), status="no_audio")
    clip_features(features, "008/0002", n_tokens=4)
    clip_features(features, "u01/01", n_tokens=5)
    return manifest, features


def test_align_split_outputs(fixture: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, features = fixture
    out = tmp_path / "aligned" / "train"
    info = align_split(manifest, features, "train", 5, out)
    names = {"text", "audio", "vision"}
    expected = {f"{m}.npy" for m in names} | {f"{m}_mask.npy" for m in names}
    assert {p.name for p in out.iterdir()} == expected | {"meta.csv", "info.json"}
    arrays = {p.stem: np.load(p) for p in out.glob("*.npy")}
    assert arrays["text"].shape == (3, 5, 8) and arrays["audio"].shape == (3, 5, 3)
    assert arrays["vision"].shape == (3, 5, 4)
    for m in names:
        assert arrays[m].dtype == np.float32 and arrays[f"{m}_mask"].dtype == bool
        assert arrays[f"{m}_mask"].shape == (3, 5)
    # audio feature 0 is the frame time: bin k of 0.2 s averages to 0.2 k + 0.1
    np.testing.assert_allclose(arrays["audio"][0, :, 0], [0.1, 0.3, 0.5, 0.7, 0.9], atol=1e-6)
    np.testing.assert_allclose(arrays["audio"][0, :, 2], 1.0)
    tokens = np.load(features / "text" / "007" / "0001.npy")
    np.testing.assert_array_equal(arrays["text"][0, :5], tokens[:5])
    np.testing.assert_array_equal(arrays["text_mask"][0], [True] * 5)
    vis = np.load(features / "visual" / "007" / "0001.npy")
    np.testing.assert_allclose(arrays["vision"][0, 0], vis[:5].mean(axis=0), rtol=1e-5)
    assert arrays["vision_mask"][0].all() and not arrays["vision_mask"][1].any()
    assert not arrays["vision"][1].any()  # no_face: zeros with mask False
    assert not arrays["audio_mask"][2].any() and not arrays["audio"][2].any()  # no_audio
    np.testing.assert_array_equal(arrays["text_mask"][2], [True] * 3 + [False] * 2)
    meta = pd.read_csv(out / "meta.csv", dtype={"key": str})
    assert list(meta.columns) == ["key", "split", "label", "label_T", "label_A", "label_V"] + [
        "text",
        "status",
    ]
    assert meta["key"].tolist() == ["007/0001", "007/0002", "008/0001"]
    assert meta["status"].tolist() == ["ok", "no_face", "no_audio"]
    assert meta["label"].tolist() == [0.4, -0.2, 0.0] and meta["label_T"].tolist()[0] == 0.2
    on_disk = json.loads((out / "info.json").read_text())
    assert on_disk == json.loads(json.dumps(info))
    assert info["dims"] == DIMS and info["lengths"] == {"text": 5, "audio": 5, "vision": 5}
    assert info["n_clips"] == 3 and info["n_excluded"] == 1 and info["scale"] == "sims"
    assert info["status_counts"] == {"no_audio": 1, "no_face": 1, "ok": 1}
    assert info["text_model"] == "text-model" and info["text_model_hash"] == "hash-text"
    assert info["audio_feature_set"] == "eGeMAPSv02" and info["visual_features"] == ["bs"]
    assert info["align_length"] == 5 and info["text_pooling"] == "tokens"


def test_cls_pooling_unlabeled_and_empty_split(fixture: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, features = fixture
    out = tmp_path / "unl"
    args = ["align", "--manifest", str(manifest), "--features-dir", str(features), "--split"]
    assert (
        main([*args, "unlabeled", "--length", "4", "--text-pooling", "cls", "--out-dir", str(out)])
        == 0
    )
    text = np.load(out / "text.npy")
    assert text.shape == (1, 1, 8) and np.load(out / "text_mask.npy").tolist() == [[True]]
    np.testing.assert_array_equal(text[0, 0], np.load(features / "text" / "u01" / "01.npy")[0])
    assert np.load(out / "audio.npy").shape == (1, 4, 3)
    meta = pd.read_csv(out / "meta.csv", keep_default_na=False)
    assert meta["label"].tolist() == [""] and meta["split"].tolist() == ["unlabeled"]
    test_out = tmp_path / "test"
    info = align_split(manifest, features, "test", 5, test_out)
    assert info["n_clips"] == 0 and info["dims"] == DIMS
    assert np.load(test_out / "vision.npy").shape == (0, 5, 4)
    assert np.load(test_out / "text_mask.npy").shape == (0, 5)
    assert pd.read_csv(test_out / "meta.csv").empty


def test_missing_feature_file_names_clip_and_shard(
    fixture: tuple[Path, Path], tmp_path: Path
) -> None:
    manifest, features = fixture
    (features / "visual" / "008" / "0002.npy").unlink()
    with pytest.raises(UserError) as err:
        align_split(manifest, features, "valid", 5, tmp_path / "valid")
    message = str(err.value)
    assert "clip 008/0002: vision features missing" in message
    assert "Rerun visual shard 2: `aemt extract visual" in message
    assert "delete the sidecars left without features" in message  # else extraction skips it
    assert not (tmp_path / "valid" / "info.json").exists()


def test_extraction_status_and_dim_mismatch(fixture: tuple[Path, Path], tmp_path: Path) -> None:
    manifest, features = fixture
    # extraction found 008/0002 unreadable although the probe passed: left out, counted
    write_features(features, "008/0002", "vision", np.zeros((0, 4)), status="unreadable_video")
    info = align_split(manifest, features, "valid", 5, tmp_path / "valid")
    assert info["n_clips"] == 0 and info["n_excluded"] == 1
    write_features(features, "007/0002", "audio", np.zeros((100, 3)), config_hash="other")
    with pytest.raises(UserError, match=r"clip 007/0002: .*does not match the other audio"):
        align_split(manifest, features, "train", 5, tmp_path / "train")


def test_bin_frames_matches_per_frame_loop() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        frames, length, duration = int(rng.integers(0, 40)), int(rng.integers(1, 9)), 1.7
        values = rng.normal(size=(frames, 3))  # [T, 3]
        times = rng.uniform(0, duration * 1.1, size=frames)  # some past the end -> last bin
        mask = rng.random(frames) < 0.7
        sums, counts = np.zeros((length, 3)), np.zeros(length)
        for value, t, ok in zip(values, times, mask, strict=True):
            if ok:
                k = min(length - 1, int(np.floor(t / duration * length)))
                sums[k] += value
                counts[k] += 1
        expected = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], 0.0)
        binned, bin_mask = bin_frames(values, times, mask, duration, length)
        np.testing.assert_allclose(binned, expected, atol=1e-5)
        np.testing.assert_array_equal(bin_mask, counts > 0)
