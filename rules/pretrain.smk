# Pretraining: per-modality autoencoders (reconstruction + modality-consistency detection), trained jointly on
# unlabeled clips + the train split. One job per dataset x pretraining configuration x seed: fine-tuning
# seed s starts from the pretraining run of seed s, shared by the variants with that configuration.


rule pretrain:
    input:
        pretrain_input,
    output:
        model="results/{dataset}/pretrain/{pretrain}/{seed}/model.pt",
        history="results/{dataset}/pretrain/{pretrain}/{seed}/history.csv",
    log:
        "logs/{dataset}/pretrain/{pretrain}/{seed}.log",
    benchmark:
        "benchmarks/{dataset}/pretrain/{pretrain}/{seed}.tsv"
    params:
        aligned_dir="results/{dataset}/aligned",
        out_dir=output_dir,
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
