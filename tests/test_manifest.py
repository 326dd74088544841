"""Tests for the manifest stage: label-file errors, video probe statuses, shards, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml

from aemt import constants
from aemt.cli import main
from aemt.dataset import labels
from aemt.dataset.clips import count_shards, read_manifest
from aemt.dataset.manifest import build_manifest, probe_video
from aemt.errors import UserError
from tests._media_helpers import mux_audio

HEADER = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode\n"
SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "labels.schema.yaml"


def make_mp4(
    path: Path, frames: int = 12, audio: bool = True, faststart: bool = False, fps: int = 25
) -> Path:
    """A tiny real mp4: `frames` frames of noise (mpeg4, 64x48) + a 220 Hz sine (AAC, 16 kHz)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        sound = out.add_stream("aac", rate=16000) if audio else None
        if sound is not None:
            sound.layout = "mono"
        for _ in range(frames):
            img = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)  # [H, W, 3]
            out.mux(video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(video.encode())
        if sound is not None:
            n = 16000 * frames // fps
            wave = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
            mux_audio(out, sound, wave[None], 16000, "mono")  # [1, n]
    return path


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def labels_error(tmp_path: Path, body: str, scale: str = "sims") -> str:
    path = write(tmp_path / "label.csv", body)
    with pytest.raises(UserError) as err:
        labels.read_labels(path, scale)
    assert str(path) in str(err.value)
    return str(err.value)


GOOD_ROW = "v1,001,hello there,0.4,0.2,,,Positive,train\n"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "video_id,clip_id,text,label,label_T\nv1,001,hi,0.2,0.2\n",
            ["missing column 'mode'", "line 1", "Required columns"],
        ),
        (
            "video_id;clip_id;text;label;mode\nv1;001;hi;0.2;train\n",
            ["missing column 'video_id'", "';' as separator"],
        ),
        (
            "Video_id,clip_id,text,label,mode\nv1,001,hi,0.2,train\n",
            ["missing column 'video_id'", "Rename 'Video_id'"],
        ),
        (
            HEADER + GOOD_ROW + "v2,002,a,0.2,,,,,train\nv1,001,again,0.0,,,,,valid\n",
            ["duplicate clip key 'v1/001'", "line 2 and line 4", "'video_id', 'clip_id'"],
        ),
        (
            HEADER + GOOD_ROW + "v2,002,a,0.2,,,,,training\n",
            ["line 3, column 'mode'", "'training'"],
        ),
        (HEADER + GOOD_ROW + "v2,002,a,,,,,,Test\n", ["line 3, column 'mode'", "'Test'"]),
        (HEADER + GOOD_ROW + "v2,002,a,1.2,,,,,test\n", ["line 3, column 'label'", "[-1, 1]"]),
        (HEADER + GOOD_ROW + "v2,002,a,0.2,,-1.4,,,test\n", ["line 3, column 'label_A'", "1.4"]),
        (HEADER + GOOD_ROW + "v2,002,a,abc,,,,,test\n", ["line 3, column 'label'", "not a number"]),
        (HEADER + GOOD_ROW + "v2,002,a,0.2,nan,,,,test\n", ["line 3, column 'label_T'", "nan"]),
        (HEADER + GOOD_ROW + "v2,002,a,,,,,,test\n", ["line 3, column 'label'", "empty"]),
        (HEADER + GOOD_ROW + " ,002,a,0.2,,,,,test\n", ["line 3, column 'video_id'", "empty"]),
        (HEADER + GOOD_ROW + "v2,,a,0.2,,,,,test\n", ["line 3, column 'clip_id'", "empty"]),
        (HEADER + GOOD_ROW + "v2,a/b,a,0.2,,,,,test\n", ["line 3, column 'clip_id'", "'/'"]),
        (
            HEADER + GOOD_ROW + "v2,002,hi, there,0.2,,,,,test\n",
            ["line 3: malformed CSV", "expected 9 fields", "found 10"],
        ),
        (HEADER + GOOD_ROW + "v2,002,a,0.2,test\n", ["line 3: malformed CSV", "found 5"]),
        (
            HEADER + GOOD_ROW + 'v2,002,"unclosed,0.2,,,,,test\nv3,003,a,0.2,,,,,test\n',
            ["line 3: malformed CSV", "spans lines 3-4", "unclosed quote"],
        ),
        ("", ["the file is empty"]),
        (HEADER, ["no data rows"]),
    ],
)
def test_bad_label_file_names_file_line_and_column(
    tmp_path: Path, body: str, expected: list[str]
) -> None:
    message = labels_error(tmp_path, body)
    for part in expected:
        assert part in message, (part, message)


def test_non_utf8_names_byte_offset_and_line(tmp_path: Path) -> None:
    body = (HEADER + GOOD_ROW).encode() + "v2,002,café,0.2,,,,,test\n".encode("latin-1")
    message = labels_error(tmp_path, body)
    offset = body.index(b"\xe9")
    assert f"byte 0xe9 at byte offset {offset} (line 3" in message
    assert "UTF-8" in message and "iconv" in message


