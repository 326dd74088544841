"""Robustness to missing modalities (SPEC §10, rule and command `robustness`): fine-tuned checkpoints
evaluated on the test split with inputs dropped, and the area under each metric-vs-rate curve.

Protocols (column `protocol` of robustness.csv; `rate` = the fraction of steps dropped):

- `random`, rates 0.0, 0.1, ..., 1.0: every valid step of every modality is dropped independently with
  probability `rate` (MMSA / TFR-Net per-step masking, OpenVNA's rate sweep). The masks come from fixed
  seeds (`mask_seeds`, config `robustness.mask_seeds`), so every variant and run sees the same masks; the
  metrics of one rate are averaged over the seeds' draws. Each seed draws one uniform number per (clip,
  modality, step) and a step is dropped at rate r when it is below r, so the masks are nested: a step
  dropped at 0.3 is dropped at 0.4 too. Rate 0 drops nothing and reproduces the run's `metrics.json`
  exactly (same device type, same batch size: the run's own 4 x finetune batch size by default).
- `without_<modalities>` (rate 1.0): a whole modality, or a pair, is absent from every test clip (IMDer's
  protocol): `without_text`, `without_audio`, `without_vision`, `without_text_audio`,
  `without_text_vision`, `without_audio_vision`.

A dropped step is masked and zeroed (:mod:`aemt.train.missing`), text included: our text features are
contextual token states computed from the whole transcript, so a dropped token is a masked zero step, not
MMSA's [UNK] token id (which would need the text model at evaluation time); the surviving states still carry
context from the dropped words, which makes text dropping milder than MMSA's. [CLS] is not exempt, so rate
1.0 removes everything: every clip gets the same score, whose Pearson Corr is reported as 0.

Summary: per run, the area under the `random` curve of each metric (trapezoid over the 11 rates; the rate
axis has length 1, so the area is a mean over rates with the two end points at half weight), then mean and
population std (ddof = 0) over seeds per variant. The areas shown are MAE and the scale's Acc-2 / F1:
`Acc-2` / `F1` (sims), `Non0_Acc-2` / `Non0_F1` (mosei, the negative / positive convention most MOSI and
MOSEI tables lead with).
"""

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
from aemt.io import load_json

if TYPE_CHECKING:  # torch-backed types; imported at run time inside the functions that use them
    from aemt.train.runtime import Runtime
    from aemt.train.splits import SplitData

RATES = tuple(k / 10 for k in range(11))  # 0.0, 0.1, ..., 1.0
RANDOM = "random"
ABSENT = (
    *(("text",), ("audio",), ("vision",)),
    *(("text", "audio"), ("text", "vision"), ("audio", "vision")),
)
HEAD = ("variant", "seed", "protocol", "rate")
AREA_KEYS = {"sims": ("MAE", "Acc-2", "F1"), "mosei": ("MAE", "Non0_Acc-2", "Non0_F1")}


def absent_protocol(modalities: Sequence[str]) -> str:
    """('text', 'audio') -> 'without_text_audio'."""
    return "without_" + "_".join(modalities)


PROTOCOLS = (RANDOM, *(absent_protocol(a) for a in ABSENT))
N_PROTOCOLS = len(RATES) + len(ABSENT)  # (protocol, rate) rows per run


