# Config validation, dataset helpers, wildcard constraints and input functions. No rules here.

import json
import math
from pathlib import Path

from snakemake.utils import validate


validate(config, schema="../workflow/schemas/config.schema.yaml")

MODALITIES = ["text", "audio", "visual"]  # extraction names (aligned tensors use text/audio/vision)
SPLITS = ["train", "valid", "test"]
ALIGNED_FILES = [
    "text.npy",
    "audio.npy",
    "vision.npy",
    "text_mask.npy",
    "audio_mask.npy",
    "vision_mask.npy",
    "meta.csv",
    "info.json",
]


def _fmt(value):
    """Format a sweep value for a path component: 0.4 -> '0.4', 1.0 -> '1'."""
    return format(float(value), "g")


# ---- datasets -------------------------------------------------------------------------------


def dataset_cfg(dataset):
    if dataset not in config["datasets"]:
        raise ValueError(
            f"dataset {dataset!r} is not in the config's `datasets` "
            f"(known: {', '.join(sorted(config['datasets']))}); add an entry (README: onboarding)."
        )
    entry = {
        "labels": "label.csv",
        "unlabeled": None,
        "video": "Raw/{video_id}/{clip_id}.mp4",
        "language": "en",
        "scale": "sims",
    }
    entry.update(config["datasets"][dataset])
    return entry


def is_mmsa(dataset):
    return bool(config["datasets"][dataset].get("mmsa_pickle"))


ALL_DATASETS = sorted(config["datasets"])
RUN_DATASETS = list(config.get("run", []))
RAW_RUN_DATASETS = [ds for ds in RUN_DATASETS if not is_mmsa(ds)]
RAW_DATASETS = [ds for ds in ALL_DATASETS if not is_mmsa(ds)]
MMSA_DATASETS = [ds for ds in ALL_DATASETS if is_mmsa(ds)]


def _alt(names):
    """A wildcard regex matching exactly these names (or nothing)."""
    import re

    return "|".join(re.escape(n) for n in names) or "(?!)"


def label_files(dataset):
    cfg = dataset_cfg(dataset)
    root = Path(cfg["root"])
    files = {"labels": str(root / cfg["labels"])}
    if cfg["unlabeled"]:
        files["unlabeled"] = str(root / cfg["unlabeled"])
    return files


def has_unlabeled(dataset):
    if is_mmsa(dataset):
        return False
    return "unlabeled" in label_files(dataset)


_SHARDS = {}


def n_shards(dataset):
    """Number of extraction shards, read from the manifest (a checkpoint: the DAG is re-evaluated after it)."""
    manifest = Path(checkpoints.manifest.get(dataset=dataset).output[0])
    key = (str(manifest), manifest.stat().st_mtime_ns)
    if key not in _SHARDS:
        import pandas as pd

        shards = pd.read_csv(manifest, usecols=["shard"])["shard"]
        _SHARDS[key] = int(shards.max()) + 1 if len(shards) else 0
    return _SHARDS[key]


def shard_done(dataset, modality):
    return [
        f"results/{dataset}/features/{modality}/shard_{k:04d}.csv" for k in range(n_shards(dataset))
    ]


def features_done(dataset):
    return [f for m in MODALITIES for f in shard_done(dataset, m)]


def aligned_splits(dataset):
    return SPLITS + (["unlabeled"] if has_unlabeled(dataset) else [])


def aligned_all(dataset):
    return [
        f"results/{dataset}/aligned/{split}/{name}"
        for split in aligned_splits(dataset)
        for name in ALIGNED_FILES
    ]


# ---- input functions (no lambdas in rules) ----------------------------------------------------


def manifest_input(wildcards):
    return label_files(wildcards.dataset)


DEMO_ROOTS = {
    str(Path(dataset_cfg(ds)["root"])): ds for ds in ALL_DATASETS if config["datasets"][ds].get("demo")
}


def demo_args(wildcards):
    """`aemt demo-data` options of the dataset whose root is being generated."""
    options = config["datasets"][DEMO_ROOTS[wildcards.demo_root]]["demo"]
    if options is True:
        return ""
    return " ".join(f"--{k.replace('_', '-')} {v}" for k, v in options.items())


def all_features(wildcards):
    return [f for ds in RAW_RUN_DATASETS for f in features_done(ds)]


def all_aligned(wildcards):
    return [f for ds in RUN_DATASETS for f in aligned_all(ds)]


def manifest_unlabeled_flag(wildcards):
    unlabeled = dataset_cfg(wildcards.dataset)["unlabeled"]
    return f"--unlabeled {unlabeled}" if unlabeled else ""


def dataset_root(wildcards):
    return dataset_cfg(wildcards.dataset)["root"]


def dataset_labels(wildcards):
    return dataset_cfg(wildcards.dataset)["labels"]


def dataset_video(wildcards):
    return dataset_cfg(wildcards.dataset)["video"]


def align_features(wildcards):
    return features_done(wildcards.dataset)


def text_model(wildcards):
    return dataset_cfg(wildcards.dataset).get("text_model", config["text"]["model"])


def text_language(wildcards):
    return dataset_cfg(wildcards.dataset)["language"]


def dataset_scale(wildcards):
    return dataset_cfg(wildcards.dataset)["scale"]


# ---- pretraining configurations and variants --------------------------------------------------


