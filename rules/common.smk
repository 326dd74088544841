# Config validation, wildcard constraints and one-line input functions. No rules here.
# The experiment design (datasets, pretraining configurations, variants, sweeps, report files) is
# aemt.experiments: pure functions of the config, tested without Snakemake. Contract names: aemt.constants.

from pathlib import Path

from snakemake.utils import validate

from aemt import experiments as design
from aemt.constants import ALIGNED_FILES, ALL_SPLITS, EXTRACTORS, SPLITS
from aemt.dataset.clips import count_shards


validate(config, schema="../workflow/schemas/config.schema.yaml")

ALL_DATASETS = sorted(config["datasets"])
RUN_DATASETS = list(config.get("run", []))
RAW_DATASETS = [ds for ds in ALL_DATASETS if not design.is_mmsa(config, ds)]
RAW_RUN_DATASETS = [ds for ds in RUN_DATASETS if ds in RAW_DATASETS]
MMSA_DATASETS = [ds for ds in ALL_DATASETS if design.is_mmsa(config, ds)]
DEMO_ROOTS = design.demo_roots(config)
PRETRAININGS = design.pretrainings(config)
VARIANTS = design.variants(config)
MAIN_VARIANTS = design.main_variants(config)
SWEEPS = list(design.SWEEP_PREFIX)


wildcard_constraints:
    dataset=design.alternatives(ALL_DATASETS),
    split=design.alternatives(ALL_SPLITS),
    shard=r"\d{4}",
    seed=r"\d+",
    pretrain=design.alternatives(PRETRAININGS),
    variant=design.alternatives(VARIANTS),
    param=design.alternatives(SWEEPS),
    demo_root=design.alternatives(DEMO_ROOTS),


# ---- the manifest is a checkpoint: the number of extraction shards comes from it ---------------


_SHARDS = {}  # (manifest, mtime) -> shard count: input functions ask many times per DAG


def n_shards(dataset):
    manifest = Path(checkpoints.manifest.get(dataset=dataset).output[0])
    key = (manifest, manifest.stat().st_mtime_ns)
    return _SHARDS[key] if key in _SHARDS else _SHARDS.setdefault(key, count_shards(manifest))


def features_done(dataset):
    return design.shard_files(dataset, n_shards(dataset), EXTRACTORS)


def asr_done(dataset):
    return design.asr_files(dataset, n_shards(dataset))


# ---- dataset entries -------------------------------------------------------------------------


def entry(wildcards, key):
    return design.dataset(config, wildcards.dataset)[key]


def manifest_input(wildcards):
    return design.label_files(config, wildcards.dataset)


def manifest_unlabeled_flag(wildcards):
    unlabeled = entry(wildcards, "unlabeled")
    return f"--unlabeled {unlabeled}" if unlabeled else ""


def demo_args(wildcards):
    return design.demo_args(config, DEMO_ROOTS[wildcards.demo_root])


def dataset_root(wildcards):
    return entry(wildcards, "root")


def dataset_labels(wildcards):
    return entry(wildcards, "labels")


def dataset_video(wildcards):
    return entry(wildcards, "video")


def dataset_scale(wildcards):
    return entry(wildcards, "scale")


def text_language(wildcards):
    return entry(wildcards, "language")


def text_model(wildcards):
    return design.text_model(config, wildcards.dataset)


def asr_setting(key):
    return lambda wildcards: design.asr_settings(config, wildcards.dataset)[key]


def asr_vad_flag(wildcards):
    return "--vad" if design.asr_settings(config, wildcards.dataset)["vad"] else ""


def mmsa_pickle(wildcards):
    return entry(wildcards, "mmsa_pickle")


def output_dir(wildcards, output):
    return Path(output[0]).parent


# ---- stage inputs ----------------------------------------------------------------------------


def all_features(wildcards):
    return [f for ds in RAW_RUN_DATASETS for f in features_done(ds)]


def all_aligned(wildcards):
    return [
        f for ds in RUN_DATASETS for f in design.aligned_files(ds, design.aligned_splits(config, ds))
    ]


def align_features(wildcards):
    return features_done(wildcards.dataset)


def asr_shards(wildcards):
    return asr_done(wildcards.dataset)


def pretrain_input(wildcards):
    return design.aligned_files(wildcards.dataset, design.pretrain_splits(config, wildcards.dataset))


def pretrain_hparams(wildcards):
    return design.pretrain_hparams(config, wildcards.pretrain, wildcards.seed)


def finetune_input(wildcards):
    inputs = {"aligned": design.aligned_files(wildcards.dataset, SPLITS)}
    pretrained = design.pretrained_for(config, wildcards.dataset, wildcards.variant, wildcards.seed)
    return inputs | ({"pretrained": pretrained} if pretrained else {})


def finetune_pretrained_arg(wildcards, input):
    return input.pretrained if "pretrained" in input.keys() else "none"


def finetune_hparams(wildcards):
    return design.finetune_hparams(config, wildcards.variant)


def pretrained_all(dataset):
    return design.pretrained_all(config, dataset)


def finetuned_all(dataset, file="metrics.json"):
    return design.finetuned_all(config, dataset, file)


def aggregate_runs(wildcards):
    return finetuned_all(wildcards.dataset)


def sensitivity_runs(wildcards):
    return design.sweep_runs(config, wildcards.dataset, wildcards.param)


def sensitivity_prefix(wildcards):
    return design.SWEEP_PREFIX[wildcards.param]


def finetuned_predictions(wildcards):
    return finetuned_all(wildcards.dataset, "predictions.csv")


def exists(path):
    return Path(path).exists()


def pretrain_curve_histories(wildcards):
    return design.pretrain_histories(config, wildcards.dataset, exists, wildcards.pretrain)


def pretraining_histories(wildcards):
    return design.pretrain_histories(config, wildcards.dataset, exists)


def curve_runs(wildcards, file):
    seeds = design.seeds_of(config, wildcards.variant)
    return design.finetune_runs(wildcards.dataset, [wildcards.variant], seeds, file)


def curve_histories(wildcards):
    return curve_runs(wildcards, "history.csv")


def curve_metrics(wildcards):
    return curve_runs(wildcards, "metrics.json")


def quality_aligned(wildcards):
    return design.quality_aligned(config, wildcards.dataset)


def quality_manifest(wildcards):
    if design.is_mmsa(config, wildcards.dataset):
        return []
    return f"results/{wildcards.dataset}/manifest.csv"


def quality_features(wildcards):
    return [] if design.is_mmsa(config, wildcards.dataset) else features_done(wildcards.dataset)


def quality_transcripts(wildcards):
    if design.is_mmsa(config, wildcards.dataset):
        return []
    return f"results/{wildcards.dataset}/transcripts.csv"


def quality_sources(wildcards, input):
    if not input.manifest:
        return ""
    return (
        f"--manifest {input.manifest} --features-dir results/{wildcards.dataset}/features"
        f" --transcripts {input.transcripts}"
    )


def robustness_test(wildcards):
    return design.aligned_files(wildcards.dataset, ["test"])


def robustness_runs(wildcards):
    return design.robustness_runs(config, wildcards.dataset)


def robustness_mask_seeds(wildcards):
    return design.robustness_mask_seeds(config)


def report_files(dataset):
    return design.report_files(config, dataset, exists)
