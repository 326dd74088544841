"""Finding faces in a frame: black borders, shot cuts, and small faces on tiles of the picture.

The FaceLandmarker's own detector is BlazeFace short-range on a 128 x 128 resize of its input: it finds
faces wider than about 12% of the input side (measured on the demo's face photos; none at 8%). A 60 px
face in a 1920 x 1080 frame is 3% of it. So faces are searched here with the same detector model (the
`face_detector.tflite` inside the landmarker's .task bundle, run as MediaPipe's FaceDetector task) on
square tiles of the picture at full resolution, in levels: the whole picture, then tiles 0.4 times as
big, and so on down to tiles of `min_face / FIND` pixels. Neighbouring tiles overlap by `KEEP` of their
side, so a face that is too small for one level lies whole inside a tile of the next; boxes found on
several tiles are merged by non-maximum suppression.

Borders: a row or column is picture when at least 2% of its pixels are brighter than a dark threshold
in any frame searched so far; the picture box is the longest run of such lines (short dark gaps
bridged), so black letterbox / pillarbox bars are left out, also when a subtitle is written in one.
Shot cuts: a large mean absolute difference of the 32 x 18 grey thumbnails of consecutive analysed
frames together with a large change of their grey-level histograms.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FIND = 0.12  # smallest face width the detector finds, as a fraction of its input side
KEEP = 0.3  # tile overlap (fraction of the side): faces up to this size lie whole inside a tile
LEVEL_RATIO = FIND / KEEP  # side of a level's tiles relative to the level above (0.4)
MIN_FACE_PX = 40  # never search for faces smaller than this (landmarks need some pixels)
DARK = 24  # 0-255: a border pixel is darker than this in every channel
CONTENT_SHARE = 0.02  # a line with more bright pixels than this share is picture
CUT_THRESHOLD = (
    30.0  # mean absolute grey difference (0-255) of thumbnails that marks a shot cut ...
)
CUT_HISTOGRAM = 0.4  # ... with this L1 distance (0-2) of their 16-bin grey histograms
NMS_IOU = 0.3


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes a [N, 4] and b [M, 4] (x0, y0, x1, y1) -> [N, M]."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: np.ndarray, threshold: float = NMS_IOU) -> np.ndarray:
    """Boxes [N, 5] (x0, y0, x1, y1, score) -> the kept ones, best score first [K, 5]."""
    order = boxes[np.argsort(-boxes[:, 4])] if len(boxes) else boxes.reshape(0, 5)
    kept: list[np.ndarray] = []
    for box in order:
        if not kept or iou(box[None, :4], np.array(kept)[:, :4]).max() < threshold:
            kept.append(box)
    return np.array(kept, dtype=np.float64).reshape(-1, 5)


class PictureBox:
    """The picture inside black borders, learnt over the frames of one clip (union of content)."""

    def __init__(self) -> None:
        self.rows: np.ndarray | None = None  # [h] bool: row has content, on the subsampled grid
        self.cols: np.ndarray | None = None  # [w] bool
        self.step = 1
        self.size = (0, 0)  # full frame (width, height)

    def update(self, rgb: np.ndarray) -> None:
        """Add one RGB frame [H, W, 3] (full resolution; read on a grid of about 240 px)."""
        height, width = rgb.shape[:2]
        self.size, self.step = (width, height), max(1, max(width, height) // 240)
        bright = rgb[:: self.step, :: self.step].max(axis=2) > DARK  # [h, w]
        rows = bright.mean(axis=1) > CONTENT_SHARE
        cols = bright.mean(axis=0) > CONTENT_SHARE
        if self.rows is None or self.rows.shape != rows.shape or self.cols.shape != cols.shape:
            self.rows, self.cols = rows, cols
        else:
            self.rows |= rows
            self.cols |= cols

    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in full-frame pixels; the whole frame when nothing is known or bright."""
        width, height = self.size
        if self.rows is None or not self.rows.any() or not self.cols.any():
            return 0, 0, width, height
        (r0, r1), (c0, c1) = _longest_run(self.rows), _longest_run(self.cols)
        x0, x1 = c0 * self.step, min(width, c1 * self.step)
        y0, y1 = r0 * self.step, min(height, r1 * self.step)
        if (x1 - x0) < 0.2 * width or (y1 - y0) < 0.2 * height:
            return 0, 0, width, height  # a dark frame, not a picture this small
        return x0, y0, x1, y1


def _longest_run(content: np.ndarray) -> tuple[int, int]:
    """[start, end) of the longest run of True lines, bridging dark gaps of up to 2% of the length
    (a dark stripe inside the picture); a subtitle line inside a black bar stays apart."""
    idx = np.flatnonzero(content)
    gap = max(2, int(0.02 * len(content)))
    breaks = np.flatnonzero(np.diff(idx) > gap)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]]) + 1
    best = int(np.argmax(ends - starts))
    return int(starts[best]), int(ends[best])


