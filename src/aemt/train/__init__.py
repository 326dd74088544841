"""Stages 4-5, training (rules and commands `pretrain`, `finetune`): aligned `splits` in memory and
their normaliser, the `losses`, the `runtime` (device, seeds, optimiser), self-describing `checkpoint`s,
the shared epoch `loop`, `missing` modalities (masked and zeroed steps, modality dropout), and the two
jobs `pretrain` and `finetune`."""