@dataclass
class RobustnessConfig:
    """How `aemt robustness run` evaluates a checkpoint."""

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

    from aemt.train.checkpoint import finetuned_model, load_checkpoint
    from aemt.train.finetune import predict
    from aemt.train.missing import drop_steps
    from aemt.train.runtime import progress
    from aemt.train.splits import Normaliser, Tensors, feature_signature, to_tensors

    path = Path(path)
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != "finetune":
        raise UserError(
            f"{path}: a '{ckpt.get('kind')}' checkpoint; robustness needs a fine-tuned one"
        )
    theirs, ours = feature_signature(ckpt.get("feature_info") or {}), feature_signature(test.info)
    diff = [k for k in ours if k in theirs and theirs[k] != ours[k]]
    if diff:
        raise UserError(
            f"{path}: trained on other features than this aligned test split ({diff[0]}: "
            f"checkpoint {theirs[diff[0]]!r}, aligned data {ours[diff[0]]!r}); give the run's own "
            "aligned folder"
        )
    train = ckpt.get("train_config") or {}
    variant, seed = str(train.get("variant", path.parent.parent.name)), int(train.get("seed", 0))
    scale = str(train.get("scale") or (ckpt.get("feature_info") or {}).get("scale") or "sims")
    batch = cfg.batch_size or 4 * int(train.get("batch_size", 16))
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
    recorded = load_json(metrics_json)
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
    for path in paths:
        start = time.perf_counter()
        frames.append(evaluate_checkpoint(path, test, cfg, runtime))
        passes = 1 + (len(RATES) - 1) * len(cfg.mask_seeds) + len(ABSENT)
        log(
            f"robustness {path}: {passes} passes over {len(test)} test clips in "
            f"{time.perf_counter() - start:.2f} s on {runtime.describe()}"
        )
    return pd.concat(frames, ignore_index=True)


# ----------------------------------------------------------------------------- summary


def read_tables(paths: Sequence[str | os.PathLike], scale: str) -> pd.DataFrame:
    """The per-run robustness CSVs stacked; each must hold HEAD + METRIC_KEYS[scale] and every protocol."""
    if not paths:
        raise UserError("robustness summary needs at least one per-run table (--runs)")
    frames = []
    for path in map(Path, paths):
        if not path.is_file():
            raise UserError(f"missing {path}; build it with `snakemake --cores 1 {path}`")
        frame = pd.read_csv(path)
        missing = [c for c in (*HEAD, *METRIC_KEYS[scale]) if c not in frame.columns]
        if missing:
            raise UserError(
                f"{path} lacks column(s) {', '.join(missing)} for scale {scale!r}; rerun "
                "`aemt robustness run` (or check the dataset's scale)"
            )
        for (variant, seed), part in frame.groupby(["variant", "seed"], sort=False):
            random_rates = sorted(part.loc[part["protocol"] == RANDOM, "rate"].round(6))
            absent = set(PROTOCOLS) - set(part["protocol"])
            if random_rates != list(RATES) or absent:
                raise UserError(
                    f"{path}: run {variant}/{seed} lacks protocol rows (need rates {RATES} of "
                    f"'{RANDOM}' and every without_* protocol); rerun `aemt robustness run`"
                )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def curve(frame: pd.DataFrame, variant: str, seed: int, key: str) -> np.ndarray:
    """The `random` protocol's `key` over RATES [11] of one run."""
    part = frame[(frame["variant"] == variant) & (frame["seed"] == seed)]
    part = part[part["protocol"] == RANDOM].sort_values("rate")
    return part[key].to_numpy(dtype=np.float64)


def areas(frame: pd.DataFrame, scale: str) -> pd.DataFrame:
    """One row per (variant, seed): the area under the `random` curve of every metric key."""
    rows = []
    for (variant, seed), _ in frame.groupby(["variant", "seed"], sort=False):
        values = {
            k: float(np.trapezoid(curve(frame, variant, seed, k), RATES))
            for k in METRIC_KEYS[scale]
        }
        rows.append({"variant": variant, "seed": int(seed), **values})
    return pd.DataFrame(rows)


def protocol_stats(frame: pd.DataFrame, protocol: str, rate: float, key: str) -> pd.DataFrame:
    """Mean and population std (ddof = 0) over seeds of `key` at (protocol, rate), per variant."""
    part = frame[(frame["protocol"] == protocol) & np.isclose(frame["rate"], rate)]
    grouped = part.groupby("variant", sort=False)[key]
    return pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=0), "n": grouped.size()})
