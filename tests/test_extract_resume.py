"""Interrupt-and-resume of a shard: SIGKILL mid-way, rerun, finished clips are not redone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aemt.features.runner import run_shard
from tests._media_helpers import file_id, kill_midway, make_clip, write_manifest

N_CLIPS = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("resume")
    rows = []
    for i in range(N_CLIPS):
        video = make_clip(root / "Raw" / f"v{i % 2}" / f"{i:03d}.mp4", duration=2.0, audio=i != 3)
        rows.append(
            {"video_id": f"v{i % 2}", "clip_id": f"{i:03d}", "video": video, "duration": 2.0}
        )
    rows.append(
        {"video_id": "v9", "clip_id": "gone", "video": root / "no.mp4", "status": "missing_video"}
    )
    write_manifest(root / "manifest.csv", rows)
    return root


def test_killed_shard_resumes_without_redoing_finished_clips(dataset, tmp_path):
    out, done = tmp_path / "visual", tmp_path / "visual" / "shard_0.csv"
    args = ["extract", "visual", "--manifest", str(dataset / "manifest.csv"), "--shard", "0",
            "--out-dir", str(out), "--done", str(done), "--align-length", "25"]  # fmt: skip
    pid = kill_midway(args, out, timeout=90)
    finished = sorted(out.glob("*/*.json"))
    assert 2 <= len(finished) < N_CLIPS and not done.exists()
    before = {p: (file_id(p), file_id(p.with_suffix(".npy"))) for p in finished}

    # Leftovers that must never count as complete: an .npy without sidecar, a temporary sidecar.
    todo = [
        out / f"v{i % 2}" / f"{i:03d}"
        for i in range(N_CLIPS)
        if not (out / f"v{i % 2}" / f"{i:03d}.json").exists()
    ]
    stray_npy, stray_tmp = todo[0].with_suffix(".npy"), todo[-1]
    stray_npy.parent.mkdir(parents=True, exist_ok=True)
    np.save(stray_npy, np.zeros((3, 58), np.float32))
    fake = json.loads(finished[0].read_text())
    fake["key"] = f"{stray_tmp.parent.name}/{stray_tmp.name}"
    # named after the killed writer's pid, as its own leftovers are
    (stray_tmp.parent / f".{stray_tmp.name}.json.{pid}.tmp").write_text(json.dumps(fake))

    options = {"align_length": 25}
    table = run_shard("visual", dataset / "manifest.csv", 0, out, done, options)
    for path, (side, npy) in before.items():  # finished clips untouched
        assert file_id(path) == side and file_id(path.with_suffix(".npy")) == npy
    for i in range(N_CLIPS):
        base = out / f"v{i % 2}" / f"{i:03d}"
        sidecar = json.loads(base.with_suffix(".json").read_text())
        assert np.load(base.with_suffix(".npy")).shape == (25, 58) == tuple(sidecar["shape"])
        assert sidecar["status"] == "ok" and sum(sidecar["mask"]) == 25
    assert list(table["key"]) == [f"v{i % 2}/{i:03d}" for i in range(N_CLIPS)] + ["v9/gone"]
    assert list(table["status"]) == ["ok"] * N_CLIPS + ["missing_video"]
    assert pd.read_csv(done).shape == (N_CLIPS + 1, 3)
    assert not list(out.rglob(".*.tmp"))  # the dead writer's temporary files are gone


def test_changed_config_or_damaged_outputs_are_redone(dataset, tmp_path):
    out, done = tmp_path / "audio", tmp_path / "audio" / "shard_0.csv"
    manifest = dataset / "manifest.csv"
    table = run_shard("audio", manifest, 0, out, done, {})
    assert table.set_index("key").loc["v1/003", "status"] == "no_audio"
    first = out / "v0" / "000"
    damaged_json, missing_npy = out / "v0" / "002.json", out / "v1" / "001.npy"
    damaged_json.write_text("{ not json")
    missing_npy.unlink()
    untouched = file_id(first.with_suffix(".json"))
    run_shard("audio", manifest, 0, out, done, {"threads": 2})  # run-time option: same hash
    assert file_id(first.with_suffix(".json")) == untouched
    assert json.loads(damaged_json.read_text())["shape"][1] == 25 and missing_npy.exists()
    run_shard("audio", manifest, 0, out, done, {"feature_set": "ComParE_2016"})
    assert file_id(first.with_suffix(".json")) != untouched  # new configuration: redone
    assert np.load(first.with_suffix(".npy")).shape[1] == 65


def test_unreadable_clip_is_recorded_then_retried(dataset, tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all")
    good = dataset / "Raw" / "v0" / "000.mp4"
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            {"video_id": "a", "clip_id": "good", "video": good, "duration": 2.0},
            {"video_id": "a", "clip_id": "junk", "video": junk, "duration": 2.0},
        ],
    )
    out, done = tmp_path / "audio", tmp_path / "audio" / "shard_0.csv"
    table = run_shard("audio", manifest, 0, out, done, {})
    assert list(table["status"]) == ["ok", "unreadable_video"]  # one bad clip never stops a shard
    sidecar = json.loads((out / "a" / "junk.json").read_text())
    assert sidecar["shape"] == [0, 25] and "cannot open" in sidecar["error"]
    junk.write_bytes(good.read_bytes())  # the user replaces the broken file
    kept = file_id(out / "a" / "good.json")
    table = run_shard("audio", manifest, 0, out, done, {})
    assert list(table["status"]) == ["ok", "ok"] and file_id(out / "a" / "good.json") == kept


def test_read_shard_keeps_strings_and_names_bad_cells(dataset, tmp_path):
    from aemt.errors import UserError
    from aemt.features.runner import read_shard

    clips = read_shard(dataset / "manifest.csv", 0)
    assert [c.clip_id for c in clips][:2] == ["000", "001"]  # leading zeros kept
    assert clips[0].duration == 2.0 and clips[-1].status == "missing_video"
    table = pd.read_csv(dataset / "manifest.csv", dtype=str, keep_default_na=False)
    bad = tmp_path / "bad.csv"
    table.assign(shard="x").to_csv(bad, index=False)
    with pytest.raises(UserError, match="line 2, column 'shard': 'x' is not an integer"):
        read_shard(bad, 0)
    with pytest.raises(UserError, match=r"no clip has shard 3 \(shards are 0..0\)"):
        read_shard(dataset / "manifest.csv", 3)
    table.drop(columns="duration").to_csv(bad, index=False)
    with pytest.raises(UserError, match=r"missing column\(s\) duration"):
        read_shard(bad, 0)
