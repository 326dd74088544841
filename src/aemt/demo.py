"""The embedded demo dataset: small generated talking-head clips in the CH-SIMS / MMSA layout.

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
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from aemt.errors import UserError
from aemt.io import atomic_path, load_json, save_csv, save_json, save_text

MARKER = ".aemt_demo.json"  # marks a folder written by this generator (safe to overwrite)
LABEL_COLUMNS = ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V"]
LABEL_COLUMNS += ["annotation", "mode"]
WEIGHTS = (0.4, 0.3, 0.3)  # multimodal label = clip(0.4 T + 0.3 A + 0.3 V + noise), on the 0.2 grid
P_DISAGREE = 0.35  # share of clips on which one modality contradicts the others
GRID = np.round(np.arange(-5, 6) * 0.2, 1)  # CH-SIMS v2 label grid, multiples of 0.2 in [-1, 1]


@dataclass(frozen=True)
class DemoConfig:
    """What to generate; `generate()` fills it from its arguments."""

    n_train: int = 36
    n_valid: int = 12
    n_test: int = 12
    n_unlabeled: int = 30
    seconds: float = 3.0
    fps: int = 15
    seed: int = 0
    size: int = 256  # square frame side in pixels
    sample_rate: int = 16000  # Hz, mono
    clips_per_video: int = 3

    def validate(self) -> None:
        counts = (self.n_train, self.n_valid, self.n_test, self.n_unlabeled)
        if min(counts) < 0 or self.n_train < 1:
            raise UserError(f"demo-data: clip counts must be >= 0 with --train >= 1, got {counts}")
        if not 1.0 <= self.seconds <= 30.0:
            raise UserError(f"demo-data: --seconds must be in [1, 30], got {self.seconds}")
        if not 5 <= self.fps <= 60:
            raise UserError(f"demo-data: --fps must be in [5, 60], got {self.fps}")


@dataclass(frozen=True)
class ClipPlan:
    """One clip: identifiers, transcript, unimodal and multimodal scores, per-video looks and voice."""

    video_id: str
    clip_id: str
    mode: str  # train / valid / test, or "" for unlabeled clips
    text: str
    label: float
    label_T: float
    label_A: float
    label_V: float
    face: int  # index into FACES
    background: tuple[int, int, int]  # RGB
    f0_base: float  # Hz, the speaker's neutral pitch
    seed: int  # seeds the clip's own random stream


# ---------------------------------------------------------------------------------------------- labels


def _snap(x: float) -> float:
    """Clip to [-1, 1] and round to the 0.2 grid (no negative zero)."""
    return float(np.round(np.round(np.clip(x, -1.0, 1.0) / 0.2) * 0.2, 1)) + 0.0


def _draw_scores(rng: np.random.Generator) -> tuple[float, float, float, float]:
    """(label_T, label_A, label_V, label): a shared sentiment, per-modality noise, sometimes a dissenter."""
    base = float(rng.choice(GRID))
    uni = [_snap(base + rng.normal(0.0, 0.15)) for _ in range(3)]
    if rng.random() < P_DISAGREE:
        sign = -np.sign(base) if base != 0 else rng.choice([-1.0, 1.0])
        uni[rng.integers(3)] = _snap(sign * rng.choice([0.4, 0.6, 0.8, 1.0]))
    label = _snap(float(np.dot(WEIGHTS, uni)) + rng.normal(0.0, 0.04))
    return uni[0], uni[1], uni[2], label


ADJECTIVES = {  # (polarity sign, strong?) -> words
    (1, False): "nice decent pleasant good fine".split(),
    (1, True): "great excellent wonderful amazing fantastic brilliant".split(),
    (-1, False): "mediocre dull tiring bad disappointing".split(),
    (-1, True): "terrible awful horrible dreadful".split(),
    (0, False): "okay ordinary average normal standard typical".split(),
}
INTENSIFIERS = {1: "somewhat|kind of|fairly", 2: "quite|pretty|rather", 3: "", 4: "really|very"}
INTENSIFIERS[5] = "absolutely|extremely|incredibly"
TOPICS = "the movie|the food|the hotel|this phone|the service|the show|the trip|the book".split("|")
TOPICS += ["the concert", "the new car", "the meeting", "the game"]
FILLERS = ["um", "well", "you know", "so", "i mean", "actually", "like", "uh"]
TEMPLATES = "{f} i think {t} was {a}|{f} {t} was {a}|honestly {t} is {a}|{t} was {a} i guess"
CLOSERS = {
    1: ["i loved every minute", "i would recommend it", "it made me happy", "i want to go again"],
    -1: ["i hated it", "i would not recommend it", "it made me angry", "what a waste of time"],
    0: ["i went there last week", "we talked about it later", "that is all i remember"],
}


def make_text(polarity: float, rng: np.random.Generator) -> str:
    """An English transcript whose sentiment words follow `polarity` (a score on the 0.2 grid)."""
    strength, sign = int(round(abs(polarity) * 5)), int(np.sign(polarity))
    words = ADJECTIVES[(sign, strength >= 3)]
    adjective = str(rng.choice(words))
    if INTENSIFIERS.get(strength):
        adjective = f"{rng.choice(INTENSIFIERS[strength].split('|'))} {adjective}"
    template, topic = str(rng.choice(TEMPLATES.split("|"))), str(rng.choice(TOPICS))
    parts = [template.format(f=rng.choice(FILLERS), t=topic, a=adjective)]
    if strength >= 3:  # strong polarity: a second sentiment phrase
        parts.append(str(rng.choice(CLOSERS[sign])))
    elif rng.random() < 0.5:
        parts.append(str(rng.choice(CLOSERS[0])))
    text = ". ".join(p.capitalize() for p in parts) + "."
    return text.replace(" i ", " I ")


def plan_clips(cfg: DemoConfig) -> list[ClipPlan]:
    """Deterministic plan of every clip: labelled (train, valid, test) first, then unlabeled."""
    rng = np.random.default_rng(cfg.seed)
    groups = [("train", cfg.n_train), ("valid", cfg.n_valid), ("test", cfg.n_test)]
    groups.append(("", cfg.n_unlabeled))
    plans: list[ClipPlan] = []
    video = 0
    for mode, count in groups:
        for start in range(0, count, cfg.clips_per_video):  # videos never span two splits
            face = int(rng.integers(len(FACES)))
            background = tuple(int(c) for c in rng.integers(60, 200, size=3))
            f0_base = float(rng.uniform(185.0, 215.0))
            for j in range(min(cfg.clips_per_video, count - start)):
                t, a, v, m = _draw_scores(rng)
                text = make_text(t, rng)
                seed = int(rng.integers(2**31))
                ids, look = (f"demo_{video:03d}", f"{j + 1:04d}"), (face, background, f0_base)
                plans.append(ClipPlan(*ids, mode, text, m, t, a, v, *look, seed))
            video += 1
    return plans


# ---------------------------------------------------------------------------------------------- video


@dataclass(frozen=True)
class FaceSource:
    """A bundled face photo; centre, width and mouth corners measured with MediaPipe landmarks."""

    name: str
    centre: tuple[float, float]  # (x, y) photo pixels, mean of the 478 landmarks
    width: float  # landmark extent in x, photo pixels
    corners: tuple[tuple[float, float], tuple[float, float]]  # mouth corners (landmarks 61, 291)


FACES = (
    FaceSource("astronaut", (224.0, 123.0), 90.0, ((202.0, 139.0), (244.0, 140.0))),
    FaceSource("grace_hopper", (266.0, 233.0), 185.0, ((234.0, 279.0), (302.0, 277.0))),
)


@lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    """The RGB uint8 photo [H, W, 3], loaded from an installed package (no download)."""
    if name == "astronaut":
        import skimage.data

        return skimage.data.astronaut()
    import matplotlib.cbook
    import matplotlib.image

    return matplotlib.image.imread(
        matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    )


@lru_cache(maxsize=32)
def _face_layer(face: int, size: int, smile: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB [S, S, 3] and alpha [S, S, 1] (float32) of a face centred in an S x S frame.

    `smile` (pixels) moves the mouth corners up (> 0, smile) or down (< 0, frown) with a local warp.
    """
    import cv2  # opencv-contrib-python, a dependency of mediapipe

    src = FACES[face]
    k = 0.375 * size / src.width  # the face spans ~37% of the frame width
    cx, cy = size / 2 - k * src.centre[0], size / 2 - k * src.centre[1]
    photo = np.ascontiguousarray(_photo(src.name))
    to_frame = np.float32([[k, 0, cx], [0, k, cy]])
    rgb = cv2.warpAffine(photo, to_frame, (size, size), None, cv2.INTER_AREA, cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [S, S] each
    map_x, map_y = xx.copy(), yy.copy()
    for (x, y), side in zip(src.corners, (-1.0, 1.0), strict=True):
        bump = np.exp(
            -((xx - cx - k * x) ** 2 + (yy - cy - k * y) ** 2) / (2 * (0.027 * size) ** 2)
        )
        map_x -= 0.4 * smile * side * bump  # corners move outwards when smiling
        map_y += smile * bump  # sampling from below moves the content up
    rgb = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ellipse = np.hypot((xx - size / 2) / (0.36 * size), (yy - 0.46 * size) / (0.46 * size))
    alpha = np.clip((1.0 - ellipse) / 0.08, 0.0, 1.0)[..., None]  # soft oval cameo edge
    return rgb.astype(np.float32), alpha.astype(np.float32)


def render_video(plan: ClipPlan, cfg: DemoConfig) -> np.ndarray:
    """Frames [T, S, S, 3] uint8: the face on a plain background sways, nods, drifts and breathes.

    Visual polarity v = label_V sets the mean head roll (12 deg * v), the nodding amplitude, the face
    scale (1 + 0.1 v) and the smile warp; the rest of the motion is random per clip.
    """
    import cv2

    s, v = cfg.size, plan.label_V
    rng = np.random.default_rng([plan.seed, 1])
    rgb, alpha = _face_layer(plan.face, s, round(0.03 * s * v, 1))
    colour = np.float32(plan.background)
    card = np.round(rgb * alpha + colour * (1 - alpha)).astype(np.uint8)  # [S, S, 3]
    n = int(round(cfg.seconds * cfg.fps))
    t = np.arange(n) / cfg.fps  # [T] seconds

    def wave(lo_hz: float, hi_hz: float) -> np.ndarray:  # [T] random-frequency, random-phase sine
        return np.sin(2 * np.pi * (rng.uniform(lo_hz, hi_hz) * t + rng.uniform()))

    roll = 12.0 * v + rng.normal(0, 1.0) + 3.0 * wave(0.3, 0.6)  # degrees
    nod = (0.01 + 0.03 * (v + 1.0)) * s * wave(1.6, 2.4)  # pixels
    drift = 0.04 * s * wave(0.15, 0.35)  # pixels
    scale = (1.0 + 0.1 * v) * (1.0 + 0.03 * wave(0.2, 0.5))
    offset = rng.normal(0, 0.02 * s, size=2)
    frames = np.empty((n, s, s, 3), np.uint8)
    for i in range(n):
        m = cv2.getRotationMatrix2D((s / 2, s / 2), float(roll[i]), float(scale[i]))
        m[:, 2] += (offset[0] + drift[i], offset[1] + nod[i])
        border = (cv2.BORDER_CONSTANT, plan.background)  # the plain background fills the corners
        frames[i] = cv2.warpAffine(card, m, (s, s), None, cv2.INTER_LINEAR, *border)
    return frames


# ---------------------------------------------------------------------------------------------- audio

_FORMANTS = "730 1090 2440|530 1840 2480|270 2290 3010|570 840 2410|300 870 2240|660 1720 2410"
VOWELS = np.array([v.split() for v in _FORMANTS.split("|")], np.float64)  # [6, 3] F1-F3, Hz
BANDWIDTHS = (90.0, 110.0, 170.0)  # Hz


def _vowel_filter(formants: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cascade of three two-pole resonators (unit gain at DC) as second-order sections [3, 6]."""
    sos = []
    for f, bw in zip(formants, BANDWIDTHS, strict=True):
        r, theta = np.exp(-np.pi * bw / sample_rate), 2 * np.pi * f / sample_rate
        den = [1.0, -2 * r * np.cos(theta), r * r]
        sos.append([sum(den), 0.0, 0.0, *den])
    return np.array(sos)


def synth_audio(plan: ClipPlan, cfg: DemoConfig) -> np.ndarray:
    """Speech-like mono audio [N] float32 in [-1, 1] at `cfg.sample_rate`.

    Rosenberg glottal pulses at a moving F0, syllable envelopes at 3-5 Hz with pauses, vowel formants
    crossfading between syllables, breath noise. Audio polarity a = label_A: F0 shifted by 4 semitones
    * a, pitch accents of (1 + 1.5 a) semitones (lively vs flat), loudness 6 dB * a, speaking rate.
    """
    from scipy.ndimage import gaussian_filter1d
    from scipy.signal import sosfilt

    a, sr, control = plan.label_A, cfg.sample_rate, 200  # control contours at 200 Hz
    rng = np.random.default_rng([plan.seed, 2])
    n, m = int(round(cfg.seconds * sr)), int(round(cfg.seconds * control)) + 1
    tc = np.arange(m) / control  # [M] seconds
    rate = 3.9 + 0.6 * a + rng.uniform(-0.3, 0.3)  # syllables per second
    durations = rng.uniform(0.8, 1.2, int(cfg.seconds * rate) + 2) / rate
    onsets = rng.uniform(0.05, 0.2) + np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    envelope, accents = np.zeros(m), np.zeros(m)  # [M]
    weights = np.zeros((len(VOWELS), m))  # [V, M] which vowel is sounding
    for onset, dur in zip(onsets, durations, strict=True):
        inside = (tc >= onset) & (tc < onset + 0.85 * dur)
        if rng.random() < 0.15 or not inside.any():
            continue  # a pause between words
        envelope[inside] = np.sin(np.pi * (tc[inside] - onset) / (0.85 * dur)) ** 0.7
        accents[inside] = max(0.1, 1.0 + 1.5 * a) * rng.uniform(-1, 1)
        weights[rng.integers(len(VOWELS)), inside] = 1.0
    accents = gaussian_filter1d(accents, 0.04 * control)
    weights = gaussian_filter1d(weights, 0.03 * control, axis=1)
    t = np.arange(n) / sr  # [N] seconds
    semitones = np.interp(t, tc, accents) + 4.0 * a - 0.8 * t / cfg.seconds  # with declination
    f0 = plan.f0_base * 2 ** (semitones / 12) * (1 + 0.003 * rng.standard_normal(n))  # [N] Hz
    cycle = np.cumsum(f0) / sr % 1.0  # glottal cycle position in [0, 1)
    pulse = np.where(
        cycle < 0.4,
        0.5 * (1 - np.cos(np.pi * cycle / 0.4)),
        np.where(cycle < 0.6, np.cos(np.pi * (cycle - 0.4) / 0.4), 0.0),
    )
    source = np.diff(pulse, prepend=0.0)  # lip radiation
    source += 0.05 * np.abs(source).max() * rng.standard_normal(n)  # aspiration
    voice = sum(
        np.interp(t, tc, weights[k]) * sosfilt(_vowel_filter(VOWELS[k], sr), source)
        for k in range(len(VOWELS))
    )
    voice = voice * np.interp(t, tc, envelope)
    voice *= 0.07 * 10 ** (6.0 * a / 20) / (np.sqrt(np.mean(voice**2)) + 1e-9)  # RMS 0.07 at a = 0
    voice += 0.002 * rng.standard_normal(n)  # room noise
    return np.clip(voice, -1.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------- files


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
    labelled = rows[rows["mode"] != ""][LABEL_COLUMNS].reset_index(drop=True)
    settings = asdict(cfg)
    facts = {"version": __version__, "n_labelled": len(labelled), "codec": video_codec()}
    facts |= {"p_disagree": P_DISAGREE, "weights": WEIGHTS, "settings": json.dumps(settings)}
    save_text(out / "README.txt", README.format(**facts, **settings))
    save_csv(out / "unlabeled.csv", rows[rows["mode"] == ""][["video_id", "clip_id", "text"]])
    save_csv(out / "label.csv", labelled)  # after the videos: a label.csv means a complete set
    marker = {"generator": "aemt demo-data", "status": "complete", "aemt_version": __version__}
    save_json(out / MARKER, marker | {"config": settings, "files": files})
    return labelled
