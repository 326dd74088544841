# Speech recognition (faster-whisper), one job per shard of `extract.shard_size` clips, before text
# extraction: per clip the transcript used and its word timings (results/<ds>/asr/<video_id>/<clip_id>.json),
# per shard a done-file with the transcripts; `transcripts` merges them into results/<ds>/transcripts.csv.
# The dataset's `asr` key (never | missing | always) decides which transcript each clip uses.


rule asr:
    input:
        manifest="results/{dataset}/manifest.csv",
    output:
        done="results/{dataset}/asr/shard_{shard}.csv",
    log:
        "logs/{dataset}/asr/shard_{shard}.log",
    benchmark:
        "benchmarks/{dataset}/asr/shard_{shard}.tsv"
    params:
        out_dir="results/{dataset}/asr",
        mode=asr_setting("mode"),
        language=asr_setting("language"),
        model=asr_setting("model"),
        beam_size=asr_setting("beam_size"),
        compute_type=asr_setting("compute_type"),
        vad=asr_vad_flag,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt asr --manifest {input.manifest} --shard {wildcards.shard}"
        " --out-dir {params.out_dir} --done {output.done} --threads {threads}"
        " --mode {params.mode} --language {params.language} --model {params.model}"
        " --beam-size {params.beam_size} --compute-type {params.compute_type} {params.vad}"
        " > {log} 2>&1"


rule transcripts:
    input:
        manifest="results/{dataset}/manifest.csv",
        shards=asr_shards,
    output:
        "results/{dataset}/transcripts.csv",
    log:
        "logs/{dataset}/transcripts.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/features.yaml"
    shell:
        "aemt transcripts --manifest {input.manifest} --shards {input.shards} --out {output}"
        " > {log} 2>&1"
