"""Stages 4-5, the networks (SPEC §6), one per file: per-modality `encoder`s, the pretraining
`autoencoder` (Transformer; `lstm_autoencoder` for the w/o-Transformer ablation) and `consistency`
classifier, and the fine-tuning model `aemt`. Shared `layers`, fast CPU `dropout`, the typed `config`,
and the `grouped` fast path (one switch, `ModelConfig.grouped`)."""