def test_mosei_scale_accepts_wider_range(tmp_path: Path) -> None:
    path = write(tmp_path / "label.csv", HEADER + "v1,1,hi,2.6,,,,,train\n")
    assert labels.read_labels(path, "mosei")["label"].tolist() == [2.6]
    with pytest.raises(UserError, match=r"outside \[-1, 1\] for scale 'sims'.*'mosei'"):
        labels.read_labels(path, "sims")


def test_good_labels_keep_strings_fall_back_and_count_lines(tmp_path: Path) -> None:
    body = (
        "\ufeff"  # BOM as written by Excel
        "video_id,clip_id,text,label,label_T,mode,extra\n"
        '007,0001,"multi-line\ntranscript, with comma",-0.4,0.6,train,x\n'
        "\n"
        "007,0002,,0.0,,valid,y\n"
        "08,00010,NA,1,-1,test,z\n"
    )
    table = labels.read_labels(write(tmp_path / "label.csv", body), "sims")
    assert table["key"].tolist() == ["007/0001", "007/0002", "08/00010"]
    assert table["line"].tolist() == [2, 5, 6]
    assert table["text"].tolist() == ["multi-line\ntranscript, with comma", "", "NA"]
    assert table["label_T"].tolist() == [0.6, 0.0, -1.0]
    assert table["label_A"].tolist() == [-0.4, 0.0, 1.0]  # absent column -> label
    assert table["mode"].tolist() == ["train", "valid", "test"]


def test_unlabeled_file_rules(tmp_path: Path) -> None:
    ok = write(
        tmp_path / "u.csv", "video_id,clip_id,text,label,mode\nu1,01,hi,,\nu1,02,yo,,train\n"
    )
    table = labels.read_unlabeled(ok)
    assert table["mode"].tolist() == ["unlabeled", "unlabeled"]
    assert table["label"].isna().all() and table["key"].tolist() == ["u1/01", "u1/02"]
    bad = write(tmp_path / "b.csv", "video_id,clip_id,text,label\nu1,01,hi,\nu1,02,yo,0.2\n")
    with pytest.raises(
        UserError, match=r"b\.csv: line 3, column 'label': unlabeled clips carry no"
    ):
        labels.read_unlabeled(bad)
    test = write(tmp_path / "t.csv", "video_id,clip_id,text,mode\nu1,01,hi,test\n")
    with pytest.raises(UserError, match=r"t\.csv: line 2, column 'mode': 'test' is not allowed"):
        labels.read_unlabeled(test)


def test_clip_in_both_files_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "label.csv", HEADER + GOOD_ROW + "v2,002,a,0.2,,,,,test\n")
    write(tmp_path / "unlabeled.csv", "video_id,clip_id,text\nu,1,x\nv2,002,again\n")
    with pytest.raises(UserError) as err:
        build_manifest(tmp_path, "label.csv", "unlabeled.csv")
    message = str(err.value)
    assert "'v2/002'" in message and "label.csv (line 3)" in message
    assert "unlabeled.csv (line 3)" in message


