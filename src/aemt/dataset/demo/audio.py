"""Sound of the demo clips: `synth_audio` is voiced speech-like sound (glottal pulses through vowel
formant filters) whose pitch, liveliness and loudness follow the clip's acoustic score."""

from __future__ import annotations

import numpy as np

from aemt.dataset.demo.plan import ClipPlan, DemoConfig

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
