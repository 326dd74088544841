"""Golden tests for `aemt.evaluate.metrics.evaluate` (SPEC §7, MMSA's metricsTop.py), expected values by hand."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from sklearn.metrics import f1_score

from aemt.evaluate.metrics import METRIC_KEYS, evaluate

SIMS_KEYS = ["Acc-2", "Acc-3", "Acc-5", "F1", "MAE", "Corr"]
MOSEI_KEYS = ["Acc-7", "Acc-5", "Has0_Acc-2", "Has0_F1", "Non0_Acc-2", "Non0_F1", "MAE", "Corr"]


def test_keys_in_display_order():
    assert {k: list(v) for k, v in METRIC_KEYS.items()} == {"sims": SIMS_KEYS, "mosei": MOSEI_KEYS}
    assert list(evaluate([0.1, -0.3], [0.2, -0.4], "sims")) == SIMS_KEYS
    assert list(evaluate([0.1, -0.3], [0.2, -0.4], "mosei")) == MOSEI_KEYS
    assert all(type(v) is float for v in evaluate([0.1, -0.3], [0.2, -0.4], "mosei").values())


# ------------------------------------------------------------------------------------------ SIMS


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_sims_acc2_counts_zero_as_negative():
    # label classes: 0->neg, 0.2->pos, -0.2->neg, 0->neg; pred classes: neg, pos, neg, pos -> 3/4
    m = evaluate([0.0, 0.0001, 0.0, 0.5], [0.0, 0.2, -0.2, 0.0], "sims")
    assert m["Acc-2"] == 0.75
    # a prediction of exactly 0 against a positive label is wrong; against label 0 it is right
    assert evaluate([0.0], [0.2], "sims")["Acc-2"] == 0.0
    assert evaluate([0.0], [-0.6], "sims")["Acc-2"] == 1.0


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_sims_acc3_edges():
    # -0.1 is negative (upper edge inclusive), 0.1 neutral, -0.0999 neutral, 0.1001 positive
    assert evaluate([-0.1], [-0.2], "sims")["Acc-3"] == 1.0
    assert evaluate([0.1], [0.0], "sims")["Acc-3"] == 1.0
    assert evaluate([-0.0999], [0.0], "sims")["Acc-3"] == 1.0
    assert evaluate([0.1001], [0.2], "sims")["Acc-3"] == 1.0
    assert evaluate([0.1], [0.2], "sims")["Acc-3"] == 0.0
    assert evaluate([-0.1], [0.0], "sims")["Acc-3"] == 0.0


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_sims_acc5_edges():
    # bins (-1.01,-0.7], (-0.7,-0.1], (-0.1,0.1], (0.1,0.7], (0.7,1.01]
    assert evaluate([0.7], [0.6], "sims")["Acc-5"] == 1.0  # weak positive
    assert evaluate([0.7001], [0.8], "sims")["Acc-5"] == 1.0  # strong positive
    assert evaluate([0.7], [0.8], "sims")["Acc-5"] == 0.0
    assert evaluate([-0.7], [-0.8], "sims")["Acc-5"] == 1.0  # strong negative
    assert evaluate([-0.6999], [-0.8], "sims")["Acc-5"] == 0.0
    assert evaluate([-0.1], [-0.4], "sims")["Acc-5"] == 1.0  # weak negative
    assert evaluate([0.1], [0.0], "sims")["Acc-5"] == 1.0  # neutral
    # pred classes 3,4,0,1 vs labels 4,4,0,0 -> 2/4
    assert evaluate([0.7, 0.7001, -0.7, -0.6999], [0.8, 0.8, -0.8, -0.8], "sims")["Acc-5"] == 0.5


def test_sims_clips_to_unit_range():
    # beyond +-1 is clipped: 1.5 -> 1 (strong positive), -7 -> -1; label 2.0 -> 1
    m = evaluate([1.5, -7.0, 1.0], [1.0, -1.0, 2.0], "sims")
    assert m["Acc-2"] == m["Acc-3"] == m["Acc-5"] == m["F1"] == 1.0
    assert m["MAE"] == 0.0
    assert m["Corr"] == pytest.approx(1.0)
    # MAE on clipped values: |1 - 1| + |0 - 0.5| over 2 = 0.25 (unclipped would be 0.75)
    assert evaluate([2.0, 0.0], [1.0, 0.5], "sims")["MAE"] == pytest.approx(0.25)
    # Corr on clipped values: [2, 0, -1] clips to [1, 0, -1], identical to the labels
    assert evaluate([2.0, 0.0, -1.0], [1.0, 0.0, -1.0], "sims")["Corr"] == pytest.approx(1.0)


def test_sims_f1_argument_order():
    # label classes [1,1,1,0,0,0], pred classes [1,1,1,1,1,0]
    # class 1: tp 3 fp 2 fn 0 -> F1 6/8; class 0: tp 1 fp 0 fn 2 -> F1 2/4
    # weighted by TRUE support (3, 3): 0.625; weighted by predicted support (5, 1) would be 0.70833
    m = evaluate([0.5] * 5 + [-0.5], [0.5] * 3 + [-0.5] * 3, "sims")
    assert m["F1"] == pytest.approx(0.625)
    assert m["Acc-2"] == pytest.approx(4 / 6)
    assert m["F1"] != pytest.approx(5 / 6 * 0.75 + 1 / 6 * 0.5)


# ----------------------------------------------------------------------------------------- MOSEI


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_mosei_round_half_to_even_and_clipping():
    # round: 0.5->0, 1.5->2, 2.5->2, -0.5->0, -1.5->-2; 3.7 clips to 3, -9 to -3
    pred = [0.5, 1.5, 2.5, -0.5, -1.5, 3.7, -9.0, 3.0]
    label = [0.0, 2.0, 2.0, 0.0, -2.0, 3.0, -3.0, 2.4]
    m = evaluate(pred, label, "mosei")
    # last pair: Acc-7 3 vs round(2.4)=2 wrong; Acc-5 clips both to 2 -> right
    assert m["Acc-7"] == 7 / 8
    assert m["Acc-5"] == 1.0
    # half-away-from-zero rounding would put 0.5 in class 1 and 2.5 in class 3
    assert evaluate([0.5, 2.5], [1.0, 3.0], "mosei")["Acc-7"] == 0.0
    assert evaluate([-2.5, 2.6], [-2.0, 3.0], "mosei")["Acc-7"] == 1.0


def test_mosei_has0_and_non0():
    pred = [0.0, -0.5, 0.0, -1.0, 1.0]
    label = [0.0, 0.0, 1.0, -1.0, 2.0]
    m = evaluate(pred, label, "mosei")
    # Has0 (>= 0): labels T,T,T,F,T  preds T,F,T,F,T -> 4/5
    assert m["Has0_Acc-2"] == pytest.approx(0.8)
    # F1: class 1 tp 3 fp 0 fn 1 -> 6/7; class 0 tp 1 fp 1 fn 0 -> 2/3; weights 4, 1
    assert m["Has0_F1"] == pytest.approx((4 * 6 / 7 + 2 / 3) / 5)
    # Non0 drops the two zero labels; (> 0): labels T,F,T  preds F,F,T -> 2/3 (pred 0 is negative)
    assert m["Non0_Acc-2"] == pytest.approx(2 / 3)
    assert m["Non0_F1"] == pytest.approx(2 / 3)


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_mosei_non0_drops_only_exact_zeros():
    m = evaluate([-1.0, 1.0], [0.0, 1e-9], "mosei")
    assert m["Non0_Acc-2"] == 1.0  # only the 1e-9 label is kept, predicted positive
    assert m["Has0_Acc-2"] == 0.5  # label 0 counts as positive, pred -1 does not


def test_mosei_mae_corr_unclipped():
    m = evaluate([5.0, 0.0, -1.0], [1.0, 0.0, -1.0], "mosei")
    assert m["MAE"] == pytest.approx(4 / 3)
    # deviations p: 11/3, -4/3, -7/3; y: 1, 0, -1 -> r = 6 / sqrt(186/9 * 2) = 18 / sqrt(372)
    assert m["Corr"] == pytest.approx(18 / math.sqrt(372))


@pytest.mark.filterwarnings("ignore:Corr:RuntimeWarning")  # one-sample cases: constant input
def test_mosei_all_zero_labels_non0_is_nan_with_warning():
    with pytest.warns(RuntimeWarning, match="Non0"):
        m = evaluate([0.3, -0.2], [0.0, 0.0], "mosei")
    assert math.isnan(m["Non0_Acc-2"]) and math.isnan(m["Non0_F1"])
    assert m["Has0_Acc-2"] == 0.5


# ---------------------------------------------------------------------------------- Corr, inputs


@pytest.mark.parametrize("scale", ["sims", "mosei"])
def test_constant_prediction_corr_zero_with_warning(scale):
    with pytest.warns(RuntimeWarning, match="predictions are constant"):
        m = evaluate([0.3, 0.3, 0.3], [0.2, -0.4, 0.8], scale)
    assert m["Corr"] == 0.0
    with pytest.warns(RuntimeWarning, match="labels are constant"):
        assert evaluate([0.1, 0.5], [0.4, 0.4], scale)["Corr"] == 0.0
    with pytest.warns(RuntimeWarning, match="constant"):
        assert evaluate([0.5], [0.4], scale)["Corr"] == 0.0


def test_sims_prediction_constant_after_clipping():
    with pytest.warns(RuntimeWarning, match="constant"):
        m = evaluate([2.0, 3.0, 1.5], [0.2, -0.4, 0.8], "sims")
    assert m["Corr"] == 0.0
    assert m["Acc-2"] == pytest.approx(2 / 3)


def test_no_warning_for_ordinary_input():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate([0.1, -0.5, 0.9], [0.2, -0.4, 0.8], "sims")


@pytest.mark.parametrize(
    ("pred", "label", "scale", "match"),
    [
        ([0.1, 0.2], [0.1], "sims", "must match"),
        ([[0.1], [0.2]], [0.1, 0.2], "sims", "1-D"),
        ([0.1, float("nan")], [0.1, 0.2], "mosei", "non-finite"),
        ([0.1, 0.2], [0.1, float("inf")], "mosei", "non-finite"),
        ([], [], "sims", "empty"),
        ([0.1], [0.1], "mosi", "unknown metric scale"),
    ],
)
def test_invalid_input_raises(pred, label, scale, match):
    with pytest.raises(ValueError, match=match):
        evaluate(pred, label, scale)


# ------------------------------------------- differential check against a literal port of MMSA


def _mmsa_sims(p, y):
    """`__eval_sims_regression` of thuiar/MMSA metricsTop.py, ported line by line (loops and all)."""
    p, y = np.clip(p, -1.0, 1.0), np.clip(y, -1.0, 1.0)
    out = {}
    for name, ms in (
        ("Acc-2", [-1.01, 0.0, 1.01]),
        ("Acc-3", [-1.01, -0.1, 0.1, 1.01]),
        ("Acc-5", [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]),
    ):
        pa, ya = p.copy(), y.copy()
        for i in range(len(ms) - 1):
            pa[np.logical_and(p > ms[i], p <= ms[i + 1])] = i
            ya[np.logical_and(y > ms[i], y <= ms[i + 1])] = i
        out[name] = np.sum(np.round(pa) == np.round(ya)) / float(len(ya))
        if name == "Acc-2":
            out["F1"] = f1_score(ya, pa, average="weighted")
    out["MAE"] = np.mean(np.absolute(p - y))
    out["Corr"] = np.corrcoef(p, y)[0][1]
    return out


def _mmsa_mosei(p, y):
    """`__eval_mosei_regression` of thuiar/MMSA metricsTop.py, ported line by line."""
    out = {
        "Acc-7": np.sum(np.round(np.clip(p, -3, 3)) == np.round(np.clip(y, -3, 3))) / len(y),
        "Acc-5": np.sum(np.round(np.clip(p, -2, 2)) == np.round(np.clip(y, -2, 2))) / len(y),
        "MAE": np.mean(np.absolute(p - y)),
        "Corr": np.corrcoef(p, y)[0][1],
    }
    nz = np.array([i for i, e in enumerate(y) if e != 0])
    out["Non0_Acc-2"] = np.mean((p[nz] > 0) == (y[nz] > 0))
    out["Non0_F1"] = f1_score(y[nz] > 0, p[nz] > 0, average="weighted")
    out["Has0_Acc-2"] = np.mean((p >= 0) == (y >= 0))
    out["Has0_F1"] = f1_score(y >= 0, p >= 0, average="weighted")
    return out


@pytest.mark.parametrize("seed", range(5))
def test_matches_mmsa_port_on_random_and_edge_values(seed):
    rng = np.random.default_rng(seed)
    edges = np.array([0.0, 0.1, -0.1, 0.7, -0.7, 0.5, 1.5, 2.5, -0.5, -2.5, 1.0, -1.0, 3.2, -3.4])
    sims_y = np.concatenate([np.round(rng.uniform(-1, 1, 60) * 5) / 5, [0.0, 0.0, 1.0]])
    sims_p = np.concatenate([rng.uniform(-1.2, 1.2, 60 - edges.size), edges, [0.0, 0.3, -0.2]])
    ours, ref = evaluate(sims_p, sims_y, "sims"), _mmsa_sims(sims_p, sims_y)
    assert ours == pytest.approx(ref)
    mosei_y = np.concatenate([np.round(rng.uniform(-3, 3, 60) * 3) / 3, [0.0, 0.0, 3.0]])
    mosei_p = np.concatenate([rng.uniform(-3.5, 3.5, 60 - edges.size), edges, [0.0, -0.0, 2.5]])
    ours, ref = evaluate(mosei_p, mosei_y, "mosei"), _mmsa_mosei(mosei_p, mosei_y)
    assert ours == pytest.approx(ref)
