# HTML report: figures and tables under results/{dataset}/report/, marked report() so that
# `snakemake --report report.html report` (after `snakemake report`) gathers them into one self-contained file.
# The λ1 / λ2 sensitivity plots join the `report` target when they were built (`snakemake sensitivity`): a
# sweep is expensive, so the report never forces it. Captions: workflow/report/*.rst.

# Module-level tables, no functions (Snakemake's linter wants those in common.smk); inputs are lambdas.
REPORT_OUTPUTS = [
    "metrics.html",
    "ablation.html",
    "variants.png",
    "best_scatter.png",
    "best_confusion.png",
    "quality.html",
    "quality.png",
    "face_detection.png",
]
# Swept parameters whose sensitivity plot exists on disk, per dataset (built by `snakemake sensitivity`).
REPORT_SWEEPS = {
    ds: [p for p in SWEEP_PREFIX if Path(f"results/{ds}/sensitivity_{p}.png").exists()]
    for ds in ALL_DATASETS
}
# Fine-tuning variants (main ones, plus the sweep runs of the sweeps built) and their seeds.
REPORT_VARIANTS = {
    ds: list(MAIN_VARIANTS)
    + [
        f"{SWEEP_PREFIX[p]}{_fmt(v)}"
        for p in REPORT_SWEEPS[ds]
        for v in config["sensitivity"][p]
        if f"{SWEEP_PREFIX[p]}{_fmt(v)}" not in MAIN_VARIANTS
    ]
    for ds in ALL_DATASETS
}
REPORT_SEEDS = {
    v: config["seeds"] if v in MAIN_VARIANTS else config["sensitivity"]["seeds"] for v in VARIANTS
}
REPORT_PRETRAINS = {
    ds: sorted({VARIANTS[v]["pretrain"] for v in REPORT_VARIANTS[ds]} - {"none"})
    for ds in ALL_DATASETS
}
# Every report file of a dataset: the input of the `report` target (Snakefile).
REPORT_FILES = {
    ds: [f"results/{ds}/report/{name}" for name in REPORT_OUTPUTS]
    + [f"results/{ds}/report/curves/pretrain_{p}.png" for p in REPORT_PRETRAINS[ds]]
    + [f"results/{ds}/report/curves/finetune_{v}.png" for v in REPORT_VARIANTS[ds]]
    + [f"results/{ds}/report/sensitivity_{p}.png" for p in REPORT_SWEEPS[ds]]
    for ds in ALL_DATASETS
}
ALIGNED_REPORT_FILES = [
    "meta.csv",
    "info.json",
    "text_mask.npy",
    "audio_mask.npy",
    "vision_mask.npy",
]


rule report_results:
    input:
        metrics=lambda wc: finetuned_all(wc.dataset),
        predictions=lambda wc: [
            run.replace("metrics.json", "predictions.csv") for run in finetuned_all(wc.dataset)
        ],
        train="results/{dataset}/aligned/train/meta.csv",
        test="results/{dataset}/aligned/test/meta.csv",
    output:
        metrics=report(
            "results/{dataset}/report/metrics.html",
            caption="../workflow/report/metrics.rst",
            category="{dataset}",
            subcategory="1. Results",
            labels={"content": "test metrics per seed and mean ± std", "type": "table"},
        ),
        ablation=report(
            "results/{dataset}/report/ablation.html",
            caption="../workflow/report/ablation.rst",
            category="{dataset}",
            subcategory="1. Results",
            labels={"content": "ablation (paper style)", "type": "table"},
        ),
        variants=report(
            "results/{dataset}/report/variants.png",
            caption="../workflow/report/variants.rst",
            category="{dataset}",
            subcategory="1. Results",
            labels={"content": "variants, mean ± std bars", "type": "figure"},
        ),
        scatter=report(
            "results/{dataset}/report/best_scatter.png",
            caption="../workflow/report/best_scatter.rst",
            category="{dataset}",
            subcategory="1. Results",
            labels={"content": "best variant: predicted vs true", "type": "figure"},
        ),
        confusion=report(
            "results/{dataset}/report/best_confusion.png",
            caption="../workflow/report/best_confusion.rst",
            category="{dataset}",
            subcategory="1. Results",
            labels={"content": "best variant: confusion matrices", "type": "figure"},
        ),
    log:
        "logs/{dataset}/report/results.log",
    params:
        dataset_dir=lambda wc, input: Path(input.train).parents[2],  # results/{dataset}
        out_dir=lambda wc, output: Path(output.metrics).parent,
        variants=",".join(MAIN_VARIANTS),
        seeds=",".join(str(s) for s in config["seeds"]),
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report results --dataset-dir {params.dataset_dir} --variants {params.variants}"
        " --seeds {params.seeds} --scale {params.scale} --out-dir {params.out_dir} > {log} 2>&1"