def _pretrain_configs():
    configs = {name: dict(c) for name, c in config.get("pretraining", {}).items()}
    for value in config["sensitivity"]["lambda1"]:
        sweep = {"encoder": "transformer", "lambda1": float(value)}
        if not any(c == sweep for c in configs.values()):
            configs[f"sens_l1_{_fmt(value)}"] = sweep
    return configs


PRETRAININGS = _pretrain_configs()


def _pretrain_for(encoder, lambda1):
    for name, c in PRETRAININGS.items():
        if c.get("encoder", "transformer") == encoder and float(c["lambda1"]) == float(lambda1):
            return name
    raise ValueError(f"no pretraining configuration with encoder={encoder} lambda1={lambda1}")


def _variants():
    variants = {name: dict(v) for name, v in config.get("variants", {}).items()}
    base = variants.get("aemt", {"pretrain": "transformer", "lambda2": 1.5})
    base_l1 = PRETRAININGS[base["pretrain"]]["lambda1"] if base["pretrain"] != "none" else 0.4
    for value in config["sensitivity"]["lambda1"]:
        variants[f"sens_l1_{_fmt(value)}"] = {
            "pretrain": _pretrain_for("transformer", value),
            "lambda2": base["lambda2"],
        }
    for value in config["sensitivity"]["lambda2"]:
        variants[f"sens_l2_{_fmt(value)}"] = {
            "pretrain": _pretrain_for("transformer", base_l1),
            "lambda2": float(value),
        }
    for name, v in variants.items():
        if v["pretrain"] != "none" and v["pretrain"] not in PRETRAININGS:
            raise ValueError(
                f"variant {name!r} names pretraining {v['pretrain']!r}, which is not in `pretraining`"
            )
    return variants


VARIANTS = _variants()
MAIN_VARIANTS = list(config.get("variants", {}))


def pretrain_hparams(wildcards):
    c = PRETRAININGS[wildcards.pretrain]
    model = dict(config["model"], encoder=c.get("encoder", "transformer"))
    train = dict(config["pretrain"], lambda1=float(c["lambda1"]), seed=int(config["seeds"][0]))
    return json.dumps({"model": model, "train": train}, sort_keys=True)


def variant_encoder(variant):
    v = VARIANTS[variant]
    if v["pretrain"] == "none":
        return v.get("encoder", "transformer")
    return PRETRAININGS[v["pretrain"]].get("encoder", "transformer")


def finetune_hparams(wildcards):
    v = VARIANTS[wildcards.variant]
    model = dict(config["model"], encoder=variant_encoder(wildcards.variant))
    train = dict(config["finetune"], lambda2=float(v["lambda2"]))
    return json.dumps({"model": model, "train": train}, sort_keys=True)


def _aligned_split_files(dataset, splits):
    return [f"results/{dataset}/aligned/{s}/{name}" for s in splits for name in ALIGNED_FILES]


def pretrain_input(wildcards):
    splits = ["train"] + (["unlabeled"] if has_unlabeled(wildcards.dataset) else [])
    return _aligned_split_files(wildcards.dataset, splits)


def finetune_input(wildcards):
    inputs = {"aligned": _aligned_split_files(wildcards.dataset, SPLITS)}
    pretrain = VARIANTS[wildcards.variant]["pretrain"]
    if pretrain != "none":
        inputs["pretrained"] = f"results/{wildcards.dataset}/pretrain/{pretrain}/model.pt"
    return inputs


def finetune_pretrained_arg(wildcards, input):
    return input.pretrained if "pretrained" in input.keys() else "none"


def pretrained_all(dataset):
    names = sorted(
        {VARIANTS[v]["pretrain"] for v in MAIN_VARIANTS if VARIANTS[v]["pretrain"] != "none"}
    )
    return [f"results/{dataset}/pretrain/{n}/model.pt" for n in names]


def finetune_runs(dataset, variants, seeds):
    return [
        f"results/{dataset}/finetune/{v}/{s}/metrics.json" for v in variants for s in seeds
    ]


def finetuned_all(dataset):
    return finetune_runs(dataset, MAIN_VARIANTS, config["seeds"])


def aggregate_input(wildcards):
    return {
        "runs": finetuned_all(wildcards.dataset),
        "train": f"results/{wildcards.dataset}/aligned/train/meta.csv",
        "test": f"results/{wildcards.dataset}/aligned/test/meta.csv",
    }


SWEEP_PREFIX = {"lambda1": "sens_l1_", "lambda2": "sens_l2_"}


def sensitivity_input(wildcards):
    prefix = SWEEP_PREFIX[wildcards.param]
    variants = [f"{prefix}{_fmt(v)}" for v in config["sensitivity"][wildcards.param]]
    return finetune_runs(wildcards.dataset, variants, config["sensitivity"]["seeds"])


def sensitivity_values(wildcards):
    return ",".join(_fmt(v) for v in config["sensitivity"][wildcards.param])


def sensitivity_seeds(wildcards):
    return ",".join(str(s) for s in config["sensitivity"]["seeds"])


wildcard_constraints:
    dataset=_alt(ALL_DATASETS),
    split="train|valid|test|unlabeled",
    shard=r"\d{4}",
    seed=r"\d+",
    pretrain=_alt(PRETRAININGS),
    variant=_alt(VARIANTS),
    param="lambda1|lambda2",
    demo_root=_alt(DEMO_ROOTS),


def mmsa_pickle(wildcards):
    return config["datasets"][wildcards.dataset]["mmsa_pickle"]


def sensitivity_prefix(wildcards):
    return SWEEP_PREFIX[wildcards.param]
