# aemt: raw talking-head clips -> features -> aligned tensors -> AE-MT pretraining/fine-tuning -> metrics.
# Canonical entry point (workflow/Snakefile is a one-line shim for tools that look there).
# Quick start and targets: README.md. Design: docs/contracts.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/manifest.smk"
include: "rules/asr.smk"
include: "rules/extract.smk"
include: "rules/align.smk"
include: "rules/pretrain.smk"
include: "rules/finetune.smk"
include: "rules/aggregate.smk"
include: "rules/robustness.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        expand("results/{dataset}/summary.md", dataset=RUN_DATASETS),


rule features:
    input:
        all_features,


rule aligned:
    input:
        all_aligned,


rule pretrained:
    input:
        [pretrained_all(ds) for ds in RUN_DATASETS],


rule finetuned:
    input:
        [finetuned_all(ds) for ds in RUN_DATASETS],


rule metrics:
    input:
        expand("results/{dataset}/summary.md", dataset=RUN_DATASETS),


rule sensitivity:
    input:
        expand(
            "results/{dataset}/sensitivity_{param}.png",
            dataset=RUN_DATASETS,
            param=SWEEPS,
        ),


rule robustness:
    input:
        expand("results/{dataset}/robustness.md", dataset=RUN_DATASETS),


rule report:
    input:
        [f for ds in RUN_DATASETS for f in report_files(ds)],
