# Aggregation: per-seed metrics and mean ± std (ddof = 0) per variant, the paper-style ablation table, and the
# λ1 / λ2 sensitivity plots (paper Fig. 4). Every run's metrics.json is an explicit input.


rule aggregate:
    input:
        runs=aggregate_runs,
        train="results/{dataset}/aligned/train/meta.csv",
        test="results/{dataset}/aligned/test/meta.csv",
    output:
        csv="results/{dataset}/summary.csv",
        md="results/{dataset}/summary.md",
        ablation="results/{dataset}/ablation.md",
    log:
        "logs/{dataset}/aggregate.log",
    params:
        out_dir=output_dir,
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt aggregate --metrics {input.runs} --train-meta {input.train} --test-meta {input.test}"
        " --scale {params.scale} --out-dir {params.out_dir} --dataset {wildcards.dataset}"
        " 2> {log} | tee -a {log}"


rule sensitivity_plot:
    input:
        sensitivity_runs,
    output:
        csv="results/{dataset}/sensitivity_{param}.csv",
        png="results/{dataset}/sensitivity_{param}.png",
    log:
        "logs/{dataset}/sensitivity_{param}.log",
    params:
        out_dir=output_dir,
        prefix=sensitivity_prefix,
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt aggregate --sensitivity {wildcards.param} --prefix {params.prefix} --metrics {input}"
        " --scale {params.scale} --out-dir {params.out_dir} --dataset {wildcards.dataset}"
        " > {log} 2>&1"
