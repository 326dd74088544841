# Per-clip feature extraction, one job per shard of `extract.shard_size` clips and modality.
# Each job loads its model once, skips clips already done (resume), and writes shard_<k>.csv last.
# Text encodes the transcripts the asr stage chose (its done-file of the same shard).


rule extract_text:
    input:
        manifest="results/{dataset}/manifest.csv",
        transcripts="results/{dataset}/asr/shard_{shard}.csv",
    output:
        done="results/{dataset}/features/text/shard_{shard}.csv",
    log:
        "logs/{dataset}/extract_text/shard_{shard}.log",
    benchmark:
        "benchmarks/{dataset}/extract_text/shard_{shard}.tsv"
    params:
        out_dir="results/{dataset}/features/text",
        model=text_model,
        language=text_language,
        max_tokens=config["text"]["max_tokens"],
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt extract text --manifest {input.manifest} --shard {wildcards.shard}"
        " --out-dir {params.out_dir} --done {output.done} --threads {threads}"
        " --model {params.model} --language {params.language} --max-tokens {params.max_tokens}"
        " --transcripts {input.transcripts} > {log} 2>&1"


rule extract_audio:
    input:
        manifest="results/{dataset}/manifest.csv",
    output:
        done="results/{dataset}/features/audio/shard_{shard}.csv",
    log:
        "logs/{dataset}/extract_audio/shard_{shard}.log",
    benchmark:
        "benchmarks/{dataset}/extract_audio/shard_{shard}.tsv"
    params:
        out_dir="results/{dataset}/features/audio",
        feature_set=config["audio"]["feature_set"],
        sample_rate=config["audio"]["sample_rate"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt extract audio --manifest {input.manifest} --shard {wildcards.shard}"
        " --out-dir {params.out_dir} --done {output.done} --threads {threads}"
        " --feature-set {params.feature_set} --sample-rate {params.sample_rate}"
        " > {log} 2>&1"


rule extract_visual:
    input:
        manifest="results/{dataset}/manifest.csv",
    output:
        done="results/{dataset}/features/visual/shard_{shard}.csv",
    log:
        "logs/{dataset}/extract_visual/shard_{shard}.log",
    benchmark:
        "benchmarks/{dataset}/extract_visual/shard_{shard}.tsv"
    params:
        out_dir="results/{dataset}/features/visual",
        fps=config["visual"]["fps"],
        frames_per_bin=config["visual"]["frames_per_bin"],
        align_length=config["align"]["length"],
        max_side=config["visual"]["max_side"],
        features=",".join(config["visual"]["features"]),
        model_asset=config["visual"]["model_asset"],
        min_confidence=config["visual"]["min_confidence"],
        max_faces=config["visual"]["max_faces"],
        speaker=config["visual"]["speaker"],
        min_face=config["visual"]["min_face"],
        detect_every=config["visual"]["detect_every"],
    threads: 1
    resources:
        mem_mb=3000,
        runtime=120,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt extract visual --manifest {input.manifest} --shard {wildcards.shard}"
        " --out-dir {params.out_dir} --done {output.done} --threads {threads}"
        " --fps {params.fps} --frames-per-bin {params.frames_per_bin}"
        " --align-length {params.align_length} --max-side {params.max_side}"
        " --features {params.features} --model-asset {params.model_asset}"
        " --min-confidence {params.min_confidence} --max-faces {params.max_faces}"
        " --speaker {params.speaker} --min-face {params.min_face}"
        " --detect-every {params.detect_every} > {log} 2>&1"
