"""Seconds per robustness evaluation (`aemt robustness` on one checkpoint), with synthetic tensors.

One evaluation = 1 + 10 x (mask seeds) + 6 passes over the test split (rate 0, ten rates per mask seed, six
absence protocols), each a full prediction of the split. A random-weight fine-tuned checkpoint of the
preset's model shapes is written to a temporary folder next to an aligned test split of its data shapes,
and `aemt.evaluate.robustness.evaluate_checkpoints` is timed end to end (loading the split and the
checkpoint included), `--repeat` times.

Presets: `demo` = config/demo.yaml's model on the demo's test split (12 clips, L = 50, dims 384 / 25 / 58:
MiniLM / eGeMAPS / MediaPipe); `paper` = config/config.yaml's model on CH-SIMS v2's test split (1,034 clips,
L = 50, dims 768 / 25 / 58).

    .venv/bin/python benchmarks/robustness_speed.py --preset demo --threads 2
    .venv/bin/python benchmarks/robustness_speed.py --preset paper --threads 2 --mask-seeds 1111
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `aemt robustness` does; before torch

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from aemt.constants import MODALITIES  # noqa: E402
from aemt.evaluate.robustness import n_passes  # noqa: E402
from aemt.evaluate.robustness_run import RobustnessConfig, evaluate_checkpoints  # noqa: E402
from aemt.models.aemt import AEMT  # noqa: E402
from aemt.models.config import ModelConfig  # noqa: E402
from aemt.train.checkpoint import header, save_checkpoint  # noqa: E402

DEMO_MODEL = {"d_model": 24, "n_heads": 4, "enc_layers": 2, "cross_layers": 2, "self_layers": 2}
PRESETS = {
    "demo": {
        "n": 12,
        "dims": {"text": 384, "audio": 25, "vision": 58},
        "model": DEMO_MODEL,
        "bs": 8,
    },
    "paper": {"n": 1034, "dims": {"text": 768, "audio": 25, "vision": 58}, "model": {}, "bs": 16},
}


def write_split(folder: Path, n: int, dims: dict[str, int], length: int) -> dict:
    """aligned/test/ with normal features, random end-padding and labels in [-1, 1]; returns info."""
    rng = np.random.default_rng(0)
    test = folder / "test"
    test.mkdir(parents=True)
    for m in MODALITIES:
        lens = rng.integers(length // 4, length + 1, size=n)
        mask = np.arange(length)[None, :] < lens[:, None]  # [N, L]
        x = rng.normal(size=(n, length, dims[m])).astype(np.float32) * mask[..., None]
        np.save(test / f"{m}.npy", x)
        np.save(test / f"{m}_mask.npy", mask)
    labels = np.round(rng.uniform(-1, 1, size=n), 1)
    meta = {"key": [f"v{i:05d}/0001" for i in range(n)], "split": "test", "label": labels}
    pd.DataFrame(meta).to_csv(test / "meta.csv", index=False)
    info = {"dims": dims, "lengths": {m: length for m in MODALITIES}, "scale": "sims"}
    (test / "info.json").write_text(json.dumps(info))
    return info


def write_checkpoint(path: Path, cfg: ModelConfig, info: dict, batch_size: int) -> None:
    torch.manual_seed(0)
    model = AEMT(cfg)
    ident = {"mean": {m: [0.0] * cfg.dims[m] for m in MODALITIES}}
    ident["std"] = {m: [1.0] * cfg.dims[m] for m in MODALITIES}
    train = {"variant": "bench", "seed": 1111, "scale": "sims", "batch_size": batch_size}
    head = header("finetune", cfg.to_dict(), train, info, ident)
    save_checkpoint(path, {**head, "state_dict": model.state_dict()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--length", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mask-seeds", default="1111,1112,1113")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    preset = PRESETS[args.preset]
    seeds = tuple(int(s) for s in args.mask_seeds.split(","))
    lengths = {m: args.length for m in MODALITIES}
    cfg = ModelConfig.from_dict({**preset["model"], "dims": preset["dims"], "lengths": lengths})
    passes = n_passes(len(seeds))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        info = write_split(root / "aligned", preset["n"], preset["dims"], args.length)
        ckpt = root / "finetune" / "bench" / "1111" / "model.pt"
        write_checkpoint(ckpt, cfg, info, preset["bs"])
        robust = RobustnessConfig(mask_seeds=seeds)
        for k in range(args.repeat):
            start = time.perf_counter()
            evaluate_checkpoints([ckpt], root / "aligned", robust, args.threads, args.device)
            seconds = time.perf_counter() - start
            print(
                f"{args.preset}: {preset['n']} test clips, {passes} passes, {args.threads} "
                f"threads, {args.device}: {seconds:.2f} s per evaluation "
                f"({seconds / passes:.3f} s per pass), run {k + 1}/{args.repeat}",
                flush=True,
            )


if __name__ == "__main__":
    main()
