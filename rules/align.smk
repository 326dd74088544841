# Alignment: mask-aware averaging of audio/visual frames into `align.length` equal time bins per clip
# (`align.mode: bins`) or over each text token's word span (`words`, word times from the asr stage),
# text padded/truncated with a mask; one job per split. MMSA pickles enter the DAG here (import_mmsa).


rule align:
    input:
        manifest="results/{dataset}/manifest.csv",
        features=align_features,
        transcripts="results/{dataset}/transcripts.csv",
    output:
        expand("results/{{dataset}}/aligned/{{split}}/{name}", name=ALIGNED_FILES),
    log:
        "logs/{dataset}/align_{split}.log",
    benchmark:
        "benchmarks/{dataset}/align_{split}.tsv"
    wildcard_constraints:
        dataset=design.alternatives(RAW_DATASETS),
    params:
        features_dir="results/{dataset}/features",
        out_dir="results/{dataset}/aligned/{split}",
        length=config["align"]["length"],
        pooling=config["text"]["pooling"],
        mode=design.align_mode(config),
        asr_dir="results/{dataset}/asr",
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt align --manifest {input.manifest} --features-dir {params.features_dir}"
        " --split {wildcards.split} --length {params.length} --text-pooling {params.pooling}"
        " --mode {params.mode} --asr-dir {params.asr_dir} --scale {params.scale}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule import_mmsa:
    input:
        pickle=mmsa_pickle,
    output:
        expand(
            "results/{{dataset}}/aligned/{split}/{name}",
            split=SPLITS,
            name=ALIGNED_FILES,
        ),
    log:
        "logs/{dataset}/import_mmsa.log",
    wildcard_constraints:
        dataset=design.alternatives(MMSA_DATASETS),
    params:
        length=config["align"]["length"],
        scale=dataset_scale,
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt import-mmsa {input.pickle} --dataset {wildcards.dataset} --out-root results"
        " --align-length {params.length} --scale {params.scale} --trust-pickle > {log} 2>&1"
