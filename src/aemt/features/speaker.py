"""Which face is speaking: audio-visual synchrony, with a size / centre / persistence fallback.

Inputs are per track (K faces) and per analysed frame (n): whether the face is present, its mouth
opening (inner-lip gap over eye-corner distance) and its box. The audio track gives a speech-energy
envelope (RMS in dB over 40 ms windows, every 10 ms, smoothed over 50 ms).

- Synchrony of a track: the Pearson correlation of its mouth opening with the envelope at the same
  instants shifted by a lag, maximised over lags of -0.2 ... +0.2 s in 40 ms steps (`sync_scores`);
  the lag absorbs audio/video offsets and the mouth opening ahead of the sound.
- Choice over time: the same correlation in a window of +-1 s around each frame, at the track's lag
  (`local_scores`). A Viterbi path over the tracks maximises the time-weighted sum of a gain minus
  `SWITCH_COST` per change of speaker: a visible track's gain is its local score minus the best visible
  track's (0 for the best), an absent track's is `-ABSENT_COST`. So the choice changes within a clip
  only when another face follows the sound clearly better for a while, and the path keeps following a
  speaker who leaves the picture briefly (those frames are masked) rather than jump to a listener.
- Fallback (no audio stream, no speech, best synchrony below `MIN_SYNC`, or `speaker: largest`): the
  most prominent track for the whole clip, prominence = share of frames present x mean box size
  (square root of the area share) x (0.5 + 0.5 x centrality).
- Confidence (0-1): sync: the mean margin of the followed track's local score over the best other
  visible track's, divided by `FULL_MARGIN` (without a rival on screen: the followed score itself);
  largest: (best - second prominence) / best; a single face: 1.

Frames where the chosen face is not visible stay without a face (the caller masks them).
`speaker_record` turns a choice into the visual sidecar's `speaker` entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

LAGS = np.round(np.arange(-0.2, 0.2001, 0.04), 3)  # seconds, audio later than mouth when > 0
WINDOW = 1.0  # half width (s) of the window of the local scores
SWITCH_COST = 0.3  # correlation x seconds that a change of speaker must gain
ABSENT_COST = 0.15  # per second of following a face that is not in the picture
MIN_SYNC = 0.1  # below this best synchrony, the choice falls back to prominence
MIN_FRAMES = 5  # frames a correlation needs
FULL_MARGIN = 0.3  # correlation margin that counts as full confidence
SPEECH_LEVEL = -50.0  # dBFS: the loud part of the envelope (95th percentile) must exceed this
SPEECH_RANGE = 6.0  # dB between the 95th and 10th percentiles: speech comes and goes
MODES = ("sync", "largest")


@dataclass
class SpeakerChoice:
    """The followed track per frame (-1: none) and how it was chosen."""

    path: np.ndarray  # [n] int, index into the tracks, -1 where no track is followed
    method: str  # none | single | sync | largest
    reason: str  # why the method was used when it is a fallback ("" otherwise)
    confidence: float
    sync: list[float | None] = field(default_factory=list)  # [K] best correlation per track
    lag: list[float | None] = field(default_factory=list)  # [K] its lag (s)
    prominence: list[float] = field(default_factory=list)  # [K]


def envelope(samples: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(times [m] s, energy [m] dB) of mono samples [N]: RMS of 40 ms windows every 10 ms."""
    hop = max(1, sample_rate // 100)
    count = max(1, len(samples) // hop)
    padded = np.zeros((count + 3) * hop, dtype=np.float64)
    padded[: len(samples)] = samples
    power = (padded.reshape(-1, hop) ** 2).mean(axis=1)  # [count + 3] per 10 ms
    window = np.convolve(power, np.ones(4) / 4, mode="valid")[:count]  # 40 ms
    energy = 10 * np.log10(window + 1e-10)
    energy = np.convolve(energy, np.ones(5) / 5, mode="same")  # 50 ms smoothing
    times = (np.arange(count) * hop + 2 * hop) / sample_rate  # window centres
    return times, energy


def has_speech(energy: np.ndarray) -> bool:
    if energy.size < 10:
        return False
    loud, quiet = np.percentile(energy, [95, 10])
    return bool(loud > SPEECH_LEVEL and loud - quiet >= SPEECH_RANGE)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 1e-12 else 0.0


def _corr(mouth: np.ndarray, times: np.ndarray, lag: float, env: tuple[np.ndarray, np.ndarray]):
    if mouth.size < MIN_FRAMES or mouth.std() < 1e-3:
        return 0.0  # too short, or a mouth that does not move
    return _pearson(mouth, np.interp(times + lag, *env))


def sync_scores(
    times: np.ndarray, present: np.ndarray, mouth: np.ndarray, env: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Best correlation [K] and its lag [K] (s) of each track's mouth opening with the envelope.

    times [n] s, present [K, n] bool, mouth [K, n] (ignored where not present).
    """
    scores, lags = np.zeros(len(present)), np.zeros(len(present))
    for k in range(len(present)):
        idx = np.flatnonzero(present[k])
        values = [_corr(mouth[k, idx], times[idx], lag, env) for lag in LAGS]
        best = int(np.argmax(values))
        scores[k], lags[k] = values[best], LAGS[best]
    return scores, lags


def local_scores(
    times: np.ndarray,
    present: np.ndarray,
    mouth: np.ndarray,
    lags: np.ndarray,
    env: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """[K, n] correlation in a window of +-WINDOW s around each frame (0 where not present)."""
    out = np.zeros(present.shape)
    for k in range(len(present)):
        for i in np.flatnonzero(present[k]):
            idx = np.flatnonzero(present[k] & (np.abs(times - times[i]) <= WINDOW))
            out[k, i] = _corr(mouth[k, idx], times[idx], float(lags[k]), env)
    return out


def viterbi(gain: np.ndarray, switch_cost: float) -> np.ndarray:
    """[n] state path maximising sum(gain[state_i, i]) - switch_cost * changes; gain [K, n]."""
    states, n = gain.shape
    total = gain[:, 0].copy()
    back = np.zeros((states, n), dtype=np.int64)
    for i in range(1, n):
        stay = total
        best = int(np.argmax(total))
        move = total[best] - switch_cost
        back[:, i] = np.where(stay >= move, np.arange(states), best)
        total = np.maximum(stay, move) + gain[:, i]
    path = np.zeros(n, dtype=np.int64)
    path[-1] = int(np.argmax(total))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[path[i], i]
    return path


def prominence(present: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """[K] share present x mean sqrt(area) x (0.5 + 0.5 centrality); boxes [K, n, 4] in 0-1."""
    out = np.zeros(len(present))
    for k in range(len(present)):
        idx = np.flatnonzero(present[k])
        if idx.size == 0:
            continue
        b = boxes[k, idx]  # [m, 4]
        size = np.sqrt(np.clip((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 0, None)).mean()
        centre = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1) - 0.5
        centrality = 1.0 - np.clip(np.hypot(centre[:, 0], centre[:, 1]).mean() / 0.7071, 0, 1)
        out[k] = idx.size / present.shape[1] * size * (0.5 + 0.5 * centrality)
    return out


def _largest(present: np.ndarray, prom: np.ndarray, reason: str) -> SpeakerChoice:
    best = int(np.argmax(prom))
    path = np.where(present[best], best, -1)
    order = np.sort(prom)[::-1]
    confidence = 1.0 if len(prom) < 2 else float((order[0] - order[1]) / max(order[0], 1e-9))
    return SpeakerChoice(path, "largest", reason, confidence, prominence=prom.tolist())


def select_speaker(
    times: np.ndarray,
    present: np.ndarray,
    mouth: np.ndarray,
    boxes: np.ndarray,
    audio: tuple[np.ndarray, int] | None,
    mode: str = "sync",
) -> SpeakerChoice:
    """Choose the speaking face per frame (see the module docstring).

    times [n] s; present [K, n] bool; mouth [K, n]; boxes [K, n, 4] (0-1); audio: (mono samples [N],
    sample rate), or None when the clip has no audio stream (the caller need not decode it when K < 2).
    """
    n = len(times)
    if len(present) == 0:
        return SpeakerChoice(np.full(n, -1), "none", "", 0.0)
    prom = prominence(present, boxes)
    if len(present) == 1:
        return SpeakerChoice(
            np.where(present[0], 0, -1), "single", "", 1.0, prominence=prom.tolist()
        )
    if mode == "largest":
        return _largest(present, prom, "speaker: largest")
    if audio is None or audio[0].size == 0:
        return _largest(present, prom, "no_audio")
    env = envelope(*audio)
    if not has_speech(env[1]):
        return _largest(present, prom, "no_speech")
    scores, lags = sync_scores(times, present, mouth, env)
    if scores.max() < MIN_SYNC:
        choice = _largest(present, prom, "low_sync")
    else:
        local = local_scores(times, present, mouth, lags, env)  # [K, n]
        dt = np.gradient(times) if n > 1 else np.ones(1)
        best = np.where(present, local, -np.inf).max(axis=0)  # [n] best visible local score
        gain = np.where(present, local - np.where(np.isfinite(best), best, 0), -ABSENT_COST)
        path = viterbi(gain * dt, SWITCH_COST)
        choice = SpeakerChoice(np.where(present[path, np.arange(n)], path, -1), "sync", "", 0.0)
        choice.confidence = _sync_confidence(local, present, path, dt)
        choice.prominence = prom.tolist()
    choice.sync = [round(float(s), 4) for s in scores]
    choice.lag = [round(float(g), 3) for g in lags]
    return choice


def _sync_confidence(
    local: np.ndarray, present: np.ndarray, path: np.ndarray, dt: np.ndarray
) -> float:
    """Mean margin of the followed track over its best visible rival, / FULL_MARGIN, in [0, 1]."""
    margins, weights, alone = [], [], []
    for i, k in enumerate(path):
        if not present[k, i]:
            continue
        rivals = [local[j, i] for j in range(len(present)) if j != k and present[j, i]]
        if rivals:
            margins.append(local[k, i] - max(rivals))
            weights.append(dt[i])
        else:
            alone.append(local[k, i])
    if margins:
        margin = float(np.average(margins, weights=weights))
    elif alone:
        margin = float(np.mean(alone))
    else:
        return 0.0
    return float(np.clip(margin / FULL_MARGIN, 0.0, 1.0))


def speaker_record(
    choice: SpeakerChoice, ids: list[int], present: np.ndarray, boxes: np.ndarray, times: np.ndarray
) -> dict[str, Any]:
    """The sidecar's `speaker` entry: method, confidence, one entry per track, followed segments."""
    tracks = []
    for k, track in enumerate(ids):
        idx = np.flatnonzero(present[k])
        tracks.append(
            {
                "track": int(track),
                "frames": int(idx.size),
                "box": [round(float(v), 4) for v in boxes[k, idx].mean(axis=0)],
                "sync": choice.sync[k] if choice.sync else None,
                "lag_s": choice.lag[k] if choice.lag else None,
                "prominence": round(float(choice.prominence[k]), 4) if choice.prominence else None,
            }
        )
    segments = []
    for i, k in enumerate(choice.path):
        if k < 0:
            continue
        if segments and segments[-1]["track"] == ids[k] and segments[-1]["last"] == i - 1:
            segments[-1].update(end=round(float(times[i]), 3), last=i)
        else:
            t = round(float(times[i]), 3)
            segments.append({"track": int(ids[k]), "start": t, "end": t, "last": i})
    for segment in segments:
        del segment["last"]
    return {
        "method": choice.method,
        "reason": choice.reason,
        "confidence": round(float(choice.confidence), 4),
        "tracks": tracks,
        "segments": segments,
    }
