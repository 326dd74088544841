"""Evaluation (rules and commands `aggregate`, `robustness`): MMSA-exact `metrics`, `summary` statistics
over seeds (per-seed rows, mean ± std, the train-mean baseline, sensitivity sweeps) as DataFrames, and
`robustness` to missing modalities (drop protocols on fine-tuned checkpoints, areas under the curves)."""
