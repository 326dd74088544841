"""`aemt robustness`: evaluate fine-tuned checkpoints on the test split under the protocols of
:mod:`aemt.evaluate.robustness` (per-step random dropping with fixed, nested masks; whole modalities
absent). A dropped step is masked and zeroed (:mod:`aemt.train.missing`)."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from aemt.constants import METRIC_KEYS, MODALITIES
from aemt.errors import UserError
from aemt.evaluate.metrics import evaluate
from aemt.evaluate.robustness import (
    ABSENT,
    HEAD,
    N_PROTOCOLS,
    RANDOM,
    RATES,
    absent_protocol,
    n_passes,
)
from aemt.io import load_json

if TYPE_CHECKING:  # torch-backed types; imported at run time inside the functions that use them
    from aemt.train.runtime import Runtime
    from aemt.train.splits import SplitData


@dataclass
class RobustnessConfig:
    """How `aemt robustness` evaluates a checkpoint."""

    mask_seeds: tuple[int, ...] = (1111, 1112, 1113)
    batch_size: int | None = (
        None  # None: the run's own evaluation batch (4 x its finetune batch size)
    )

    def __post_init__(self) -> None:
        self.mask_seeds = tuple(int(s) for s in self.mask_seeds)
        if not self.mask_seeds:
            raise UserError("robustness needs at least one mask seed (--mask-seeds)")
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"--batch-size must be >= 1; got {self.batch_size}")


# ----------------------------------------------------------------------------- drop masks


def step_uniforms(masks: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    """u[m] [N, L_m] uniform in [0, 1) from (seed, modality index) alone: the same for every model."""
    return {
        m: np.random.default_rng([int(seed), j]).random(masks[m].shape)
        for j, m in enumerate(MODALITIES)
    }


def protocol_drops(
    masks: dict[str, np.ndarray], mask_seeds: Sequence[int]
) -> Iterator[tuple[str, float, list[dict[str, np.ndarray]]]]:
    """(protocol, rate, one drop dict per mask draw) in csv order; drops[m] [N, L_m] bool, True = drop.

    Rate 0 is a single draw that drops nothing (an empty dict: the inputs stay untouched).
    """
    uniforms = [step_uniforms(masks, s) for s in mask_seeds]
    for rate in RATES:
        if rate == 0.0:
            yield RANDOM, rate, [{}]
        else:
            yield RANDOM, rate, [{m: u[m] < rate for m in MODALITIES} for u in uniforms]
    for modalities in ABSENT:
        gone = {m: np.ones(masks[m].shape, dtype=bool) for m in modalities}
        yield absent_protocol(modalities), 1.0, [gone]


# ----------------------------------------------------------------------------- one checkpoint


def evaluate_checkpoint(
    path: str | os.PathLike, test: SplitData, cfg: RobustnessConfig, runtime: Runtime
) -> pd.DataFrame:
    """Rows (variant, seed, protocol, rate, metric keys) of one fine-tuned checkpoint on `test`.

    `test` is the aligned test split of the data the run was trained on.
    """
    import torch

    from aemt.train.checkpoint import checkpoint_scale, finetuned_model, load_checkpoint
    from aemt.train.finetune import FinetuneConfig, eval_batch_size, predict
    from aemt.train.missing import drop_steps
    from aemt.train.runtime import progress
    from aemt.train.splits import Normaliser, Tensors, feature_mismatch, to_tensors

    path = Path(path)
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "finetune":
        raise UserError(
            f"{path}: a '{ckpt.get('kind')}' checkpoint; robustness needs a fine-tuned one"
        )
    diff = feature_mismatch(ckpt.get("feature_info"), test.info)
    if diff:
        k, theirs, ours = diff
        raise UserError(
            f"{path}: trained on other features than this aligned test split ({k}: "
            f"checkpoint {theirs!r}, aligned data {ours!r}); give the run's own "
            "aligned folder"
        )
    if not isinstance(ckpt.get("normaliser"), dict):
        raise UserError(
            f"{path}: the fine-tuned checkpoint has no 'normaliser' (written by another aemt "
            "version, or damaged); fine-tune again"
        )
    train = ckpt.get("train_config") or {}
    variant, seed = str(train.get("variant", path.parent.parent.name)), int(train.get("seed", 0))
    scale = checkpoint_scale(ckpt)
    batch = cfg.batch_size or eval_batch_size(
        int(train.get("batch_size", FinetuneConfig.batch_size))
    )
    model = finetuned_model(ckpt, path, runtime.device)
    data = to_tensors(test, Normaliser.from_dict(ckpt["normaliser"]), runtime.device)
    labels = test.labels[:, 0].astype(np.float64)  # [N]
    rows = []
    protocols = progress(
        protocol_drops(test.masks, cfg.mask_seeds), f"robustness {variant}/{seed}", N_PROTOCOLS
    )
    for protocol, rate, draws in protocols:
        per_draw = []
        for drops in draws:
            gone = {m: torch.from_numpy(d) for m, d in drops.items()}
            xs, masks = drop_steps(data.xs, data.masks, gone)
            pred = predict(model, Tensors(data.name, data.keys, xs, masks, None), runtime, batch)
            with warnings.catch_warnings():  # every input gone: a constant prediction, Corr 0
                warnings.simplefilter("ignore", RuntimeWarning)
                per_draw.append(evaluate(pred, labels, scale))
        metrics = {k: float(np.mean([d[k] for d in per_draw])) for k in METRIC_KEYS[scale]}
        rows.append(
            {"variant": variant, "seed": seed, "protocol": protocol, "rate": rate, **metrics}
        )
    frame = pd.DataFrame(rows, columns=[*HEAD, *METRIC_KEYS[scale]])
    check_clean(frame, path.with_name("metrics.json"), scale)
    return frame


def check_clean(frame: pd.DataFrame, metrics_json: Path, scale: str) -> bool:
    """Warn (stderr) when the rate-0 metrics differ from the run's metrics.json; True when they agree."""
    if not metrics_json.is_file():
        return True
    try:
        recorded = load_json(metrics_json)
    except (OSError, UnicodeDecodeError, ValueError) as err:  # ValueError: bad JSON
        raise UserError(
            f"{metrics_json}: unreadable ({err}); fine-tune the run again or delete the file"
        ) from err
    if not isinstance(recorded, dict):
        raise UserError(f"{metrics_json}: not a JSON object; fine-tune the run again")
    clean = frame[(frame["protocol"] == RANDOM) & (frame["rate"] == 0.0)].iloc[0]
    keys = [k for k in METRIC_KEYS[scale] if k in recorded]
    off = [k for k in keys if not np.array_equal(clean[k], float(recorded[k]), equal_nan=True)]
    for k in off:
        print(
            f"warning: {metrics_json}: rate-0 {k} {clean[k]!r} differs from the run's {recorded[k]!r} "
            "(evaluated on another device type, or with another --batch-size, than it was trained?)",
            file=sys.stderr,
        )
    return not off


def evaluate_checkpoints(
    paths: Sequence[str | os.PathLike],
    aligned_dir: str | os.PathLike,
    cfg: RobustnessConfig,
    threads: int | None = None,
    device: str | None = None,
) -> pd.DataFrame:
    """robustness rows of every checkpoint (in order) on `<aligned_dir>/test`; logs seconds per run."""
    from aemt.train.runtime import log, setup_runtime
    from aemt.train.splits import load_split

    runtime = setup_runtime(threads, device)
    test = load_split(aligned_dir, "test")
    if len(test) == 0:
        raise UserError(f"{Path(aligned_dir) / 'test' / 'meta.csv'}: the test split has no clips")
    frames = []
    passes = n_passes(len(cfg.mask_seeds))
    for path in paths:
        start = time.perf_counter()
        frames.append(evaluate_checkpoint(path, test, cfg, runtime))
        log(
            f"robustness {path}: {passes} passes over {len(test)} test clips in "
            f"{time.perf_counter() - start:.2f} s on {runtime.describe()}"
        )
    return pd.concat(frames, ignore_index=True)
