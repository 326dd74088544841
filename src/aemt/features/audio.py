"""Audio features: openSMILE low-level descriptors (default eGeMAPSv02, 25 dims at 100 frames/s).

Feature sets:
- `eGeMAPSv02`   openSMILE eGeMAPS v02 LLD, 25 dims, 10 ms hop (timestamps: frame centres from
                 openSMILE's start/end index, start + median(end - start) / 2, because the last
                 row's end is cut at the signal end).
- `ComParE_2016` openSMILE ComParE 2016 LLD, 65 dims, 10 ms hop.
- `librosa`      20 MFCC + 20 delta + 20 delta-delta = 60 dims; 25 ms Hann window (n_fft 400 at 16 kHz),
                 10 ms hop, centred frames (timestamps = frame centres, `librosa.frames_to_time`).

Audio is decoded in-process (PyAV) to mono at `sample_rate` (default 16 kHz). A clip without an audio
stream gives zeros on a 100 frames/s grid over its duration with mask 0 and status `no_audio`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aemt.errors import UserError
from aemt.features.base import Clip, Extractor, package_version, parse_options
from aemt.io import sha256_file

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016", "librosa")
HOP_S = 0.01  # 100 frames/s for every feature set
LIBROSA_MFCC = 20


@dataclass
class AudioOptions:
    feature_set: str = "eGeMAPSv02"
    sample_rate: int = 16000
    threads: int = 1  # unused by openSMILE (single-threaded); accepted for a uniform CLI


class AudioExtractor(Extractor):
    modality = "audio"

    def __init__(self, options: AudioOptions):
        if options.feature_set not in FEATURE_SETS:
            raise UserError(
                f"audio.feature_set {options.feature_set!r} is not supported; "
                f"choose one of {list(FEATURE_SETS)}"
            )
        if options.sample_rate < 8000:
            raise UserError(f"audio.sample_rate must be >= 8000 Hz (got {options.sample_rate})")
        self.options = options
        self.model = options.feature_set
        self._smile: Any = None
        if options.feature_set == "librosa":
            self.tool, self.tool_version = "librosa", package_version("librosa")
            self.model_hash = None
            self.feature_names = (
                [f"mfcc{i}" for i in range(LIBROSA_MFCC)]
                + [f"mfcc{i}_delta" for i in range(LIBROSA_MFCC)]
                + [f"mfcc{i}_delta2" for i in range(LIBROSA_MFCC)]
            )
        else:
            import opensmile

            _seed_audobject_cache()
            self.tool, self.tool_version = "opensmile", opensmile.__version__
            self._smile = opensmile.Smile(
                feature_set=getattr(opensmile.FeatureSet, options.feature_set),
                feature_level=opensmile.FeatureLevel.LowLevelDescriptors,
            )
            self.model_hash = sha256_file(self._smile.config_path)  # the openSMILE .conf file
            self.feature_names = list(self._smile.feature_names)
        self.config = {
            "feature_set": options.feature_set,
            "feature_level": "LowLevelDescriptors",
            "sample_rate": options.sample_rate,
        }

    @property
    def dim(self) -> int:
        return len(self.feature_names)

    def _features(self, signal: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
        """(features [T, D] float32, timestamps [T] s) for a mono signal [n]."""
        if self._smile is None:
            import librosa

            mfcc = librosa.feature.mfcc(
                y=signal,
                sr=sr,
                n_mfcc=LIBROSA_MFCC,
                n_fft=int(0.025 * sr),
                hop_length=int(HOP_S * sr),
            )  # [20, T]
            width = min(9, mfcc.shape[1] - (1 - mfcc.shape[1] % 2))  # odd, <= T
            if width >= 3:
                d1 = librosa.feature.delta(mfcc, width=width, order=1)
                d2 = librosa.feature.delta(mfcc, width=width, order=2)
            else:
                d1 = d2 = np.zeros_like(mfcc)
            feats = np.concatenate([mfcc, d1, d2], axis=0).T  # [T, 60]
            times = librosa.frames_to_time(
                np.arange(feats.shape[0]), sr=sr, hop_length=int(HOP_S * sr)
            )
            return feats.astype(np.float32), times
        frame = self._smile.process_signal(signal, sr)  # DataFrame, index (start, end) timedeltas
        start = frame.index.get_level_values("start").total_seconds().to_numpy()
        end = frame.index.get_level_values("end").total_seconds().to_numpy()
        # Frame centres; the last row's end is clipped to the signal end, so use the typical width.
        width = float(np.median(end - start)) if len(start) else 0.0
        return frame.to_numpy(dtype=np.float32), start + width / 2.0  # [T, D], [T]

    def extract(self, clip: Clip) -> tuple[np.ndarray, dict[str, Any]]:
        from aemt.features.media import decode_audio

        decoded = decode_audio(clip.video, self.options.sample_rate)
        duration = clip.duration
        status = "ok"
        features = np.zeros((0, self.dim), dtype=np.float32)
        times = np.zeros(0)
        if decoded is None:
            status = "no_audio"
        else:
            signal, sr = decoded
            if signal.size:
                features, times = self._features(signal, sr)
            if features.shape[0] == 0:
                status = "no_audio"  # stream present but (almost) empty
            duration = duration or signal.size / sr
        if status == "no_audio":
            n = max(1, int(round(duration / HOP_S)))
            features = np.zeros((n, self.dim), dtype=np.float32)  # [T, D]
            times = (np.arange(n) + 0.5) * HOP_S
            mask = np.zeros(n, dtype=np.int8)
        else:
            mask = np.isfinite(features).all(axis=1).astype(np.int8)  # [T]
            features = np.where(mask[:, None] > 0, features, 0.0).astype(np.float32)
        sidecar = self.sidecar(
            clip,
            features,
            status=status,
            mask=mask,
            feature_names=self.feature_names,
            timestamps=times,
            frame_rate=1.0 / HOP_S,
            duration=duration,
            sample_rate=self.options.sample_rate,
        )
        return features, sidecar


def _seed_audobject_cache() -> None:
    """Spare `opensmile.Smile()` a scan of every installed distribution (~0.9 s on one core).

    Smile's constructor (an audobject) names its class with the distribution that provides the
    `opensmile` module, found with `importlib.metadata.packages_distributions()`, which reads the
    file list of every installed package unless audobject's cache already knows the module. The
    answer is the `opensmile` distribution (tests/test_extract_audio.py checks it), so the cache
    is seeded with exactly that entry; any other module is still looked up by audobject itself.
    """
    try:
        from audobject.core import utils
    except ImportError:
        return
    cache = getattr(utils, "PACKAGES_DISTRIBUTIONS", None)
    if isinstance(cache, dict) and "opensmile" not in cache:
        cache["opensmile"] = ["opensmile"]


def build(options: dict[str, Any]) -> AudioExtractor:
    return AudioExtractor(parse_options(options, AudioOptions))
