"""Choose the contrastive settings (projection size, tau, lambda2) by VALIDATION MAE, never test.

Runs `aemt finetune` of the `aemt` variant for every point of a grid and every seed, starting from the
pretraining runs of a finished workflow (results/<ds>/pretrain/<name>/<seed>/model.pt), and prints the
validation MAE (mean ± std over seeds, ddof = 0) per point, best first. Test metrics are written by each
run (metrics.json) but never read here. Runs land in results/<ds>/selection/<point>/<seed>/ and are reused
when the script is run again.

    python scripts/select_contrastive.py --dataset demo --configfile config/demo.yaml \
        --projection-dim 32,64,128 --tau 0.1,0.2,0.5 --lambda2 0.1,0.5,1.5
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from aemt import experiments as design  # noqa: E402


def merged_config(files: list[Path]) -> dict:
    """config/config.yaml plus the given overlays, merged as Snakemake's --configfile does."""

    def merge(base: dict, extra: dict) -> dict:
        out = dict(base)
        for key, value in extra.items():
            nested = isinstance(value, dict) and isinstance(out.get(key), dict)
            out[key] = merge(out[key], value) if nested else value
        return out

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for path in files:
        config = merge(config, yaml.safe_load(path.read_text()))
    return config


def numbers(text: str, kind: type) -> list:
    return [kind(v) for v in text.split(",") if v.strip()]


def run_point(args, config: dict, point: dict, seed: int) -> float:
    """Fine-tune `aemt` with `point` merged into its train settings; the validation MAE."""
    tag = "_".join(f"{k}{v:g}" for k, v in point.items())
    out = Path("results") / args.dataset / "selection" / tag / str(seed)
    metrics = out / "metrics.json"
    if not metrics.is_file():
        hparams = json.loads(design.finetune_hparams(config, args.variant))
        hparams["train"].update(point)
        pretrained = design.pretrained_for(config, args.dataset, args.variant, seed) or "none"
        cmd = ["aemt", "finetune", "--aligned-dir", f"results/{args.dataset}/aligned"]
        cmd += ["--out-dir", str(out), "--pretrained", pretrained, "--variant", f"select_{tag}"]
        cmd += ["--seed", str(seed), "--scale", design.dataset(config, args.dataset)["scale"]]
        cmd += ["--hparams", json.dumps(hparams), "--threads", str(args.threads)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return float(json.loads(metrics.read_text())["valid"]["MAE"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--configfile", type=Path, nargs="*", default=[])
    parser.add_argument("--variant", default="aemt", help="the variant whose settings are varied")
    parser.add_argument("--projection-dim", default="64")
    parser.add_argument("--tau", default="0.1")
    parser.add_argument("--lambda2", default="1.5")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    config = merged_config(args.configfile)
    grid = itertools.product(
        numbers(args.projection_dim, int), numbers(args.tau, float), numbers(args.lambda2, float)
    )
    rows = []
    for dim, tau, lam in grid:
        point = {"projection_dim": dim, "tau": tau, "lambda2": lam}
        maes = [run_point(args, config, point, seed) for seed in config["seeds"]]
        rows.append((float(np.mean(maes)), float(np.std(maes)), point, maes))
        print(f"{point}: valid MAE {100 * rows[-1][0]:.2f} ± {100 * rows[-1][1]:.2f}", flush=True)
    print("\nvalidation MAE (x100, mean ± std over seeds), best first:")
    for mean, std, point, maes in sorted(rows, key=lambda r: r[0]):
        seeds = ", ".join(f"{100 * m:.2f}" for m in maes)
        print(f"  {100 * mean:6.2f} ± {100 * std:5.2f}  {point}  (seeds: {seeds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
