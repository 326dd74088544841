# HTML report: figures and tables under results/{dataset}/report/, marked report() so that
# `snakemake --report report.html report` (after `snakemake report`) gathers them into one self-contained file.
# The λ1 / λ2 sensitivity plots join the `report` target when they were built (`snakemake sensitivity`): a
# sweep is expensive, so the report never forces it. Captions: workflow/report/*.rst.

rule report_results:
    input:
        metrics=aggregate_runs,
        predictions=finetuned_predictions,
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
        out_dir=output_dir,
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report results --metrics {input.metrics} --train-meta {input.train}"
        " --test-meta {input.test} --scale {params.scale} --out-dir {params.out_dir}"
        " --dataset {wildcards.dataset} > {log} 2>&1"


rule report_pretrain_curves:
    input:
        pretrain_curve_histories,
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
        "aemt report pretrain-curves --histories {input} --name {wildcards.pretrain}"
        " --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule report_pretraining:
    input:
        pretraining_histories,
    output:
        report(
            "results/{dataset}/report/pretraining.html",
            caption="../workflow/report/pretraining.rst",
            category="{dataset}",
            subcategory="2. Training curves",
            labels={"stage": "1. pretraining", "run": "diagnostics (all runs)"},
        ),
    log:
        "logs/{dataset}/report/pretraining.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report pretraining --histories {input} --dataset {wildcards.dataset}"
        " --out {output} > {log} 2>&1"


rule report_finetune_curves:
    input:
        histories=curve_histories,
        metrics=curve_metrics,
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
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report finetune-curves --histories {input.histories} --variant {wildcards.variant}"
        " --dataset {wildcards.dataset} --out {output} > {log} 2>&1"


rule report_quality:
    input:
        aligned=quality_aligned,
        manifest=quality_manifest,
        features=quality_features,
        transcripts=quality_transcripts,
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
        sources=quality_sources,
        out_dir=output_dir,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report quality {params.sources} --aligned {input.aligned}"
        " --out-dir {params.out_dir} --dataset {wildcards.dataset} > {log} 2>&1"


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
