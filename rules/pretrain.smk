# Pretraining: per-modality autoencoders (reconstruction + modality-consistency detection), trained jointly on
# unlabeled clips + the train split. One job per dataset x pretraining configuration, shared by variants.


rule pretrain:
    input:
        pretrain_input,
    output:
        model="results/{dataset}/pretrain/{pretrain}/model.pt",
        history="results/{dataset}/pretrain/{pretrain}/history.csv",
    log:
        "logs/{dataset}/pretrain/{pretrain}.log",
    benchmark:
        "benchmarks/{dataset}/pretrain/{pretrain}.tsv"
    params:
        aligned_dir="results/{dataset}/aligned",
        out_dir="results/{dataset}/pretrain/{pretrain}",
        hparams=pretrain_hparams,
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=480,
    conda:
        "../envs/train.yaml"
    shell:
        "aemt pretrain --aligned-dir {params.aligned_dir} --out-dir {params.out_dir}"
        " --hparams '{params.hparams}' --threads {threads} > {log} 2>&1"