def thumbnail(rgb: np.ndarray) -> np.ndarray:
    """[18, 32] float32 grey thumbnail of an RGB frame (for shot-cut detection): 128 x 72 pixels
    picked from the frame, averaged in 4 x 4 blocks (reads ~9,000 pixels, not the whole frame)."""
    import cv2

    grid = cv2.resize(rgb, (128, 72), interpolation=cv2.INTER_NEAREST)  # [72, 128, 3]
    grey = cv2.cvtColor(grid, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (32, 18), interpolation=cv2.INTER_AREA).astype(np.float32)


def is_cut(previous: np.ndarray | None, current: np.ndarray) -> bool:
    """A shot cut between two thumbnails: the picture changed (mean absolute difference) AND its
    grey-level histogram did (a face moving over the same background keeps the histogram)."""
    if previous is None or float(np.abs(previous - current).mean()) <= CUT_THRESHOLD:
        return False
    bins = np.linspace(0, 256, 17)
    before = np.histogram(previous, bins)[0] / previous.size
    after = np.histogram(current, bins)[0] / current.size
    return float(np.abs(before - after).sum()) > CUT_HISTOGRAM


def _starts(length: int, side: int) -> list[int]:
    """Tile origins covering [0, length) with tiles of `side` overlapping by KEEP * side."""
    if side >= length:
        return [0]
    count = math.ceil((length - side) / (side * (1 - KEEP))) + 1
    return [int(round(i * (length - side) / (count - 1))) for i in range(count)]


def tile_plan(
    box: tuple[int, int, int, int], min_face: float, levels: int | None = None
) -> list[tuple[int, int, int]]:
    """Square tiles (x, y, side) in frame pixels that find faces >= `min_face` px inside `box`.

    Level 0 is the whole box (the detector letterboxes it); each finer level has tiles LEVEL_RATIO
    times as big, the finest ones `min_face / FIND` px. A tile never reaches past the box. `levels`:
    keep only that many levels from the top (a coarse search for faces that are not small).
    """
    x0, y0, x1, y1 = box
    width, height = x1 - x0, y1 - y0
    finest = max(min_face, MIN_FACE_PX) / FIND
    sides: list[int] = []
    side = finest
    while side < max(width, height):
        sides.append(int(round(side)))
        side /= LEVEL_RATIO
    plan = [(x0, y0, max(width, height))]  # the whole picture
    for side in list(reversed(sides))[: None if levels is None else max(0, levels - 1)]:
        if side >= min(width, height) and side < max(width, height):
            side = min(width, height)  # a strip of squares along the long side
        for ty in _starts(height, side):
            for tx in _starts(width, side):
                plan.append((x0 + tx, y0 + ty, side))
    return list(dict.fromkeys(plan))


class TileDetector:
    """MediaPipe FaceDetector (BlazeFace short-range, from the landmarker .task) run over tiles."""

    def __init__(self, task_file: str | Path, min_confidence: float):
        from aemt.features.landmarker import import_vision

        vision = import_vision()
        from mediapipe.tasks.python.core.base_options import BaseOptions

        with zipfile.ZipFile(task_file) as bundle:
            model = bundle.read("face_detector.tflite")
        options = vision.FaceDetectorOptions(
            base_options=BaseOptions(model_asset_buffer=model),
            min_detection_confidence=min_confidence,
        )
        self._task: Any = vision.FaceDetector.create_from_options(options)
        self.calls = 0

    def close(self) -> None:
        self._task.close()

    def _run(self, rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        import mediapipe as mp

        self.calls += 1
        image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
        out = []
        for det in self._task.detect(image).detections:
            b = det.bounding_box
            score = det.categories[0].score if det.categories else 0.0
            out.append((b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height, score))
        return out

    def detect(
        self,
        rgb: np.ndarray,
        box: tuple[int, int, int, int],
        min_face: float,
        levels: int | None = None,
    ) -> np.ndarray:
        """Faces in the `box` part of a full-resolution RGB frame [H, W, 3]: [K, 5] frame-pixel boxes
        (x0, y0, x1, y1, score), best first, at least `min_face` px wide (after NMS); `levels` as in
        `tile_plan`."""
        found: list[tuple[float, float, float, float, float]] = []
        for x, y, side in tile_plan(box, min_face, levels):
            tile = rgb[y : min(y + side, box[3]), x : min(x + side, box[2])]
            for bx0, by0, bx1, by1, score in self._run(tile):
                found.append((bx0 + x, by0 + y, bx1 + x, by1 + y, score))
        boxes = nms(np.array(found, dtype=np.float64).reshape(-1, 5))
        return boxes[(boxes[:, 2] - boxes[:, 0]) >= 0.5 * min_face]
