"""A thin FaceLandmarker (VIDEO mode) wrapper that returns numpy arrays, not Python objects.

MediaPipe's Python result (`FaceLandmarkerResult.from_ctypes`) builds 478 landmark objects and 52
category objects per frame, about 1.5 ms on one core, whether or not they are used. When the installed
MediaPipe exposes its C API through ctypes (mediapipe >= 0.10.30: the landmarker has `_lib` and
`_handle`), `FaceLandmarker.detect` calls `MpFaceLandmarkerDetectForVideo` itself and copies only the
fields asked for straight from the C structs with numpy (about 0.05 ms); the model call and its output
are the same. Other MediaPipe versions go through the public API and convert its objects.
"""

from __future__ import annotations

import ctypes
import importlib
import sys
import types
from dataclasses import dataclass
from typing import Any

import numpy as np

PYPLOT = "matplotlib.pyplot"


class _DeferredModule(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports the real one."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


def import_vision() -> types.ModuleType:
    """`mediapipe.tasks.python.vision`, without importing matplotlib.pyplot (~0.7 s on one core).

    The package imports its drawing helpers, which import pyplot at module level and use it only
    to plot. While the package loads, pyplot is a `_DeferredModule`; it is taken out of
    `sys.modules` right after, so any later `import matplotlib.pyplot` gets the real module, and
    the drawing helpers still work (their `plt` imports pyplot on first use).
    """
    if "mediapipe.tasks.python.vision" in sys.modules or PYPLOT in sys.modules:
        return importlib.import_module("mediapipe.tasks.python.vision")
    stand_in = _DeferredModule(PYPLOT)
    sys.modules[PYPLOT] = stand_in
    try:
        return importlib.import_module("mediapipe.tasks.python.vision")
    finally:
        if sys.modules.get(PYPLOT) is stand_in:
            del sys.modules[PYPLOT]


@dataclass
class Face:
    """The first face of one frame: blendshape scores, pose matrix, landmarks (None if not asked)."""

    blendshapes: np.ndarray | None  # [52] float32, indexed by category index
    matrix: np.ndarray | None  # [4, 4] facial transformation matrix
    landmarks: np.ndarray | None  # [478, 3] normalised x, y, z (float64)


def _record_dtype(struct: type[ctypes.Structure], fields: dict[str, str]) -> np.dtype:
    """A numpy dtype viewing an array of `struct`, exposing `fields` (name -> format) at their
    ctypes offsets (pointer fields such as names are skipped)."""
    return np.dtype(
        {
            "names": list(fields),
            "formats": list(fields.values()),
            "offsets": [getattr(struct, name).offset for name in fields],
            "itemsize": ctypes.sizeof(struct),
        }
    )


class FaceLandmarker:
    """One MediaPipe FaceLandmarker in VIDEO mode; `detect(rgb, ms)` -> `Face` or None (no face)."""

    def __init__(self, options: Any, blendshapes: bool, matrix: bool, landmarks: bool):
        vision = import_vision()
        self.want = (blendshapes, matrix, landmarks)
        self._task = vision.FaceLandmarker.create_from_options(options)
        self._c = self._c_api()

    def _c_api(self) -> dict[str, Any] | None:
        """The ctypes handles of the fast path, or None when this MediaPipe has no C API."""
        try:
            from mediapipe.tasks.python.components.containers import category_c, landmark_c
            from mediapipe.tasks.python.vision import face_landmarker as module

            lib, handle = self._task._lib, self._task._handle
            result_type = module.MpFaceLandmarkerResultC
            detect, close = lib.MpFaceLandmarkerDetectForVideo, lib.MpFaceLandmarkerCloseResult
            category = _record_dtype(category_c.MpCategoryC, {"index": "=i4", "score": "=f4"})
            point = _record_dtype(
                landmark_c.MpNormalizedLandmarkC, {"x": "=f4", "y": "=f4", "z": "=f4"}
            )
        except (ImportError, AttributeError):
            return None
        return {
            "handle": handle,
            "result": result_type,
            "detect": detect,
            "close": close,
            "category": category,
            "point": point,
        }

    def close(self) -> None:
        self._task.close()

    def detect(self, rgb: np.ndarray, timestamp_ms: int) -> Face | None:
        """The first face in an RGB uint8 [H, W, 3] frame at `timestamp_ms` (increasing), or None."""
        import mediapipe as mp

        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        if self._c is None:
            return self._from_python(self._task.detect_for_video(image, timestamp_ms))
        c = self._c
        result = c["result"]()
        c["detect"](c["handle"], image._image_ptr, None, timestamp_ms, ctypes.byref(result))
        try:
            return self._from_c(result)
        finally:
            c["close"](ctypes.byref(result))

    def _from_c(self, result: Any) -> Face | None:
        if result.face_landmarks_count == 0:
            return None
        blendshapes = matrix = landmarks = None
        if self.want[0] and result.face_blendshapes_count:
            cats = result.face_blendshapes[0]
        if self.want[0] and result.face_blendshapes_count and cats.categories_count:
            dtype = self._c["category"]
            raw = ctypes.string_at(cats.categories, dtype.itemsize * cats.categories_count)
            records = np.frombuffer(raw, dtype=dtype)
            blendshapes = np.zeros(int(records["index"].max()) + 1, dtype=np.float32)
            blendshapes[records["index"]] = records["score"]
        if self.want[1] and result.facial_transformation_matrixes_count:
            m = result.facial_transformation_matrixes[0]
            flat = np.ctypeslib.as_array(m.data, shape=(m.cols, m.rows))  # column-major
            matrix = flat.T.astype(np.float64)  # [rows, cols], a copy
        if self.want[2]:
            marks = result.face_landmarks[0]
            dtype = self._c["point"]
            raw = ctypes.string_at(marks.landmarks, dtype.itemsize * marks.landmarks_count)
            records = np.frombuffer(raw, dtype=dtype)
            landmarks = np.stack([records["x"], records["y"], records["z"]], axis=1).astype(
                np.float64
            )  # [478, 3]
        return Face(blendshapes, matrix, landmarks)

    def _from_python(self, result: Any) -> Face | None:
        """The same `Face` from MediaPipe's public result objects (the portable path)."""
        if not result.face_landmarks:
            return None
        blendshapes = matrix = landmarks = None
        if self.want[0] and result.face_blendshapes:
            cats = result.face_blendshapes[0]
            blendshapes = np.zeros(max(c.index for c in cats) + 1, dtype=np.float32)
            for cat in cats:
                blendshapes[cat.index] = cat.score
        if self.want[1] and result.facial_transformation_matrixes:
            matrix = np.asarray(result.facial_transformation_matrixes[0], dtype=np.float64)
        if self.want[2]:
            landmarks = np.array([(p.x, p.y, p.z) for p in result.face_landmarks[0]])
        return Face(blendshapes, matrix, landmarks)
