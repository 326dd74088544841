"""Pictures and sound of the embedded demo clips (:mod:`aemt.demo` plans them and writes the files).

`render_video` moves a real face photo (scikit-image's astronaut, matplotlib's Grace Hopper: no download)
over a plain background (roll, nod, scale) and warps its mouth corners by the clip's visual score;
`synth_audio` is voiced speech-like sound (glottal pulses through vowel formant filters) whose pitch and
loudness follow the clip's acoustic score.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from aemt.demo import ClipPlan, DemoConfig


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
