# Fine-tuning: AE-MT (pretrained encoders + cross-modal transformers + contrastive loss) per variant and seed;
# selection on the validation split, the test split evaluated once.


rule finetune:
    input:
        unpack(finetune_input),
    output:
        model="results/{dataset}/finetune/{variant}/{seed}/model.pt",
        predictions="results/{dataset}/finetune/{variant}/{seed}/predictions.csv",
        metrics="results/{dataset}/finetune/{variant}/{seed}/metrics.json",
        history="results/{dataset}/finetune/{variant}/{seed}/history.csv",
    log:
        "logs/{dataset}/finetune/{variant}/{seed}.log",
    benchmark:
        "benchmarks/{dataset}/finetune/{variant}/{seed}.tsv"
    params:
        aligned_dir="results/{dataset}/aligned",
        out_dir="results/{dataset}/finetune/{variant}/{seed}",
        pretrained=finetune_pretrained_arg,
        scale=dataset_scale,
        hparams=finetune_hparams,
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/train.yaml"
    shell:
        "aemt finetune --aligned-dir {params.aligned_dir} --out-dir {params.out_dir}"
        " --pretrained {params.pretrained} --variant {wildcards.variant} --seed {wildcards.seed}"
        " --scale {params.scale} --hparams '{params.hparams}' --threads {threads} > {log} 2>&1"
