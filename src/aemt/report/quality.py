"""HTML report, data-quality page of one dataset: clips, statuses, face detection, audio, transcripts, features.

Sources, named explicitly (`QualitySources`; the per-clip facts come from :mod:`aemt.report.clip_stats`):

- raw-video datasets: `manifest.csv` (split, status flags, reason, duration, text) and the per-clip feature
  sidecars it names (status, per-frame `mask`, `shape`, `tool`, `tool_version`, `model`, `model_hash`,
  `config`, `config_hash`). The face-detection rate of a clip is the fraction of its sampled frames with a
  face (visual mask); audio coverage is the fraction of valid openSMILE frames; transcript length is
  counted in words (manifest text) and in model tokens (text sidecar).
- datasets imported from MMSA pickles (no manifest, no sidecars): `aligned/<split>/meta.csv` and the masks;
  the rates are then fractions of valid alignment bins.
- always: `aligned/<split>/info.json` (feature dims, lengths, models, counts).
- raw-video datasets: `transcripts.csv` of the asr stage (transcript source, match rate): how many
  transcripts came from speech and how well label transcripts matched the recognised words.
- visual sidecars with a `speaker` record: faces per clip, how the speaker was chosen, synchrony scores and
  the uncertain choices (:mod:`aemt.report.speakers`).

Writes `quality.html` (tables), `quality.png` (clips per split and status, transcript lengths, durations,
audio coverage) and `face_detection.png` (histogram of the per-clip face-detection rate and the worst clips).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from aemt.constants import ALL_SPLITS, OK
from aemt.errors import UserError
from aemt.io import save_text
from aemt.report.clip_stats import (
    add_transcripts,
    clips_from_aligned,
    clips_from_features,
    excluded,
    feature_table,
    status_table,
)
from aemt.report.html import frame_to_html, html_page, notes_html, pyplot, save_figure
from aemt.report.speakers import speaker_section


@dataclass(frozen=True)
class QualityConfig:
    worst: int = 15  # clips listed / drawn as the worst face-detection rates
    low_face: float = 0.5  # a clip below this face-detection rate is counted as "low"


@dataclass(frozen=True)
class QualitySources:
    """What the page reads: the manifest and the feature folder (raw-video datasets; None for MMSA
    imports) and the aligned split folders (`results/<ds>/aligned/<split>/`)."""

    manifest: Path | None
    features_dir: Path | None
    aligned: Sequence[Path] = field(default_factory=list)
    transcripts: Path | None = None  # results/<ds>/transcripts.csv (raw-video datasets)


@dataclass(frozen=True)
class QualityOutputs:
    html: Path
    overview_png: Path
    face_png: Path
    n_clips: int


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
    counts = counts.reindex([s for s in ALL_SPLITS if s in counts.index])
    counts[[OK] if OK in counts else []].join(counts.drop(columns=OK, errors="ignore")).plot.bar(
        stacked=True, ax=axes[0, 0], rot=0, colormap="tab20", edgecolor="0.3", linewidth=0.4
    )
    axes[0, 0].set_title("Clips per split and status")
    axes[0, 0].set_ylabel("clips")
    axes[0, 0].legend(fontsize=8, title="status")
    for ax, col, title, xlabel in (
        (axes[0, 1], "words", "Transcript length", "words per transcript"),
        (axes[1, 0], "duration", "Clip duration (readable videos)", "seconds"),
        (axes[1, 1], "audio_rate", "Audio coverage", audio_unit),
    ):
        values = clips[col].where(clips[col] > 0) if col == "duration" else clips[col]
        data = [values[clips["split"] == s].dropna() for s in ALL_SPLITS]
        labels = [s for s, d in zip(ALL_SPLITS, data, strict=True) if len(d)]
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
    sources: QualitySources,
    out_dir: str | os.PathLike,
    dataset: str,
    config: QualityConfig | None = None,
) -> QualityOutputs:
    """Write quality.html, quality.png and face_detection.png of one dataset into `out_dir`."""
    cfg = config or QualityConfig()
    out_dir = Path(out_dir)
    if sources.manifest is not None:
        clips, examples = clips_from_features(sources.manifest, sources.features_dir)
        rate_unit, source = "sampled frames", "manifest.csv and the per-clip feature sidecars"
    else:
        clips, examples = clips_from_aligned(sources.aligned), {}
        rate_unit, source = "alignment bins", "the aligned tensors (imported dataset: no sidecars)"
    if clips.empty:
        raise UserError(f"dataset {dataset!r} has no clips")
    if sources.transcripts is not None:
        clips = add_transcripts(clips, sources.transcripts)
    faces = clips.dropna(subset=["face_rate"])
    worst = faces.nsmallest(cfg.worst, "face_rate")[
        ["key", "split", "face_rate", "frames", "status"]
    ]
    worst = worst.assign(
        face_rate=(100.0 * worst["face_rate"]).round(1), frames=worst["frames"].astype("Int64")
    ).rename(columns={"face_rate": f"face rate (% of {rate_unit})", "frames": rate_unit})
    no_audio = clips[clips["status"].str.contains("no_audio")][["key", "split", "status", "reason"]]
    left_out = clips[excluded(clips)]
    n_low = int((faces["face_rate"] < cfg.low_face).sum())
    summary = (
        f"{len(clips)} clips ({', '.join(f'{s} {n}' for s, n in clips['split'].value_counts().items())}), "
        f"{len(left_out)} left out of the tensors (missing, empty or unreadable video). Source: {source}."
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
        frame_to_html(feature_table(sources.aligned, examples), text_columns=0),
        f"<h2>Face detection: worst {len(worst)} clips</h2>",
        notes_html(face_note),
        frame_to_html(worst, text_columns=2),
        *speaker_section(clips, cfg.worst),
        f"<h2>Clips with no audio ({len(no_audio)})</h2>",
        frame_to_html(no_audio, text_columns=0)
        if len(no_audio)
        else notes_html("None: every clip has an audio stream."),
        f"<h2>Clips left out ({len(left_out)})</h2>",
        frame_to_html(left_out[["key", "split", "status", "reason"]], text_columns=0)
        if len(left_out)
        else notes_html("None."),
        "<h2>Transcripts</h2>",
        notes_html(text_note),
        *(transcript_section(clips, cfg.worst) if "source" in clips else []),
    ]
    out_html = out_dir / "quality.html"
    save_text(out_html, html_page(f"Data quality: {dataset}", body))
    overview = plot_overview(clips, dataset, rate_unit, out_dir / "quality.png")
    face_png = plot_faces(clips, dataset, rate_unit, cfg.worst, out_dir / "face_detection.png")
    return QualityOutputs(out_html, overview, face_png, len(clips))


def transcript_section(clips: pd.DataFrame, worst: int) -> list[str]:
    """HTML of the "Transcripts from speech" section (clips with `add_transcripts`' columns)."""
    readable = clips[~excluded(clips)]
    counts = pd.crosstab(readable["split"], readable["source"]).reindex(
        [s for s in ALL_SPLITS if s in set(readable["split"])]
    )
    counts.columns.name = None
    label = readable[readable["source"] == "label"]
    heard = label[label["asr_words"] > 0]  # words were recognised: label words matched onto them
    rates = heard["match_rate"].dropna()
    n_asr = int((readable["source"] == "asr").sum())
    n_none = int(label["asr_words"].isna().sum())
    note = (
        f"{n_asr} of {len(readable)} transcripts came from speech recognition (source asr); the "
        f"others are the label text. Label transcripts matched onto recognised words (word "
        f"timings): {len(heard)} clip(s), match rate {_describe(rates, '(matched / label words)')}. "
        f"{len(label) - len(heard) - n_none} label transcript(s) where nothing was recognised and "
        f"{n_none} without recognition (asr: never, or no audio stream) have their words spread "
        "over the clip (match rate 0)."
    )
    low = heard.nsmallest(worst, "match_rate")[["key", "split", "match_rate", "words", "status"]]
    return [
        "<h2>Transcripts from speech</h2>",
        notes_html(note),
        frame_to_html(counts.reset_index().rename(columns={"split": "split \\ source"})),
        f"<h3>Lowest match rates ({len(low)})</h3>",
        frame_to_html(low, text_columns=2) if len(low) else notes_html("No recognised clip."),
    ]
