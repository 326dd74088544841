# Demo data and manifest. The manifest validates label.csv (+ unlabeled list), probes every video and writes
# one row per clip with a status and its extraction shard; it is a checkpoint because the number of shards
# comes from it.


rule demo_data:
    output:
        labels="{demo_root}/label.csv",
        unlabeled="{demo_root}/unlabeled.csv",
    log:
        "logs/demo_data/{demo_root}.log",
    params:
        options=demo_args,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt demo-data {wildcards.demo_root} --force {params.options} > {log} 2>&1"


checkpoint manifest:
    input:
        unpack(manifest_input),
    output:
        "results/{dataset}/manifest.csv",
    log:
        "logs/{dataset}/manifest.log",
    benchmark:
        "benchmarks/{dataset}/manifest.tsv"
    params:
        root=dataset_root,
        labels=dataset_labels,
        unlabeled=manifest_unlabeled_flag,
        video=dataset_video,
        scale=dataset_scale,
        shard_size=config["extract"]["shard_size"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt manifest --root {params.root} --labels {params.labels} {params.unlabeled}"
        " --video-pattern '{params.video}' --scale {params.scale}"
        " --shard-size {params.shard_size} --out {output} > {log} 2>&1"
