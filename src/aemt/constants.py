"""The names of the stage contracts (docs/contracts.md), defined once.

This module imports nothing, so every stage (and `rules/common.smk`) can use it without start-up cost.
Paths under `results/` and these names are a public contract: other tools read them.
"""

# ---- modalities ----------------------------------------------------------------------------------
# Aligned tensors, models and checkpoints name the modalities as MMSA does ...
MODALITIES = ("text", "audio", "vision")
# ... and extraction (`aemt extract <name>`, results/<ds>/features/<name>/) names the third one `visual`.
FEATURE_DIR = {"text": "text", "audio": "audio", "vision": "visual"}
EXTRACTORS = tuple(FEATURE_DIR.values())  # ("text", "audio", "visual")

# ---- splits and scales ---------------------------------------------------------------------------
SPLITS = ("train", "valid", "test")  # label.csv `mode` values
UNLABELED = "unlabeled"  # clips of unlabeled.csv: pretraining only
ALL_SPLITS = (*SPLITS, UNLABELED)
SCALE_BOUNDS = {"sims": 1.0, "mosei": 3.0}  # labels lie in [-bound, bound]
SCALES = tuple(SCALE_BOUNDS)

# ---- label files ---------------------------------------------------------------------------------
UNIMODAL = ("label_T", "label_A", "label_V")
LABEL_VALUES = ("label", *UNIMODAL)
LABEL_COLUMNS = ("video_id", "clip_id", "text", *LABEL_VALUES, "annotation", "mode")
REQUIRED_LABEL_COLUMNS = ("video_id", "clip_id", "text", "label", "mode")
REQUIRED_UNLABELED_COLUMNS = ("video_id", "clip_id", "text")

# ---- clip statuses -------------------------------------------------------------------------------
# Clips with one of these flags are left out of the aligned tensors.
EXCLUDED = frozenset({"missing_video", "empty_video", "unreadable_video"})
# Every flag, in the order a status string lists them (`;`-joined; `ok` when there is none).
FLAG_ORDER = (
    "missing_video",
    "empty_video",
    "unreadable_video",
    "no_audio",
    "no_face",
    "empty_text",
)
OK = "ok"
# Sidecar statuses an extractor can give.
STATUSES = (OK, "no_audio", "no_face", "empty_text", "unreadable_video")
# The flag that marks a modality as absent for a clip: zeros with mask False in the aligned tensors.
ABSENT_FLAG = {"text": "empty_text", "audio": "no_audio", "vision": "no_face"}

# ---- files and columns ---------------------------------------------------------------------------
MANIFEST_COLUMNS = (
    *("key", "video_id", "clip_id", "split", "shard", "video", "duration", "text"),
    *(*LABEL_VALUES, "annotation", "status", "reason"),
)
DONE_COLUMNS = ("key", "status", "rows")  # features/<modality>/shard_<KKKK>.csv
META_COLUMNS = ("key", "split", *LABEL_VALUES, "text", "status")  # aligned/<split>/meta.csv
ALIGNED_FILES = (
    *(f"{m}.npy" for m in MODALITIES),
    *(f"{m}_mask.npy" for m in MODALITIES),
    "meta.csv",
    "info.json",
)
PRETRAIN_HISTORY = (
    *("epoch", "lr", "train_loss", "train_recon", "train_consistency"),
    *("valid_loss", "valid_recon", "valid_consistency", "valid_consistency_acc"),
    *(f"valid_recon_{m}" for m in MODALITIES),  # holdout reconstruction error per modality ...
    *(f"mean_recon_{m}" for m in MODALITIES),  # ... and that of predicting the per-feature mean
    "seconds",
)
FINETUNE_HISTORY = (
    *("epoch", "lr", "train_loss", "train_senti", "train_con"),
    *("valid_loss", "valid_mae", "seconds"),
)
PREDICTION_COLUMNS = ("key", "label", "pred")  # finetune/<variant>/<seed>/predictions.csv

# ---- transcripts and word alignment --------------------------------------------------------------
# A dataset's `asr` key: never (label text only), missing (label text, else recognised), always.
ASR_MODES = ("never", "missing", "always")
# results/<ds>/transcripts.csv and the asr stage's done-files asr/shard_<KKKK>.csv
TRANSCRIPT_COLUMNS = (
    *("key", "text", "source", "language"),
    *("mean_logprob", "match_rate", "asr_words", "status"),
)
ALIGN_MODES = ("bins", "words")  # align.mode: equal time bins, or one step per text token

# ---- metrics (SPEC §7): the keys of metrics.json and the column order of every table ------------
METRIC_KEYS = {
    "sims": ("Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"),
    "mosei": ("Acc-7", "Acc-5", "Has0_Acc-2", "Has0_F1", "Non0_Acc-2", "Non0_F1", "MAE", "Corr"),
}
LOWER_IS_BETTER = frozenset({"MAE"})
