"""Training loops: autoencoder pretraining (`pretrain.run_pretrain`) and AE-MT fine-tuning
(`finetune.run_finetune`), with shared plumbing in `common` and data loading / normalisation in `data`.

Submodules are imported explicitly (`from aemt.train.finetune import run_finetune`) so that importing
`aemt.train` stays cheap.
"""
