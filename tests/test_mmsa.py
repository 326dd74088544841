"""Tests of MMSA interoperability (`aemt.align.mmsa`, `aemt import-mmsa` / `aemt export-mmsa`).

Small MMSA-format pickles are generated in tmp_path: unaligned (per-sample lengths, MOSEI-style -inf
in audio, `text` + `text_bert`), text-only with unimodal labels (SIMS style), and aligned (no lengths).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from aemt.align.mmsa import import_mmsa
from aemt.align.mmsa_export import export_mmsa
from aemt.cli import main
from aemt.errors import UserError
from aemt.io import save_csv, save_json, save_npy

DT, DA, DV = 12, 5, 4  # feature sizes of the generated pickles


def _write(path: Path, data: dict) -> Path:
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def _seq(rng: np.random.Generator, lengths: list[int], t: int, d: int) -> np.ndarray:
    """[N, t, d] float64 with rows beyond each length zero (MMSA-FET end padding)."""
    out = np.zeros((len(lengths), t, d))
    for i, n in enumerate(lengths):
        out[i, :n] = rng.normal(size=(n, d)) + 3.0  # + 3: no valid row is all zero
    return out


def _unaligned_split(rng, prefix: str, tokens: list[int], la: list[int], lv: list[int]) -> dict:
    n = len(tokens)
    text_bert = np.zeros((n, 3, 8))
    for i, k in enumerate(tokens):
        text_bert[i, 0, :k] = rng.integers(100, 2000, size=k)
        text_bert[i, 1, :k] = 1
    return {
        "id": np.array([f"{prefix}{i:03d}$_${i:04d}" for i in range(n)]),
        "raw_text": np.array([f"utterance {prefix} {i}" for i in range(n)]),
        "text": _seq(rng, tokens, 8, DT),
        "text_bert": text_bert,
        "audio": _seq(rng, la, 30, DA),
        "vision": _seq(rng, lv, 20, DV),
        "audio_lengths": np.array(la),
        "vision_lengths": np.array(lv),
        "regression_labels": rng.uniform(-3, 3, size=n).round(1),
        "annotations": np.array(["Neutral"] * n),
    }


@pytest.fixture
def unaligned_pkl(tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    data = {
        "train": _unaligned_split(rng, "tr", [8, 5, 3, 8], [30, 12, 3, 0], [20, 6, 1, 13]),
        "valid": _unaligned_split(rng, "va", [4, 7], [9, 30], [20, 2]),
        "test": _unaligned_split(rng, "te", [6, 2], [17, 5], [11, 20]),
    }
    data["train"]["regression_labels"][0] = 2.8  # |y| > 1 -> mosei
    data["train"]["audio"][0, 3, 1] = -np.inf  # MOSEI-style -inf (COVAREP)
    data["train"]["audio"][1, 4, :] = -np.inf
    data["valid"]["vision"][0, 2, 0] = np.nan
    data["train"]["audio"][3, 5, 2] = -np.inf  # beyond length 0: still cleaned, then ignored
    return _write(tmp_path / "unaligned.pkl", data), data


def _load_split(root: Path, split: str) -> dict:
    d = root / split
    out = {m: np.load(d / f"{m}.npy") for m in ("text", "audio", "vision")}
    out.update({f"{m}_mask": np.load(d / f"{m}_mask.npy") for m in ("text", "audio", "vision")})
    out["meta"] = pd.read_csv(
        d / "meta.csv", dtype={"key": str, "text": str}, keep_default_na=False
    )
    return out


def test_refuses_pickle_without_trust(unaligned_pkl, tmp_path, capsys):
    pkl, _ = unaligned_pkl
    with pytest.raises(UserError) as err:
        import_mmsa(pkl, tmp_path / "res", "mosei")
    msg = str(err.value)
    assert str(pkl) in msg
    assert "unpickling can execute arbitrary code" in msg
    assert "Pass --trust-pickle" in msg and "only for files from a source you trust" in msg
    assert not (tmp_path / "res").exists()
    rc = main(["import-mmsa", str(pkl), "--dataset", "mosei", "--out-root", str(tmp_path / "r")])
    assert rc == 2
    assert "--trust-pickle" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_import_unaligned_bins_lengths_and_cleans_inf(unaligned_pkl, tmp_path):
    pkl, data = unaligned_pkl
    rep = import_mmsa(pkl, tmp_path / "res", "mosei", align_length=6, trust_pickle=True)
    root = tmp_path / "res" / "mosei" / "aligned"
    assert rep.out_dir == root and rep.scale == "mosei"
    assert rep.counts == {"train": 4, "valid": 2, "test": 2}
    assert rep.dims == {"text": DT, "audio": DA, "vision": DV}
    assert rep.nonfinite == {"text": 0, "audio": 1 + DA + 1, "vision": 1}
    assert not (root / "unlabeled").exists()
    tr = _load_split(root, "train")
    assert tr["text"].shape == (4, 6, DT) and tr["audio"].shape == (4, 6, DA)
    assert tr["vision"].shape == (4, 6, DV)
    assert tr["text"].dtype == np.float32 and tr["audio_mask"].dtype == bool
    for m in ("text", "audio", "vision"):
        assert np.isfinite(tr[m]).all()
    src = data["train"]
    # text: [CLS]-first states truncated to 6 tokens; mask = text_bert attention mask
    np.testing.assert_array_equal(tr["text_mask"], src["text_bert"][:, 1, :6] > 0)
    np.testing.assert_allclose(tr["text"], src["text"][:, :6].astype(np.float32))
    # audio, clip 0: 30 frames over 6 bins -> mean of 5 consecutive frames (the -inf counted as 0)
    a0 = np.where(np.isfinite(src["audio"][0]), src["audio"][0], 0.0)
    np.testing.assert_allclose(tr["audio"][0], a0.reshape(6, 5, DA).mean(1), rtol=1e-5)
    assert tr["audio_mask"][0].all()
    # clip 1: 12 frames -> pairs; clip 2: 3 frames at centres 1/6, 3/6, 5/6 -> bins 1, 3, 5
    a1 = np.where(np.isfinite(src["audio"][1]), src["audio"][1], 0.0)[:12]
    np.testing.assert_allclose(tr["audio"][1], a1.reshape(6, 2, DA).mean(1), rtol=1e-5)
    np.testing.assert_array_equal(tr["audio_mask"][2], [False, True, False, True, False, True])
    np.testing.assert_allclose(tr["audio"][2, 1::2], src["audio"][2, :3], rtol=1e-6)
    assert (tr["audio"][2, 0::2] == 0).all()
    # clip 3: length 0 -> all padding, flagged; vision clip 2 (1 frame) lands in bin 3 only
    assert not tr["audio_mask"][3].any() and (tr["audio"][3] == 0).all()
    np.testing.assert_array_equal(tr["vision_mask"][2], [False, False, False, True, False, False])
    meta = tr["meta"]
    assert list(meta.columns) == [
        "key", "split", "label", "label_T", "label_A", "label_V", "text", "status"
    ]  # fmt: skip
    assert meta["key"].tolist() == [f"tr{i:03d}/{i:04d}" for i in range(4)]
    np.testing.assert_allclose(meta["label"], src["regression_labels"])
    for col in ("label_T", "label_A", "label_V"):  # absent unimodal labels: M stands in
        np.testing.assert_allclose(meta[col], src["regression_labels"])
    assert meta["text"][1] == "utterance tr 1"
    assert meta["status"].tolist() == ["ok", "ok", "ok", "no_audio"]
    info = pd.read_json(root / "train" / "info.json", typ="series")
    assert info["text_pooling"] == "tokens" and info["source"] == "mmsa:unaligned.pkl"
    assert info["text_model"] == "mmsa" and info["align_length"] == 6 and info["scale"] == "mosei"
    assert info["dims"] == {"text": DT, "audio": DA, "vision": DV}
    va = _load_split(root, "valid")
    assert va["vision"].shape == (2, 6, DV) and np.isfinite(va["vision"]).all()
    assert va["meta"]["split"].unique().tolist() == ["valid"]


def test_import_sims_text_only_unimodal_labels_torch_tensors(tmp_path):
    rng = np.random.default_rng(1)
    splits = {}
    for split, n in (("train", 3), ("valid", 2), ("test", 2)):
        tokens = [4, 2, 6][:n]
        part = _unaligned_split(rng, split[:2], tokens, [10] * n, [7] * n)
        del part["text_bert"]  # mask from non-zero rows
        part["audio"] = torch.from_numpy(part["audio"])  # MMSA-FET return_type 'pt'
        part["regression_labels"] = np.linspace(-0.8, 1.0, n)
        for m, off in zip("TAV", (0.1, -0.1, 0.2), strict=True):
            part[f"regression_labels_{m}"] = np.clip(part["regression_labels"] + off, -1, 1)
        splits[split] = part
    pkl = _write(tmp_path / "sims.pkl", splits)
    rep = import_mmsa(pkl, tmp_path / "res", "sims2", align_length=5, trust_pickle=True)
    assert rep.scale == "sims"
    tr = _load_split(tmp_path / "res" / "sims2" / "aligned", "train")
    np.testing.assert_array_equal(tr["text_mask"].sum(1), [4, 2, 5])  # 6 tokens truncated to 5
    assert (tr["text"][1, 2:] == 0).all()  # padding rows zero
    for m in "TAV":
        np.testing.assert_allclose(
            tr["meta"][f"label_{m}"], splits["train"][f"regression_labels_{m}"]
        )
    splits["test"]["regression_labels"][0] = 2.0
    with pytest.raises(UserError, match="--scale sims needs labels in"):
        import_mmsa(_write(tmp_path / "b.pkl", splits), tmp_path / "r", "x", 5, True, "sims")


def test_text_bert_without_states_is_refused(unaligned_pkl, tmp_path):
    _, data = unaligned_pkl
    for part in (data["train"], data["valid"], data["test"]):
        del part["text"]
    pkl = _write(tmp_path / "bert_only.pkl", data)
    with pytest.raises(UserError) as err:
        import_mmsa(pkl, tmp_path / "res", "m", trust_pickle=True)
    assert "'text_bert'" in str(err.value) and "needs the token states" in str(err.value)
    assert "bert_only.pkl [train]" in str(err.value)


def test_import_aligned_pickle_without_lengths(tmp_path):
    rng = np.random.default_rng(2)
    n, t = 3, 4
    audio = rng.normal(size=(n, t, DA)).astype(np.float32) + 3
    audio[0, :2] = 0.0  # CMU aligned data is padded at the start
    part = {
        "id": np.array(["a$_$1", "a$_$2", "b$_$1"]),
        "raw_text": np.array(["x", "y", "z"]),
        "text": rng.normal(size=(n, t, DT)) + 3,
        "audio": audio,
        "vision": rng.normal(size=(n, t, DV)) + 3,
        "regression_labels": np.array([[0.5], [-1.5], [0.0]]),  # (N, 1) as in some releases
    }
    pkl = _write(tmp_path / "aligned_4.pkl", {"train": part})
    rep = import_mmsa(pkl, tmp_path / "res", "al", align_length=t, trust_pickle=True)
    assert rep.missing_splits == ["valid", "test"]
    tr = _load_split(tmp_path / "res" / "al" / "aligned", "train")
    np.testing.assert_array_equal(tr["audio_mask"][0], [False, False, True, True])
    assert tr["audio_mask"][1:].all()
    np.testing.assert_array_equal(tr["audio"], audio)  # T == L: each frame is its own bin
    assert tr["meta"]["label"].tolist() == [0.5, -1.5, 0.0]


def _our_aligned(
    root: Path, rng: np.random.Generator, length: int = 6, pooling: str = "tokens"
) -> dict:
    """An aligned set written the way the alignment stage writes it (masks with gaps)."""
    sets = {}
    for split, n in (("train", 5), ("valid", 3), ("test", 2)):
        d = root / split
        arrays = {}
        for m, dim in (("text", DT), ("audio", DA), ("vision", DV)):
            steps = 1 if (m == "text" and pooling == "cls") else length
            mask = rng.random((n, steps)) > 0.3
            mask[0] = False if m == "vision" else mask[0]  # a clip without face
            values = (rng.normal(size=(n, steps, dim)) * mask[..., None]).astype(np.float32)
            arrays[m], arrays[f"{m}_mask"] = values, mask
            save_npy(d / f"{m}.npy", values)
            save_npy(d / f"{m}_mask.npy", mask)
        labels = rng.uniform(-1, 1, size=n).round(2)
        labels[1] = 0.0
        meta = pd.DataFrame({"key": [f"v{i:02d}/{split}{i:03d}" for i in range(n)], "split": split,
                             "label": labels, "label_T": labels, "label_A": (-labels).round(2),
                             "label_V": labels, "text": [f"t {i}" for i in range(n)],
                             "status": ["no_face"] + ["ok"] * (n - 1)})  # fmt: skip
        save_csv(d / "meta.csv", meta)
        save_json(d / "info.json", {"split": split, "dims": {"text": DT, "audio": DA,
                                    "vision": DV}, "align_length": length,
                                    "text_pooling": pooling, "scale": "sims"})  # fmt: skip
        sets[split] = {**arrays, "meta": meta}
    return sets


def test_export_writes_mmsa_format(tmp_path):
    ours = _our_aligned(tmp_path / "aligned", np.random.default_rng(3))
    out = tmp_path / "exp" / "demo.pkl"
    rep = export_mmsa(tmp_path / "aligned", out)
    assert rep.counts == {"train": 5, "valid": 3, "test": 2}
    with open(out, "rb") as fh:
        pkl = pickle.load(fh)
    assert set(pkl) == {"train", "valid", "test", "config"}
    assert pkl["config"]["scale"] == "sims" and pkl["config"]["dims"]["audio"] == DA
    for split, src in ours.items():
        part = pkl[split]
        assert part["id"].tolist() == [k.replace("/", "$_$") for k in src["meta"]["key"]]
        assert part["raw_text"].tolist() == src["meta"]["text"].tolist()
        for m in ("text", "audio", "vision"):
            assert part[m].dtype == np.float32
            np.testing.assert_array_equal(part[m], src[m])
        np.testing.assert_array_equal(part["audio_lengths"], src["audio_mask"].sum(1))
        np.testing.assert_array_equal(part["vision_lengths"], src["vision_mask"].sum(1))
        assert part["regression_labels"].dtype == np.float32
        np.testing.assert_allclose(part["regression_labels"], src["meta"]["label"], rtol=1e-6)
        np.testing.assert_allclose(part["regression_labels_A"], src["meta"]["label_A"], rtol=1e-6)
        y = src["meta"]["label"].to_numpy()
        expected = np.where(y > 0, "Positive", np.where(y < 0, "Negative", "Neutral"))
        assert part["annotations"].tolist() == expected.tolist()
    assert pkl["train"]["annotations"][1] == "Neutral"
    # unlabeled splits cannot be exported (MMSA needs labels)
    (tmp_path / "aligned" / "unlabeled").mkdir()
    _our_aligned(tmp_path / "u", np.random.default_rng(4))
    meta = pd.read_csv(tmp_path / "u" / "train" / "meta.csv")
    meta[["label", "label_T", "label_A", "label_V"]] = np.nan
    save_csv(tmp_path / "u" / "train" / "meta.csv", meta)
    with pytest.raises(UserError, match="MMSA needs a label for every clip"):
        export_mmsa(tmp_path / "u", tmp_path / "u.pkl", ["train"])
    with pytest.raises(UserError, match="missing; run the alignment stage"):
        export_mmsa(tmp_path / "aligned", tmp_path / "x.pkl", ["train", "unlabeled"])
    assert not (tmp_path / "x.pkl").exists() and not (tmp_path / "u.pkl").exists()


def test_round_trip_import_export_is_identity(tmp_path, capsys):
    ours = _our_aligned(tmp_path / "aligned", np.random.default_rng(5))
    pkl = tmp_path / "demo.pkl"
    assert main(["export-mmsa", "--aligned-dir", str(tmp_path / "aligned"), "--out", str(pkl)]) == 0
    argv = ["import-mmsa", str(pkl), "--dataset", "back", "--out-root", str(tmp_path / "res"),
            "--align-length", "6", "--trust-pickle"]  # fmt: skip
    assert main(argv) == 0
    assert "train 5, valid 3, test 2" in capsys.readouterr().out
    back = tmp_path / "res" / "back" / "aligned"
    for split, src in ours.items():
        got = _load_split(back, split)
        for m in ("text", "audio", "vision"):
            np.testing.assert_array_equal(got[m], src[m])
            np.testing.assert_array_equal(got[f"{m}_mask"], src[f"{m}_mask"])
        pd.testing.assert_frame_equal(got["meta"], src["meta"], check_dtype=False)
    info = pd.read_json(back / "train" / "info.json", typ="series")
    assert info["scale"] == "sims" and info["source"] == "mmsa:demo.pkl"


def test_round_trip_keeps_cls_pooling(tmp_path):
    ours = _our_aligned(tmp_path / "aligned", np.random.default_rng(6), pooling="cls")
    assert ours["train"]["text"].shape == (5, 1, DT)
    export_mmsa(tmp_path / "aligned", tmp_path / "cls.pkl")
    import_mmsa(tmp_path / "cls.pkl", tmp_path / "res", "cls", 6, trust_pickle=True)
    got = _load_split(tmp_path / "res" / "cls" / "aligned", "valid")
    np.testing.assert_array_equal(got["text"], ours["valid"]["text"])
    np.testing.assert_array_equal(got["audio"], ours["valid"]["audio"])
    info = pd.read_json(tmp_path / "res" / "cls" / "aligned" / "valid" / "info.json", typ="series")
    assert info["text_pooling"] == "cls" and info["lengths"]["text"] == 1
