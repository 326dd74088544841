"""One clip's transcript and word timings, by the dataset's `asr` mode (docs/contracts.md, "Transcripts").

- `never`:   the label text; no recognition; its words are spread over the whole clip (`even`).
- `missing`: the label text, or the recognised text where the label cell is empty.
- `always`:  the recognised text.

With `missing` and `always`, every clip that has an audio stream is recognised, so that every clip gets
word timings: a label transcript's words are matched onto the recognised words (`aemt.asr.words`) and the
match rate (matched / matchable label words) is recorded. A clip without an audio stream keeps its
label text (and its `no_audio` status) with words spread over the clip; a transcript that ends up empty
(no label text and no recognised word) gives `empty_text`.
"""

from __future__ import annotations

import time
from typing import Any

from aemt import __version__
from aemt.asr.recognizer import SAMPLE_RATE, Recognition, Recognizer
from aemt.asr.words import (
    Word,
    countable,
    match_words,
    normalise,
    split_words,
    spread_words,
    timed_words,
)
from aemt.constants import ASR_MODES
from aemt.dataset.clips import join_flags, split_flags
from aemt.errors import UserError
from aemt.features.base import Clip
from aemt.io import config_hash


def check_mode(mode: str) -> str:
    if mode not in ASR_MODES:
        raise UserError(f"asr mode {mode!r}: use one of {', '.join(ASR_MODES)}")
    return mode


def label_digest(clip: Clip) -> str:
    """What a finished record must have been made from: the label text and the duration."""
    return config_hash({"label": clip.text.strip(), "duration": round(clip.duration, 6)})


def record_hash(mode: str, recognizer: Recognizer | None) -> str:
    """Configuration hash of the records of one run (no model with `never`)."""
    if recognizer is None:
        return config_hash({"mode": mode})
    return config_hash({"mode": mode, **recognizer.config, "model_hash": recognizer.model_hash})


def needs_recognition(mode: str, clip: Clip) -> bool:
    return mode != "never" and "no_audio" not in split_flags(clip.status)


def transcribe_clip(
    clip: Clip, mode: str, language: str, recognizer: Recognizer | None
) -> dict[str, Any]:
    """The per-clip record (JSON) of `clip`; decodes and recognises its audio when the mode asks."""
    from aemt.features.media import decode_audio

    started = time.perf_counter()
    flags = split_flags(clip.status) - {"empty_text"}
    heard: Recognition | None = None
    duration = clip.duration
    if needs_recognition(mode, clip):
        if recognizer is None:
            raise ValueError(f"asr mode {mode!r} needs a recognizer")
        decoded = decode_audio(clip.video, SAMPLE_RATE)
        if decoded is None:  # the probe saw an audio stream that decoding does not find
            flags.add("no_audio")
        else:
            samples = decoded[0]  # [n] float32 mono
            duration = duration if duration > 0 else samples.size / SAMPLE_RATE
            heard = recognizer.recognise(samples)
    timed = timed_words(heard.words) if heard is not None else None  # (text, words) recognised
    words, text, source, matched = _choose(clip.text.strip(), mode, timed, duration)
    if not text:
        flags.add("empty_text")
    n_matchable = countable(words) if source == "label" else 0
    record: dict[str, Any] = {
        "key": clip.key,
        "status": join_flags(flags),
        "text": text,
        "source": source,
        "language": language,
        "mode": mode,
        "words": [w.record() for w in words],
        "match_rate": None if source == "asr" else round(matched / max(1, n_matchable), 4),
        "n_matched": matched,
        "mean_logprob": heard.mean_logprob if heard else None,
        "asr_words": None,  # recognised words (speech, not punctuation); None: no recognition
        "label_text": clip.text.strip(),
        "recognised": None,
        "duration": duration,
        "label_digest": label_digest(clip),
        "tool": Recognizer.tool if recognizer else None,
        "tool_version": recognizer.tool_version if recognizer else None,
        "model": recognizer.model if recognizer else None,
        "model_hash": recognizer.model_hash if recognizer else None,
        "config": recognizer.config if recognizer else {"mode": mode},
        "config_hash": record_hash(mode, recognizer),
        "aemt_version": __version__,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if heard is not None and timed is not None:
        heard_text, heard_words = timed
        record["asr_words"] = countable(heard_words)
        record["recognised"] = {
            "text": heard_text,
            "words": [
                {"word": w, "start": round(s, 3), "end": round(e, 3), "probability": round(p, 4)}
                for w, s, e, p in heard.words
            ],
            "segments": heard.segments,
        }
    return record


def _choose(
    label: str, mode: str, timed: tuple[str, list[Word]] | None, duration: float
) -> tuple[list[Word], str, str, int]:
    """(timed words, transcript, source, matched words) of one clip; `timed`: the recognised
    (text, words) from `timed_words`, None when nothing was recognised."""
    if timed is None:  # `never`, or no audio
        return _spread_label(label, duration)
    heard_text, heard_words = timed
    speech = [w for w in heard_words if normalise(w.word)]  # not punctuation alone
    if mode == "always" or not label:
        return (heard_words, heard_text, "asr", 0) if speech else ([], "", "asr", 0)
    if not speech:  # nothing recognised (silence, music)
        return _spread_label(label, duration)
    words, matched = match_words(label, speech)
    return words, label, "label", matched


def _spread_label(label: str, duration: float) -> tuple[list[Word], str, str, int]:
    """The label text, its words spread over the whole clip."""
    words = [label[a:b] for a, b in split_words(label)]
    return spread_words(words, 0.0, max(duration, 0.0)), label, "label", 0
