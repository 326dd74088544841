"""Seconds per pretraining / fine-tuning epoch at the paper's data shapes, with synthetic tensors.

Shapes (CH-SIMS v2): 2,722 labelled train clips, 10,161 unlabeled, 647 valid, L = 50, feature dims
768 / 25 / 58 (BERT / eGeMAPS / MediaPipe). Each phase runs the real training step of `aemt.train`
(`pretrain_losses` / `finetune_losses` + `optimizer_step`, fused Adam, clipping) and the validation pass;
with `--limit-steps N` only N steps (after 2 warm-up steps) are timed and the epoch is extrapolated.
`--phase attention` times only the attention cores of one fine-tuning step (scores, softmax, weighted sum
and their backward, at the model's real shapes, through PyTorch's fused `scaled_dot_product_attention`,
without dropout or masks): a floor that no implementation of this architecture on this CPU goes under.

    .venv/bin/python benchmarks/train_speed.py --threads 2 --limit-steps 20
    .venv/bin/python benchmarks/train_speed.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `aemt pretrain/finetune` do; before torch

import torch  # noqa: E402

from aemt.constants import MODALITIES
from aemt.models.config import ModelConfig
from aemt.models.projection import ProjectionHead  # noqa: E402
from aemt.train.finetune import FinetuneConfig, FinetuneModel, finetune_losses, predict  # noqa: E402
from aemt.train.losses import contrastive_loss  # noqa: E402
from aemt.train.pretext import evaluate_pretrain, pretrain_losses
from aemt.train.pretrain import PretrainConfig, PretrainModel
from aemt.train.runtime import (  # noqa: E402
    Runtime,
    build_optimizer,
    optimizer_step,
    progress,
    seed_everything,
    setup_runtime,
)
from aemt.train.splits import Tensors, batch_indices, gather


@dataclass
class Row:
    phase: str
    steps: int
    timed: int
    step_s: float
    cpu_step_s: float
    eval_s: float
    epoch_s: float
    peak_mb: float


def synthetic(
    n: int, dims: dict[str, int], length: int, device: torch.device, labelled: bool
) -> Tensors:
    """Normal features, random end-padding (at least a quarter valid), labels in [-1, 1] (multiples of 0.2)."""
    g = torch.Generator().manual_seed(n)
    xs, masks = {}, {}
    for m in MODALITIES:
        lens = torch.randint(length // 4, length + 1, (n,), generator=g)
        masks[m] = (torch.arange(length)[None, :] < lens[:, None]).to(device)  # [N, L]
        xs[m] = (torch.randn(n, length, dims[m], generator=g) * masks[m].cpu()[..., None]).to(
            device
        )
    labels = (
        (torch.randint(-5, 6, (n, 4), generator=g).float() / 5).to(device) if labelled else None
    )
    return Tensors("synthetic", [str(i) for i in range(n)], xs, masks, labels)


def model_config(args, dims: dict[str, int]) -> ModelConfig:
    lengths = {m: args.length for m in MODALITIES}
    return ModelConfig.from_dict({**json.loads(args.model), "dims": dims, "lengths": lengths})


def peak_mb(runtime: Runtime) -> float:
    if runtime.device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sync(runtime: Runtime) -> None:
    if runtime.device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(
    step, n_rows: int, batch: int, limit: int | None, runtime: Runtime
) -> tuple[int, int, float, float]:
    """(steps per epoch, steps timed, wall s/step, process-CPU s/step) over a shuffled epoch.

    The CPU time (all threads) is less sensitive than wall time to other jobs sharing the machine.
    """
    batches = batch_indices(n_rows, batch, torch.Generator().manual_seed(0))
    warm, rest = batches[:2], batches[2:]
    timed = rest if limit is None else rest[:limit]
    for idx in warm:
        step(idx)
    sync(runtime)
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in progress(timed, "steps"):
        step(idx)
    sync(runtime)
    n = max(len(timed), 1)
    return len(batches), len(timed), (time.perf_counter() - t0) / n, (time.process_time() - c0) / n


def bench_pretrain(args, runtime: Runtime, dims: dict[str, int]) -> Row:
    cfg = PretrainConfig(batch_size=args.pretrain_batch, lambda1=args.lambda1)
    n_pool = args.n_train + args.n_unlabeled
    n_hold = round(cfg.holdout * n_pool)
    n_fit = n_pool - n_hold
    rows = (
        n_fit if args.limit_steps is None else min(n_fit, (args.limit_steps + 2) * cfg.batch_size)
    )
    data = synthetic(rows, dims, args.length, runtime.device, labelled=False)
    hold = synthetic(
        min(n_hold, 4 * cfg.batch_size if args.limit_steps else n_hold),
        dims,
        args.length,
        runtime.device,
        False,
    )
    mcfg = model_config(args, dims)
    model = PretrainModel(mcfg, with_consistency=cfg.lambda1 > 0).to(runtime.device)
    opt = build_optimizer(model, cfg.lr, cfg.weight_decay)
    gen = torch.Generator().manual_seed(1)
    model.train()

    def step(idx: torch.Tensor) -> None:
        bx, bm = gather(data.xs, data.masks, idx % rows, runtime.device)
        parts = pretrain_losses(model, bx, bm, cfg, gen, runtime)
        optimizer_step(parts["loss"], model, opt, runtime, cfg.clip)

    steps, timed, step_s, cpu_s = time_steps(step, n_fit, cfg.batch_size, args.limit_steps, runtime)
    t0 = time.perf_counter()
    evaluate_pretrain(model, hold, cfg, runtime)
    sync(runtime)
    eval_s = (time.perf_counter() - t0) * n_hold / len(hold)
    return Row(
        "pretrain", steps, timed, step_s, cpu_s, eval_s, steps * step_s + eval_s, peak_mb(runtime)
    )


def bench_finetune(args, runtime: Runtime, dims: dict[str, int]) -> Row:
    cfg = FinetuneConfig(batch_size=args.finetune_batch, lambda2=args.lambda2)
    rows = (
        args.n_train
        if args.limit_steps is None
        else min(args.n_train, (args.limit_steps + 2) * cfg.batch_size)
    )
    data = synthetic(rows, dims, args.length, runtime.device, labelled=True)
    valid = synthetic(args.n_valid, dims, args.length, runtime.device, labelled=True)
    model = FinetuneModel(model_config(args, dims), cfg).to(runtime.device)  # + projection head
    opt = build_optimizer(model, cfg.lr, cfg.weight_decay)
    model.train()

    def step(idx: torch.Tensor) -> None:
        idx = idx % rows
        bx, bm = gather(data.xs, data.masks, idx, runtime.device)
        parts = finetune_losses(
            model, bx, bm, data.labels[idx.to(data.labels.device)], cfg, runtime
        )
        optimizer_step(parts["loss"], model, opt, runtime, cfg.clip)

    steps, timed, step_s, cpu_s = time_steps(
        step, args.n_train, cfg.batch_size, args.limit_steps, runtime
    )
    t0 = time.perf_counter()
    predict(model, valid, runtime, 4 * cfg.batch_size)
    sync(runtime)
    eval_s = time.perf_counter() - t0
    return Row(
        "finetune", steps, timed, step_s, cpu_s, eval_s, steps * step_s + eval_s, peak_mb(runtime)
    )


def bench_attention(args, runtime: Runtime, dims: dict[str, int]) -> Row:
    """Attention cores of one fine-tuning step (encoders, six cross stacks, fusion), forward + backward."""
    mcfg = model_config(args, dims)
    rows = args.finetune_batch * (
        2 if args.lambda2 > 0 else 1
    )  # the contrastive pass doubles the batch
    d, h, length = mcfg.d_model, mcfg.n_heads, args.length
    groups = [(3 * mcfg.enc_layers, d), (6 * mcfg.cross_layers, d), (3 * mcfg.self_layers, 2 * d)]
    qkv = [
        [
            torch.randn(n * rows, h, length, width // h, device=runtime.device, requires_grad=True)
            for _ in range(3)
        ]
        for n, width in groups
    ]  # per group: q, k, v [layers * rows, h, L, dh], every layer of the group in one call

    def step(_idx: torch.Tensor) -> None:
        for q, k, v in qkv:
            torch.nn.functional.scaled_dot_product_attention(q, k, v).sum().backward()

    steps, timed, step_s, cpu_s = time_steps(
        step, args.n_train, args.finetune_batch, args.limit_steps or 10, runtime
    )
    return Row("attention", steps, timed, step_s, cpu_s, 0.0, steps * step_s, peak_mb(runtime))


def bench_contrastive(args, runtime: Runtime, repeats: int = 300) -> int:
    """ms per step of the contrastive term alone (forward + backward on Z [2B, 6d]): eq. 18 on Z as
    before, SupCon on Z, SupCon on the projection head (the default); the rest of a step is unchanged."""
    batch, width = args.finetune_batch, 6 * model_config(args, {m: 1 for m in MODALITIES}).d_model
    cfg = FinetuneConfig()
    gen = torch.Generator().manual_seed(0)
    pol_m = torch.randint(-1, 2, (batch,), generator=gen)
    pol_uni = torch.randint(-1, 2, (batch, 3), generator=gen)
    head = ProjectionHead(in_dim=width, out_dim=cfg.projection_dim).to(runtime.device)
    z = torch.randn(2 * batch, width, device=runtime.device, requires_grad=True)
    for name, form, project in (
        ("eq. 18 on Z", "paper", False),
        ("SupCon on Z", "supcon", False),
        ("SupCon on the head", "supcon", True),
    ):
        for _ in range(2):  # the first pass warms up
            t0 = time.perf_counter()
            for _ in range(repeats):
                p = head(z) if project else z
                contrastive_loss(p[:batch], p[batch:], pol_m, pol_uni, cfg.tau, form).backward()
            sync(runtime)
        ms = (time.perf_counter() - t0) / repeats * 1000
        print(f"{name:<20} {ms:7.3f} ms per step (batch {batch}, Z width {width})")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--limit-steps", type=int, default=None, help="time N steps, extrapolate the epoch"
    )
    p.add_argument(
        "--phase",
        default="both",
        choices=["both", "pretrain", "finetune", "attention", "contrastive"],
        help="contrastive: the contrastive term alone (each form, with and without the head)",
    )
    p.add_argument("--n-train", type=int, default=2722)
    p.add_argument("--n-unlabeled", type=int, default=10161)
    p.add_argument("--n-valid", type=int, default=647)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--dims", default="768,25,58", help="text,audio,vision feature dims")
    p.add_argument("--pretrain-batch", type=int, default=64)
    p.add_argument("--finetune-batch", type=int, default=16)
    p.add_argument("--lambda1", type=float, default=0.4)
    p.add_argument("--lambda2", type=float, default=1.5)
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA")
    p.add_argument("--model", default="{}", help='ModelConfig overrides, JSON: {"attn_dropout": 0}')
    args = p.parse_args(argv)
    dims = dict(zip(MODALITIES, (int(v) for v in args.dims.split(",")), strict=True))
    seed_everything(1111)
    runtime = setup_runtime(args.threads, args.device, amp=not args.no_amp)
    print(f"device: {runtime.describe()}; torch {torch.__version__}", file=sys.stderr)
    rows = []
    if args.phase in ("both", "pretrain"):
        rows.append(bench_pretrain(args, runtime, dims))
    if args.phase in ("both", "finetune"):
        rows.append(bench_finetune(args, runtime, dims))
    if args.phase == "attention":
        rows.append(bench_attention(args, runtime, dims))
    if args.phase == "contrastive":
        return bench_contrastive(args, runtime)
    print(
        f"\n{'phase':<9} {'steps/ep':>8} {'timed':>6} {'s/step':>8} {'cpu s/st':>8} {'eval s':>7} {'s/epoch':>8} {'peak MiB':>9}"
    )
    for r in rows:
        print(
            f"{r.phase:<9} {r.steps:>8} {r.timed:>6} {r.step_s:>8.3f} {r.cpu_step_s:>8.3f} "
            f"{r.eval_s:>7.2f} "
            f"{r.epoch_s:>8.1f} {r.peak_mb:>9.0f}"
        )
    print(
        f"({runtime.describe()}; finetune includes the contrastive [2B] pass, batch {args.finetune_batch})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
