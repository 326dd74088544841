"""HTML report, data-quality page of one dataset: clips, statuses, face detection, audio, transcripts, features.

Sources (whatever exists under `results/<ds>/`):

- raw-video datasets: `manifest.csv` (split, status flags, reason, duration, text) and the per-clip feature
  sidecars `features/<text|audio|visual>/<video_id>/<clip_id>.json` (status, per-frame `mask`, `shape`,
  `tool`, `tool_version`, `model`, `model_hash`, `config`, `config_hash`). The face-detection rate of a clip
  is the fraction of its sampled frames with a face (visual mask); audio coverage is the fraction of valid
  openSMILE frames; transcript length is counted in words (manifest text) and in model tokens (text sidecar).
- datasets imported from MMSA pickles (no manifest, no sidecars): `aligned/<split>/meta.csv` and the masks;
  the rates are then fractions of valid alignment bins.
- always: `aligned/<split>/info.json` (feature dims, lengths, models, counts).

Writes `quality.html` (tables), `quality.png` (clips per split and status, transcript lengths, durations,
audio coverage) and `face_detection.png` (histogram of the per-clip face-detection rate and the worst clips).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from aemt.errors import UserError
from aemt.io import load_json, save_text
from aemt.report_common import frame_to_html, html_page, notes_html, pyplot, save_figure

SPLIT_ORDER = ("train", "valid", "test", "unlabeled")
EXCLUDED = ("missing_video", "empty_video", "unreadable_video")  # = aemt.data.EXCLUDED
MODALITY_DIRS = {"text": "text", "audio": "audio", "vision": "visual"}


@dataclass(frozen=True)
class QualityConfig:
    worst: int = 15  # clips listed / drawn as the worst face-detection rates
    low_face: float = 0.5  # a clip below this face-detection rate is counted as "low"


@dataclass(frozen=True)
class QualityOutputs:
    html: Path
    overview_png: Path
    face_png: Path
    n_clips: int


def _flags(status: str) -> list[str]:
    return [f for f in str(status).split(";") if f and f != "ok"] or ["ok"]


def _words(text: object) -> int:
    return len(str(text).split()) if isinstance(text, str) else 0


def _sidecar(folder: Path, key: str) -> dict | None:
    path = folder / f"{key}.json"
    if not path.is_file():
        return None
    try:
        return load_json(path)
    except (OSError, ValueError) as err:
        raise UserError(
            f"cannot read feature sidecar {path} ({err}); delete it and rerun extract"
        ) from err


def clips_from_features(dataset_dir: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """One row per manifest clip, with sidecar-derived rates; and one example sidecar per modality."""
    from tqdm import tqdm

    manifest = pd.read_csv(dataset_dir / "manifest.csv", dtype=str, keep_default_na=False)
    for col in ("key", "split", "status"):
        if col not in manifest.columns:
            raise UserError(f"{dataset_dir / 'manifest.csv'} has no `{col}` column; rerun manifest")
    features = dataset_dir / "features"
    rows, examples = [], {}
    for rec in tqdm(
        manifest.itertuples(index=False), total=len(manifest), desc="sidecars", file=sys.stderr
    ):
        flags = set(_flags(rec.status))
        row = {
            "key": rec.key,
            "split": rec.split,
            "duration": pd.to_numeric(getattr(rec, "duration", ""), errors="coerce"),
            "words": _words(getattr(rec, "text", "")),
            "reason": getattr(rec, "reason", ""),
            "tokens": np.nan,
            "face_rate": np.nan,
            "frames": np.nan,
            "audio_rate": np.nan,
        }
        for modality, folder in MODALITY_DIRS.items():
            side = _sidecar(features / folder, rec.key)
            if side is None:
                continue
            examples.setdefault(modality, side)
            if side.get("status") not in (None, "ok"):
                flags.add(str(side["status"]))
            mask = np.asarray(side.get("mask") or [], dtype=float)  # [T]
            if modality == "vision":
                row["face_rate"] = float(mask.mean()) if mask.size else 0.0
                row["frames"] = int(mask.size)
            elif modality == "audio":
                row["audio_rate"] = float(mask.mean()) if mask.size else 0.0
            else:
                row["tokens"] = int((side.get("shape") or [0])[0])
        flags.discard("ok")
        row["status"] = ";".join(sorted(flags)) or "ok"
        rows.append(row)
    return pd.DataFrame(rows), examples


def clips_from_aligned(dataset_dir: Path) -> pd.DataFrame:
    """One row per aligned clip (MMSA-imported datasets): rates are fractions of valid alignment bins."""
    frames = []
    for split in SPLIT_ORDER:
        folder = dataset_dir / "aligned" / split
        if not (folder / "meta.csv").is_file():
            continue
        meta = pd.read_csv(
            folder / "meta.csv", dtype={"key": str, "status": str}, keep_default_na=False
        )
        masks = {m: np.load(folder / f"{m}_mask.npy") for m in MODALITY_DIRS}  # each [N, L] bool
        frames.append(
            pd.DataFrame(
                {
                    "key": meta["key"],
                    "split": split,
                    "duration": np.nan,
                    "words": [_words(t) for t in meta.get("text", [""] * len(meta))],
                    "reason": "",
                    "tokens": masks["text"].sum(axis=1),
                    "face_rate": masks["vision"].mean(axis=1),
                    "frames": masks["vision"].shape[1],
                    "audio_rate": masks["audio"].mean(axis=1),
                    "status": [s or "ok" for s in meta.get("status", ["ok"] * len(meta))],
                }
            )
        )
    if not frames:
        raise UserError(
            f"{dataset_dir}: neither manifest.csv nor aligned/<split>/meta.csv found; build the "
            "dataset first (snakemake aligned)"
        )
    return pd.concat(frames, ignore_index=True)


def status_table(clips: pd.DataFrame) -> pd.DataFrame:
    """Clips per split (rows) and status flag (columns; a clip with two flags counts in both)."""
    exploded = clips.assign(flag=clips["status"].map(_flags)).explode("flag")
    table = pd.crosstab(exploded["split"], exploded["flag"])
    order = [s for s in SPLIT_ORDER if s in table.index] + [
        s for s in table.index if s not in SPLIT_ORDER
    ]
    table = table.reindex(order)
    cols = ["ok"] if "ok" in table.columns else []
    table = table[cols + sorted(c for c in table.columns if c != "ok")]
    totals = clips.groupby("split").size()
    excluded = clips[clips["status"].map(lambda s: bool(set(_flags(s)) & set(EXCLUDED)))]
    table["total clips"] = totals.reindex(table.index)
    table["in tensors"] = table["total clips"] - excluded.groupby("split").size().reindex(
        table.index, fill_value=0
    )
    table.columns.name = None
    return table.reset_index().rename(columns={"split": "split \\ status"})


def feature_table(dataset_dir: Path, examples: dict[str, dict]) -> pd.DataFrame:
    """Per modality: dim, aligned length, tool and version, model, hash, extraction config."""
    info = {}
    for split in SPLIT_ORDER:
        path = dataset_dir / "aligned" / split / "info.json"
        if path.is_file():
            info = load_json(path)
            break
    rows = []
    for modality in MODALITY_DIRS:
        side = examples.get(modality, {})
        prov = (info.get("features") or {}).get(modality) or {}
        model_hash = side.get("model_hash") or prov.get("model_hash") or ""
        rows.append(
            {
                "modality": modality,
                "dim": (info.get("dims") or {}).get(modality, side.get("dim")),
                "aligned length": (info.get("lengths") or {}).get(modality),
                "tool": " ".join(str(x) for x in (side.get("tool"), side.get("tool_version")) if x)
                or prov.get("tool", ""),
                "model": side.get("model") or prov.get("model") or "",
                "model sha256": str(model_hash)[:12],
                "config": json.dumps(
                    side.get("config") or prov.get("config") or {}, sort_keys=True
                ),
                "config hash": side.get("config_hash") or prov.get("config_hash") or "",
            }
        )
    return pd.DataFrame(rows)


def _describe(values: pd.Series, unit: str) -> str:
    v = values.dropna()
    if v.empty:
        return "n/a"
    return f"min {v.min():g}, median {v.median():g}, mean {v.mean():.3g}, max {v.max():g} {unit}"


def plot_overview(clips: pd.DataFrame, dataset: str, rate_unit: str, out: Path) -> Path:
    """2 x 2 panels: clips per split and status, transcript words, durations, audio coverage."""
    plt = pyplot()
    audio_unit = (
        "fraction of valid openSMILE frames"
        if rate_unit == "sampled frames"
        else "fraction of valid audio bins"
    )
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    counts = pd.crosstab(clips["split"], clips["status"])
    counts = counts.reindex([s for s in SPLIT_ORDER if s in counts.index])
    counts[["ok"] if "ok" in counts else []].join(
        counts.drop(columns="ok", errors="ignore")
    ).plot.bar(stacked=True, ax=axes[0, 0], rot=0, colormap="tab20", edgecolor="0.3", linewidth=0.4)
    axes[0, 0].set_title("Clips per split and status")
    axes[0, 0].set_ylabel("clips")
    axes[0, 0].legend(fontsize=8, title="status")
    for ax, col, title, xlabel in (
        (axes[0, 1], "words", "Transcript length", "words per transcript"),
        (axes[1, 0], "duration", "Clip duration (readable videos)", "seconds"),
        (axes[1, 1], "audio_rate", "Audio coverage", audio_unit),
    ):
        values = clips[col].where(clips[col] > 0) if col == "duration" else clips[col]
        data = [values[clips["split"] == s].dropna() for s in SPLIT_ORDER]
        labels = [s for s, d in zip(SPLIT_ORDER, data, strict=True) if len(d)]
        data = [d for d in data if len(d)]
        if data:
            bins = (
                np.linspace(0.0, 1.0, 21) if col == "audio_rate" else 20
            )  # fractions: fixed [0, 1]
            ax.hist(data, bins=bins, stacked=True, label=labels, edgecolor="0.3", linewidth=0.4)
            ax.legend(fontsize=8, title="split")
        else:
            ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("clips")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{dataset}: data quality overview ({len(clips)} clips)")
    return save_figure(fig, out)


def plot_faces(clips: pd.DataFrame, dataset: str, rate_unit: str, worst: int, out: Path) -> Path:
    """Histogram of the per-clip face-detection rate and bars of the `worst` clips."""
    plt = pyplot()
    rates = clips.dropna(subset=["face_rate"])
    fig, (ax_h, ax_w) = plt.subplots(1, 2, figsize=(13, 5), constrained_layout=True)
    if rates.empty:
        for ax in (ax_h, ax_w):
            ax.text(
                0.5, 0.5, "no visual features", ha="center", va="center", transform=ax.transAxes
            )
    else:
        ax_h.hist(
            100.0 * rates["face_rate"],
            bins=np.linspace(0, 100, 21),
            color="tab:blue",
            edgecolor="0.3",
        )
        mean = 100.0 * rates["face_rate"].mean()
        ax_h.axvline(mean, color="tab:red", ls="--", label=f"mean {mean:.1f} %")
        ax_h.legend()
        low = rates[rates["face_rate"] < 1.0].nsmallest(worst, "face_rate").iloc[::-1]
        if low.empty:
            ax_w.text(
                0.5,
                0.5,
                "a face in every sampled frame of every clip",
                ha="center",
                va="center",
                transform=ax_w.transAxes,
            )
        else:
            names = low["key"] + " (" + low["split"] + ")"
            bars = ax_w.barh(names, 100.0 * low["face_rate"], color="tab:orange")
            ax_w.bar_label(bars, fmt="%.0f %%", padding=3, fontsize=8)
        ax_w.set_xlim(0, 112)
        ax_h.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_w.tick_params(axis="y", labelsize=8)
    ax_h.set_title("Face-detection rate per clip")
    ax_h.set_xlabel(f"{rate_unit} with a detected face (%)")
    ax_h.set_ylabel("clips")
    ax_w.set_title(f"Clips with the lowest rate (below 100 %, at most {worst})")
    ax_w.set_xlabel(f"{rate_unit} with a detected face (%)")
    for ax in (ax_h, ax_w):
        ax.grid(alpha=0.3)
    fig.suptitle(f"{dataset}: MediaPipe face detection ({len(rates)} clips)")
    return save_figure(fig, out)


def write_quality(
    dataset_dir: str | os.PathLike, out_dir: str | os.PathLike, config: QualityConfig | None = None
) -> QualityOutputs:
    """Write quality.html, quality.png and face_detection.png for the dataset under `dataset_dir`."""
    cfg = config or QualityConfig()
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    dataset = dataset_dir.name
    if (dataset_dir / "manifest.csv").is_file():
        clips, examples = clips_from_features(dataset_dir)
        rate_unit, source = "sampled frames", "manifest.csv and the per-clip feature sidecars"
    else:
        clips, examples = clips_from_aligned(dataset_dir), {}
        rate_unit, source = "alignment bins", "the aligned tensors (imported dataset: no sidecars)"
    if clips.empty:
        raise UserError(f"{dataset_dir}: the dataset has no clips")
    faces = clips.dropna(subset=["face_rate"])
    worst = faces.nsmallest(cfg.worst, "face_rate")[
        ["key", "split", "face_rate", "frames", "status"]
    ]
    worst = worst.assign(
        face_rate=(100.0 * worst["face_rate"]).round(1), frames=worst["frames"].astype("Int64")
    ).rename(columns={"face_rate": f"face rate (% of {rate_unit})", "frames": rate_unit})
    no_audio = clips[clips["status"].str.contains("no_audio")][["key", "split", "status", "reason"]]
    excluded = clips[clips["status"].map(lambda s: bool(set(_flags(s)) & set(EXCLUDED)))]
    n_low = int((faces["face_rate"] < cfg.low_face).sum())
    summary = (
        f"{len(clips)} clips ({', '.join(f'{s} {n}' for s, n in clips['split'].value_counts().items())}), "
        f"{len(excluded)} left out of the tensors (missing, empty or unreadable video). Source: {source}."
    )
    face_note = (
        f"Face-detection rate = share of {rate_unit} where MediaPipe found a face (frames without a face "
        f"are kept as zeros with mask 0). Mean {100.0 * faces['face_rate'].mean():.1f} %; "
        f"{int((faces['face_rate'] == 0).sum())} clip(s) with no face at all; {n_low} below "
        f"{100.0 * cfg.low_face:.0f} %."
        if len(faces)
        else "No visual features found."
    )
    text_note = (
        f"Transcript length: {_describe(clips['words'], 'words')}; model tokens: "
        f"{_describe(clips['tokens'], 'tokens')} ([CLS] and [SEP] included; truncated at text.max_tokens). "
        f"Empty transcripts: {int((clips['words'] == 0).sum())}."
    )
    body = [
        notes_html(summary),
        "<h2>Clips per split and status</h2>",
        frame_to_html(status_table(clips)),
        notes_html(
            "A clip with several flags counts once per flag. 'in tensors' = clips kept for training."
        ),
        "<h2>Feature dimensions and extraction configuration</h2>",
        frame_to_html(feature_table(dataset_dir, examples), text_columns=0),
        f"<h2>Face detection: worst {len(worst)} clips</h2>",
        notes_html(face_note),
        frame_to_html(worst, text_columns=2),
        f"<h2>Clips with no audio ({len(no_audio)})</h2>",
        frame_to_html(no_audio, text_columns=0)
        if len(no_audio)
        else notes_html("None: every clip has an audio stream."),
        f"<h2>Clips left out ({len(excluded)})</h2>",
        frame_to_html(excluded[["key", "split", "status", "reason"]], text_columns=0)
        if len(excluded)
        else notes_html("None."),
        "<h2>Transcripts</h2>",
        notes_html(text_note),
    ]
    out_html = out_dir / "quality.html"
    save_text(out_html, html_page(f"Data quality: {dataset}", body))
    overview = plot_overview(clips, dataset, rate_unit, out_dir / "quality.png")
    face_png = plot_faces(clips, dataset, rate_unit, cfg.worst, out_dir / "face_detection.png")
    return QualityOutputs(out_html, overview, face_png, len(clips))
