"""Prediction on new clips with a fine-tuned AE-MT checkpoint (`aemt predict`).

The checkpoint (`results/<ds>/finetune/<variant>/<seed>/model.pt`) is self-describing: its
`feature_info` is the aligned train split's info.json, whose `features` block records, per modality,
the extraction options, model / weights sha256 and tool version of the clips it was trained on. Predict
rebuilds the same extractors from that record (`--text-model` / `--model-asset` may point at another
copy of the same files), then, BEFORE extracting anything or building the model, compares what this run
would extract (model identity, options, dims, alignment length, text pooling) with every record of what
the model was trained on (feature_info, model_config, normaliser) and refuses with one line per
differing field. Clips then go through the same steps as training: `probe_video` (duration and flags),
speech recognition where needed (`aemt.asr`: a clip given no text is transcribed; with
`align.mode: words` every clip gets word timings as in training), the extractors, the checkpoint's
alignment mode (`align.align_clip` or `align.words.align_clip_words`), the stored `Normaliser`, and
`finetune.predict` in eval mode. `plan` holds the checkpoint checks, `run` the extraction and scoring.

Output per clip: `score` (the model's raw prediction) and, following SPEC §7,
- scale `sims`:  `class` = Acc-3 bin of the score clipped to [-1, 1]: negative (<= -0.1), neutral
  (-0.1, 0.1], positive (> 0.1); `polarity` = Acc-2 class: negative (score <= 0) or positive.
- scale `mosei`: `class` = Acc-7 class, round-half-even of the score clipped to [-3, 3], written as
  e.g. "-2 negative" (-3 strongly negative ... 0 neutral ... +3 strongly positive); `polarity` = Non0
  polarity: positive if score > 0, else negative.
`status` = `ok` or the `;`-joined flags (`no_audio`, `no_face`, `empty_text`, or an excluded flag
`missing_video` / `empty_video` / `unreadable_video`, in which case there is no score).
"""

from aemt.predict.plan import (
    PredictConfig,
    build_plan,
    check_plan,
    compare,
    extraction_options,
    load_finetuned,
)
from aemt.predict.run import classify, extract_aligned, make_clips, predict_videos

__all__ = [
    "PredictConfig",
    "build_plan",
    "check_plan",
    "classify",
    "compare",
    "extract_aligned",
    "extraction_options",
    "load_finetuned",
    "make_clips",
    "predict_videos",
]
