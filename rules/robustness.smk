# Robustness to missing modalities: every main variant and seed evaluated on the test split with steps
# dropped at random (rates 0.0-1.0, fixed mask seeds) and with whole modalities absent; the runs stacked
# into robustness.csv, robustness.md (areas under the metric-vs-rate curves, mean ± std over seeds) and the
# report's robustness.html / robustness.png (part of the `report` target).


rule robustness_run:
    input:
        model="results/{dataset}/finetune/{variant}/{seed}/model.pt",
        metrics="results/{dataset}/finetune/{variant}/{seed}/metrics.json",
        test=robustness_test,
    output:
        "results/{dataset}/robustness/{variant}/{seed}.csv",
    log:
        "logs/{dataset}/robustness/{variant}/{seed}.log",
    benchmark:
        "benchmarks/{dataset}/robustness/{variant}/{seed}.tsv"
    params:
        aligned_dir="results/{dataset}/aligned",
        mask_seeds=robustness_mask_seeds,
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/train.yaml"
    shell:
        "aemt robustness --model {input.model} --aligned-dir {params.aligned_dir}"
        " --mask-seeds {params.mask_seeds} --threads {threads} --out {output} > {log} 2>&1"


rule robustness_summary:
    input:
        robustness_runs,
    output:
        csv="results/{dataset}/robustness.csv",
        md="results/{dataset}/robustness.md",
    log:
        "logs/{dataset}/robustness.log",
    params:
        out_dir=output_dir,
        scale=dataset_scale,
        mask_seeds=robustness_mask_seeds,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report robustness-tables --runs {input} --scale {params.scale} --out-dir {params.out_dir}"
        " --dataset {wildcards.dataset} --mask-seeds {params.mask_seeds} 2> {log} | tee -a {log}"


rule report_robustness:
    input:
        "results/{dataset}/robustness.csv",
    output:
        html=report(
            "results/{dataset}/report/robustness.html",
            caption="../workflow/report/robustness.rst",
            category="{dataset}",
            subcategory="5. Robustness",
            labels={"content": "missing modalities: areas, absent modalities", "type": "table"},
        ),
        png=report(
            "results/{dataset}/report/robustness.png",
            caption="../workflow/report/robustness_curves.rst",
            category="{dataset}",
            subcategory="5. Robustness",
            labels={"content": "metrics vs drop rate", "type": "figure"},
        ),
    log:
        "logs/{dataset}/report/robustness.log",
    params:
        out_dir=output_dir,
        scale=dataset_scale,
        mask_seeds=robustness_mask_seeds,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt report robustness --csv {input} --scale {params.scale} --out-dir {params.out_dir}"
        " --dataset {wildcards.dataset} --mask-seeds {params.mask_seeds} > {log} 2>&1"
