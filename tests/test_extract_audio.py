"""Audio decoding (PyAV) and the openSMILE / librosa audio extractor on generated clips."""

from __future__ import annotations

import numpy as np
import pytest

from aemt.errors import UserError
from aemt.features.base import Clip, make_extractor
from aemt.features.media import decode_audio, video_info
from aemt.io import config_hash, sha256_file
from tests._media_helpers import make_clip, voice_f0


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    return {
        "voice": make_clip(root / "voice.mp4", duration=2.0, face=False),
        "stereo44k": make_clip(
            root / "stereo.mp4", duration=1.0, face=False, stereo=True, sample_rate=44100
        ),
        "silent": make_clip(root / "silent.mp4", duration=1.6, face=False, audio=False),
    }


def as_clip(path, key="v/c") -> Clip:
    return Clip(key, *key.split("/"), video=str(path), duration=video_info(path).duration)


def test_decode_audio_resamples_and_downmixes(clips):
    samples, sr = decode_audio(clips["voice"], 16000)
    assert sr == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert abs(samples.size - 32000) < 1100  # 2 s, plus at most one AAC frame of padding
    mono44, sr44 = decode_audio(clips["stereo44k"], 16000)
    assert sr44 == 16000 and mono44.ndim == 1 and abs(mono44.size - 16000) < 1100
    # Left = the voice, right = silence: the downmix keeps the voice at reduced level.
    left_rms = float(np.sqrt(np.mean(samples**2)))
    ratio = float(np.sqrt(np.mean(mono44**2))) / left_rms
    assert 0.3 < ratio < 0.9
    assert decode_audio(clips["silent"]) is None
    info = video_info(clips["silent"])
    assert not info.has_audio and info.has_video and info.duration == pytest.approx(1.6)


def test_egemaps_lld_shape_timestamps_and_pitch(clips):
    extractor = make_extractor("audio", {})
    features, sidecar = extractor.extract(as_clip(clips["voice"]))
    assert features.dtype == np.float32 and features.shape[1] == 25
    assert 190 <= features.shape[0] <= 210  # 100 frames/s over 2 s
    times = np.array(sidecar["timestamps"])
    assert times[0] == pytest.approx(0.01)  # centre of openSMILE's first [0, 20 ms] frame
    np.testing.assert_allclose(np.diff(times), 0.01, atol=1e-6)
    names = sidecar["feature_names"]
    assert len(names) == 25 and names[0] == "Loudness_sma3"
    f0 = features[:, names.index("F0semitoneFrom27.5Hz_sma3nz")]
    voiced = f0 > 0
    assert voiced.mean() > 0.6  # a harmonic tone is voiced almost everywhere
    expected = 12 * np.log2(voice_f0(times) / 27.5)  # semitones above 27.5 Hz, per frame
    assert np.median(np.abs(f0[voiced] - expected[voiced])) < 0.5  # openSMILE tracks the glide
    assert sidecar["status"] == "ok" and set(sidecar["mask"]) == {1}
    assert sidecar["frame_rate"] == 100.0 and sidecar["tool"] == "opensmile"
    assert sidecar["model"] == "eGeMAPSv02"
    assert sidecar["model_hash"] == sha256_file(extractor._smile.config_path)
    assert sidecar["config_hash"] == config_hash(
        {"modality": "audio", "config": sidecar["config"], "model_hash": sidecar["model_hash"]}
    )


def test_no_audio_stream_gives_masked_zeros(clips):
    features, sidecar = make_extractor("audio", {}).extract(as_clip(clips["silent"]))
    assert features.shape == (160, 25) and not features.any()
    assert sidecar["status"] == "no_audio" and sidecar["mask"] == [0] * 160
    assert sidecar["timestamps"][0] == pytest.approx(0.005)
    assert sidecar["timestamps"][-1] == pytest.approx(1.595)


def test_compare_and_librosa_feature_sets(clips):
    compare = make_extractor("audio", {"feature_set": "ComParE_2016"})
    features, sidecar = compare.extract(as_clip(clips["stereo44k"]))
    assert features.shape[1] == 65 and 90 <= features.shape[0] <= 105
    assert len(sidecar["feature_names"]) == 65
    lib = make_extractor("audio", {"feature_set": "librosa"})
    features, sidecar = lib.extract(as_clip(clips["stereo44k"]))
    assert features.shape[1] == 60 and 95 <= features.shape[0] <= 105
    assert sidecar["tool"] == "librosa" and sidecar["feature_names"][20] == "mfcc0_delta"
    assert sidecar["timestamps"][0] == 0.0 and sidecar["timestamps"][1] == pytest.approx(0.01)
    hashes = {make_extractor("audio", {}).config_hash, compare.config_hash, lib.config_hash}
    assert len(hashes) == 3
    assert make_extractor("audio", {"sample_rate": 22050}).config_hash not in hashes


def test_bad_options_are_user_errors():
    with pytest.raises(UserError, match="feature_set"):
        make_extractor("audio", {"feature_set": "eGeMAPSv99"})
    with pytest.raises(UserError, match="sample_rate"):
        make_extractor("audio", {"sample_rate": 100})


def test_seeded_audobject_cache_gives_smiles_own_answer():
    """The entry seeded to skip a slow metadata scan is what the scan itself finds."""
    from importlib.metadata import packages_distributions

    from audobject.core import utils

    make_extractor("audio", {})  # seeds the cache, builds a Smile
    assert utils.PACKAGES_DISTRIBUTIONS["opensmile"] == ["opensmile"]
    assert packages_distributions()["opensmile"][0] == "opensmile"