def test_probe_video_statuses(tmp_path: Path) -> None:
    good = make_mp4(tmp_path / "good.mp4")
    duration, flags, reason = probe_video(good)
    assert flags == [] and reason == "" and duration == pytest.approx(0.48, abs=0.03)
    assert probe_video(make_mp4(tmp_path / "mute.mp4", audio=False))[1] == ["no_audio"]
    assert probe_video(tmp_path / "nope.mp4") == (
        0.0,
        ["missing_video"],
        f"video file not found: {tmp_path / 'nope.mp4'}",
    )
    assert probe_video(write(tmp_path / "zero.mp4", b""))[1] == ["empty_video"]
    assert probe_video(write(tmp_path / "junk.mp4", b"not a video" * 50))[1] == ["unreadable_video"]
    blob = good.read_bytes()  # moov atom at the end: half a file does not open
    half = probe_video(write(tmp_path / "half.mp4", blob[: len(blob) // 2]))
    assert half[:2] == (0.0, ["unreadable_video"])
    fast = make_mp4(tmp_path / "fast.mp4", frames=60, faststart=True).read_bytes()
    assert probe_video(tmp_path / "fast.mp4")[1] == []
    # moov atom first: the container opens and decodes its first frame; the tail check catches it
    cut = probe_video(write(tmp_path / "cut.mp4", fast[: int(len(fast) * 0.7)]))
    assert cut[:2] == (0.0, ["unreadable_video"]) and "truncated" in cut[2]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    write(
        root / "label.csv",
        HEADER
        + "007,0001,good one,0.4,0.2,,,Positive,train\n"
        + "007,0002,no sound,-0.2,,,,,train\n"
        + "007,0003,,0.0,,,,,valid\n"
        + "008,0001,missing,0.6,,,,,valid\n"
        + "008,0002,zero bytes,0.8,,,,,test\n"
        + "008,0003,truncated,-1,,,,,test\n",
    )
    write(root / "unlabeled.csv", "video_id,clip_id,text\nu01,01,just talking\n")
    raw = root / "Raw"
    make_mp4(raw / "007" / "0001.mp4")
    make_mp4(raw / "007" / "0002.mp4", audio=False)
    make_mp4(raw / "007" / "0003.mp4")
    write(raw / "008" / "0002.mp4", b"")
    blob = make_mp4(raw / "008" / "0003.mp4").read_bytes()
    write(raw / "008" / "0003.mp4", blob[: len(blob) // 2])
    make_mp4(raw / "u01" / "01.mp4", frames=25)
    return root


def test_manifest_statuses_shards_and_columns(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "results" / "demo" / "manifest.csv"
    code = main(
        ["manifest", "--root", str(dataset), "--labels", "label.csv", "--unlabeled"]
        + ["unlabeled.csv", "--scale", "sims", "--shard-size", "3", "--out", str(out)]
    )
    assert code == 0
    stderr = capsys.readouterr().err
    assert "7 clips in 3 shard(s)" in stderr and "left out of training" in stderr
    rows = read_manifest(out)
    assert count_shards(out) == 3
    manifest = pd.DataFrame([vars(r) for r in rows])
    assert tuple(manifest.columns) == constants.MANIFEST_COLUMNS
    assert manifest["key"].tolist() == [
        *("007/0001", "007/0002", "007/0003", "008/0001", "008/0002", "008/0003", "u01/01")
    ]
    assert manifest["video_id"].tolist()[:3] == ["007"] * 3  # leading zeros kept
    assert manifest["split"].tolist() == [
        *["train"] * 2,
        *["valid"] * 2,
        *["test"] * 2,
        "unlabeled",
    ]
    assert manifest["shard"].tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert manifest["status"].tolist() == [
        *("ok", "no_audio", "empty_text", "missing_video", "empty_video", "unreadable_video", "ok")
    ]
    assert manifest["video"].iloc[0] == str(dataset / "Raw" / "007" / "0001.mp4")
    assert (manifest["reason"] == "").tolist() == [True, False, False, False, False, False, True]
    assert manifest["duration"].iloc[0] == pytest.approx(0.48, abs=0.03)
    assert manifest["duration"].iloc[6] == pytest.approx(1.0, abs=0.03)
    assert manifest["duration"].iloc[3:6].tolist() == [0.0, 0.0, 0.0]
    assert manifest["label_T"].tolist()[:2] == [0.2, -0.2]  # given, then fallback to label
    assert manifest["label_V"].tolist()[:6] == [0.4, -0.2, 0.0, 0.6, 0.8, -1.0]
    assert np.isnan(manifest["label"].iloc[6]) and manifest["annotation"].iloc[0] == "Positive"
    raw = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert raw["clip_id"].tolist()[0] == "0001" and raw["label"].iloc[6] == ""
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["scale"] == "sims" and info["n_shards"] == 3 and info["n_excluded"] == 3
    assert info["split_counts"] == {"train": 2, "valid": 2, "test": 2, "unlabeled": 1}


def test_cli_reports_user_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write(tmp_path / "label.csv", HEADER + "v,1,a,0.2,,,,,dev\n")
    args = [
        "manifest",
        "--root",
        str(tmp_path),
        "--scale",
        "sims",
        "--out",
        str(tmp_path / "m.csv"),
    ]
    assert main(args) == 2
    assert "line 2, column 'mode': 'dev'" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_video_pattern_checks(tmp_path: Path) -> None:
    write(tmp_path / "label.csv", HEADER + GOOD_ROW)
    with pytest.raises(UserError, match="placeholders"):
        build_manifest(tmp_path, video_pattern="Raw/{clip}.mp4")
    write(tmp_path / "label.csv", HEADER + GOOD_ROW + "v2,001,b,0.1,,,,,test\n")
    with pytest.raises(UserError, match="maps clips 'v1/001' and 'v2/001' to the same file"):
        build_manifest(tmp_path, video_pattern="clips/{clip_id}.mp4")
    flat = build_manifest(tmp_path, video_pattern="clips/{video_id}_{clip_id}.mp4")
    assert flat["video"].tolist()[1] == str(tmp_path / "clips" / "v2_001.mp4")


def test_schema_file_matches_validation_code(tmp_path: Path) -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert tuple(schema["properties"]) == constants.LABEL_COLUMNS
    assert tuple(schema["required"]) == constants.REQUIRED_LABEL_COLUMNS
    assert schema["x-scale-bounds"] == constants.SCALE_BOUNDS
    assert schema["properties"]["mode"]["enum"] == list(constants.SPLITS)
    assert all(p.get("description") for p in schema["properties"].values())
    unl = schema["$defs"]["unlabeled_row"]
    assert tuple(unl["required"]) == constants.REQUIRED_UNLABELED_COLUMNS
    validator = jsonschema.Draft202012Validator(schema)
    table = labels.read_labels(write(tmp_path / "l.csv", HEADER + GOOD_ROW), "sims")
    row = table.drop(columns=["key", "line"]).iloc[0].to_dict()
    assert list(validator.iter_errors(row)) == []
    for bad in ({"mode": "dev"}, {"video_id": ""}, {"clip_id": "a/b"}, {"label": "x"}):
        assert list(validator.iter_errors({**row, **bad})), bad
