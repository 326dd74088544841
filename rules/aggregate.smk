# Aggregation: per-seed metrics and mean ± std (ddof = 0) per variant, the paper-style ablation table, and the
# λ1 / λ2 sensitivity plots (paper Fig. 4).


rule aggregate:
    input:
        unpack(aggregate_input),
    output:
        csv="results/{dataset}/summary.csv",
        md="results/{dataset}/summary.md",
        ablation="results/{dataset}/ablation.md",
    log:
        "logs/{dataset}/aggregate.log",
    params:
        dataset_dir="results/{dataset}",
        variants=",".join(MAIN_VARIANTS),
        seeds=",".join(str(s) for s in config["seeds"]),
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt aggregate --dataset-dir {params.dataset_dir} --variants {params.variants}"
        " --seeds {params.seeds} --scale {params.scale} 2> {log} | tee -a {log}"


rule sensitivity_plot:
    input:
        sensitivity_input,
    output:
        csv="results/{dataset}/sensitivity_{param}.csv",
        png="results/{dataset}/sensitivity_{param}.png",
    log:
        "logs/{dataset}/sensitivity_{param}.log",
    params:
        dataset_dir="results/{dataset}",
        values=sensitivity_values,
        prefix=sensitivity_prefix,
        seeds=sensitivity_seeds,
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/report.yaml"
    shell:
        "aemt aggregate --dataset-dir {params.dataset_dir} --sensitivity {wildcards.param}"
        " --values {params.values} --prefix {params.prefix} --seeds {params.seeds}"
        " --scale {params.scale} > {log} 2>&1"
