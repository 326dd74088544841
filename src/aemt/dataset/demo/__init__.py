"""The embedded demo dataset: small generated talking-head clips in the CH-SIMS / MMSA layout
(what each clip shows and says: `plan`, `video`, `audio`).

`generate(out)` writes `label.csv`, `unlabeled.csv`, `Raw/<video_id>/<clip_id>.mp4` (H.264 + AAC) and a
`README.txt`, offline and in seconds. Each clip shows a real face photo (NASA's astronaut portrait from
scikit-image, the US Navy portrait of Grace Hopper from matplotlib's sample data) moving on a plain
background, with a synthetic speech-like voice and an English transcript built from word lists.

The sentiment signal is planted in all three modalities from unimodal scores on the CH-SIMS v2 grid:
text polarity picks the sentiment words, audio polarity sets pitch level, pitch liveliness and loudness,
visual polarity sets head roll, nodding amplitude, face scale and a mouth-corner (smile / frown) warp.
The multimodal label is a weighted mean of the three plus small noise; on a share of clips one
modality disagrees with the others.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.constants import LABEL_COLUMNS
from aemt.dataset.demo.audio import synth_audio
from aemt.dataset.demo.plan import P_DISAGREE, WEIGHTS, DemoConfig, plan_clips
from aemt.dataset.demo.video import render_video
from aemt.errors import UserError
from aemt.io import atomic_path, load_json, save_csv, save_json, save_text

MARKER = ".aemt_demo.json"  # marks a folder written by this generator (safe to overwrite)


def video_codec() -> str:
    """libx264 when PyAV's FFmpeg has it, else mpeg4."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def write_clip(
    path: Path, frames: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int
) -> None:
    """Atomically write frames [T, H, W, 3] uint8 and mono audio [N] float32 as an MP4 (H.264 + AAC)."""
    import av

    codec = video_codec()
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as container:
        video = container.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if codec == "libx264":  # one thread: deterministic output, fair on a shared machine
            video.options = {"preset": "superfast", "crf": "20", "threads": "1"}
        else:
            video.bit_rate = 1_000_000
        sound = container.add_stream("aac", rate=sample_rate, layout="mono")
        sound.bit_rate = 64_000
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        chunk = av.AudioFrame.from_ndarray(audio[None, :], format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = sample_rate, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))


def _prepare_out(out: Path, force: bool, files: list[str]) -> None:
    """Refuse a non-empty folder that is not a demo dataset; clear a previous demo's files.

    The marker is written before any clip (status "incomplete") and rewritten at the end ("complete"),
    so an interrupted generation can be rerun into the same folder.
    """
    if out.exists() and not out.is_dir():
        raise UserError(f"demo-data: {out} exists and is not a folder; choose another OUT")
    marker = out / MARKER
    if marker.is_file():
        for name in load_json(marker).get("files", []):
            (out / name).unlink(missing_ok=True)
        raw = out / "Raw"
        for folder in sorted(raw.iterdir()) if raw.is_dir() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    elif out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"demo-data: {out} is not empty and holds no demo dataset ({MARKER} missing); "
            "choose an empty or new folder, or pass --force to write into it anyway"
        )
    out.mkdir(parents=True, exist_ok=True)
    save_json(marker, {"generator": "aemt demo-data", "status": "incomplete", "files": files})


README = """aemt demo dataset (written by `aemt demo-data`, aemt {version}; settings {settings})

SYNTHETIC clips in the CH-SIMS / MMSA layout for trying the pipeline offline; results on it say nothing
about real sentiment analysis. label.csv: {n_labelled} clips ({n_train} train / {n_valid} valid /
{n_test} test); unlabeled.csv: {n_unlabeled} clips for pretraining only; Raw/<video_id>/<clip_id>.mp4:
{size}x{size} at {fps} fps, {codec} + AAC {sample_rate} Hz mono, {seconds} s each.

Video: one of two real public-domain portraits (NASA astronaut Eileen Collins from scikit-image, the
US Navy portrait of Grace Hopper from matplotlib's sample data) in an oval on a plain background,
swaying, nodding, drifting and breathing (in-plane rotation, vertical oscillation, translation,
scale). Audio: synthetic voice, glottal pulses at a moving F0 through crossfading vowel formants,
syllables at 3-5 Hz with pauses. Text: English sentences from sentiment word lists and fillers.

Labels (multiples of 0.2 in [-1, 1]): label_T, label_A, label_V share a clip sentiment plus noise; on
about {p_disagree:.0%} of clips one of them is redrawn with the opposite polarity. label =
clip({weights[0]} label_T + {weights[1]} label_A + {weights[2]} label_V + N(0, 0.04)) rounded to 0.2;
annotation = Negative / Neutral / Positive from its sign. Planted signal per modality:
- text: sentiment words and intensifiers follow label_T ("somewhat decent" .. "absolutely amazing");
- audio: F0 + 4 semitones x label_A, pitch accents (1 + 1.5 label_A) semitones, loudness +6 dB x label_A,
  speaking rate (3.9 + 0.6 label_A) syllables/s;
- visual: head roll 12 deg x label_V, nodding amplitude, face scale (1 + 0.1 label_V), and a smile
  (positive) or frown (negative) warp of the mouth corners.
The same settings and seed give byte-identical files.
"""


def generate(
    out: Path,
    n_train: int = 36,
    n_valid: int = 12,
    n_test: int = 12,
    n_unlabeled: int = 30,
    seconds: float = 3.0,
    fps: int = 15,
    seed: int = 0,
    force: bool = False,
) -> pd.DataFrame:
    """Write the demo dataset into `out`; return the labelled rows (the contents of label.csv)."""
    from tqdm import tqdm

    from aemt import __version__

    out = Path(out)
    cfg = DemoConfig(n_train, n_valid, n_test, n_unlabeled, float(seconds), int(fps), int(seed))
    cfg.validate()
    plans = plan_clips(cfg)
    files = [f"Raw/{p.video_id}/{p.clip_id}.mp4" for p in plans]
    files += ["label.csv", "unlabeled.csv", "README.txt"]
    _prepare_out(out, force, files)
    for plan in tqdm(plans, desc="demo clips", unit="clip", file=sys.stderr):
        path = out / "Raw" / plan.video_id / f"{plan.clip_id}.mp4"
        write_clip(path, render_video(plan, cfg), synth_audio(plan, cfg), cfg.fps, cfg.sample_rate)
    rows = pd.DataFrame([asdict(p) for p in plans])
    rows["annotation"] = np.select(
        [rows["label"] < 0, rows["label"] > 0], ["Negative", "Positive"], "Neutral"
    )
    labelled = rows[rows["mode"] != ""][list(LABEL_COLUMNS)].reset_index(drop=True)
    settings = asdict(cfg)
    facts = {"version": __version__, "n_labelled": len(labelled), "codec": video_codec()}
    facts |= {"p_disagree": P_DISAGREE, "weights": WEIGHTS, "settings": json.dumps(settings)}
    save_text(out / "README.txt", README.format(**facts, **settings))
    save_csv(out / "unlabeled.csv", rows[rows["mode"] == ""][["video_id", "clip_id", "text"]])
    save_csv(out / "label.csv", labelled)  # after the videos: a label.csv means a complete set
    marker = {"generator": "aemt demo-data", "status": "complete", "aemt_version": __version__}
    save_json(out / MARKER, marker | {"config": settings, "files": files})
    return labelled
