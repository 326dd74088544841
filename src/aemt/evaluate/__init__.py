"""Evaluation (rule and command `aggregate`): MMSA-exact `metrics`, and `summary` statistics over seeds
(per-seed rows, mean ± std, the train-mean baseline, sensitivity sweeps) as DataFrames."""