rule report_pretrain_curves:
    input:
        "results/{dataset}/pretrain/{pretrain}/history.csv",
    output:
        report(
            "results/{dataset}/report/curves/pretrain_{pretrain}.png",
            caption="../workflow/report/pretrain_curves.rst",
            category="{dataset}",
            subcategory="2. Training curves",
            labels={"stage": "1. pretraining", "run": "{pretrain}"},
        ),
    log:
        "logs/{dataset}/report/pretrain_{pretrain}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report pretrain-curves --history {input} --name {wildcards.pretrain}"
        " --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule report_finetune_curves:
    input:
        lambda wc: expand(
            "results/{dataset}/finetune/{variant}/{seed}/{name}",
            dataset=wc.dataset,
            variant=wc.variant,
            seed=REPORT_SEEDS[wc.variant],
            name=["history.csv", "metrics.json"],
        ),
    output:
        report(
            "results/{dataset}/report/curves/finetune_{variant}.png",
            caption="../workflow/report/finetune_curves.rst",
            category="{dataset}",
            subcategory="2. Training curves",
            labels={"stage": "2. fine-tuning", "run": "{variant}"},
        ),
    log:
        "logs/{dataset}/report/finetune_{variant}.log",
    params:
        run_dir="results/{dataset}/finetune/{variant}",
        seeds=lambda wc: ",".join(str(s) for s in REPORT_SEEDS[wc.variant]),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report finetune-curves --run-dir {params.run_dir} --seeds {params.seeds}"
        " --variant {wildcards.variant} --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule report_quality:
    input:
        aligned=lambda wc: expand(
            "results/{dataset}/aligned/{split}/{name}",
            dataset=wc.dataset,
            split=aligned_splits(wc.dataset),
            name=ALIGNED_REPORT_FILES,
        ),
        manifest=lambda wc: [] if is_mmsa(wc.dataset) else f"results/{wc.dataset}/manifest.csv",
        features=lambda wc: [] if is_mmsa(wc.dataset) else features_done(wc.dataset),
    output:
        html=report(
            "results/{dataset}/report/quality.html",
            caption="../workflow/report/quality.rst",
            category="{dataset}",
            subcategory="3. Data quality",
            labels={"content": "clips, statuses, features", "type": "table"},
        ),
        overview=report(
            "results/{dataset}/report/quality.png",
            caption="../workflow/report/quality_overview.rst",
            category="{dataset}",
            subcategory="3. Data quality",
            labels={"content": "splits, statuses, transcripts, durations, audio", "type": "figure"},
        ),
        faces=report(
            "results/{dataset}/report/face_detection.png",
            caption="../workflow/report/face_detection.rst",
            category="{dataset}",
            subcategory="3. Data quality",
            labels={"content": "face-detection rate per clip", "type": "figure"},
        ),
    log:
        "logs/{dataset}/report/quality.log",
    params:
        dataset_dir="results/{dataset}",
        out_dir="results/{dataset}/report",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report quality --dataset-dir {params.dataset_dir} --out-dir {params.out_dir}"
        " > {log} 2>&1"


rule report_sensitivity:
    input:
        "results/{dataset}/sensitivity_{param}.png",
    output:
        report(
            "results/{dataset}/report/sensitivity_{param}.png",
            caption="../workflow/report/sensitivity.rst",
            category="{dataset}",
            subcategory="4. Sensitivity",
            labels={"parameter": "{param}"},
        ),
    log:
        "logs/{dataset}/report/sensitivity_{param}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report copy {input} {output} > {log} 2>&1"
