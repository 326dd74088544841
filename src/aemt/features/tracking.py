"""Every face of a clip, followed over the analysed frames: detection, tracks, landmarks on crops.

`FaceTracker.step(rgb, t)` takes one full-resolution RGB frame and returns an `Observation` per face
seen: the track it belongs to, its box in frame pixels, the mouth opening and the landmarker result in
full-frame terms. Faces are searched (`faces.TileDetector`, inside the picture box) on every tile level
down to `min_face` on the first frame of each shot (the clip's first frame, and after a shot cut), and
on the `COARSE_LEVELS` top levels (faces of about 0.12 x 0.4 = 5% of the picture and more) every
`detect_every` seconds within a shot (a quarter of that while no face is tracked); a detection that
overlaps no tracked face starts a track (at most `max_faces` at once). Between searches,
each track is followed by its own FaceLandmarker (VIDEO mode, so it tracks from the previous landmarks)
on a square crop around the face, `CROP_SCALE` times the face size, resized to `CROP_SIZE`
pixels: small faces are upscaled before landmarking, big ones cost no more than a small one. A
detection the landmarker finds no face in (a false detection, a face in profile) is dropped at once and
not tried again within the shot; a known face the crop misses is looked for once more in a crop twice as
big; a shot cut ends every track; a track unseen for `LOST_AFTER` seconds ends, and a face detected later
in the same shot where it was lost continues it (same track id).

Results are mapped back to the full frame: landmarks to full-frame normalised coordinates, and the
facial transformation matrix from the crop's virtual camera (same vertical field of view) to the frame's
camera (`frame_matrix`): the translation is turned onto the view ray of the crop centre and its depth
scaled by frame height / crop side; the rotation is kept as estimated on the crop, which is what
MediaPipe estimates on the whole frame (mean absolute pitch / yaw / roll difference 0.01-0.11 rad on
three real clips; turning it by the view ray too gave 0.01-0.23 rad).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aemt.features.faces import PictureBox, TileDetector, iou, is_cut, thumbnail
from aemt.features.landmarker import Face

CROP_SIZE = 192  # pixels of the square crop the landmarker sees (its landmark model's input size)
CROP_SCALE = 2.0  # crop side / face size
RECROP = 0.12  # move the crop when the face centre moved by this share of the crop side
LOST_AFTER = 0.5  # seconds without landmarks before a track ends
COARSE_LEVELS = 2  # tile levels of the searches within a shot (the first one searches all)
VERTICAL_FOV = math.radians(63.0)  # MediaPipe's face geometry camera
CLIP_GAP_MS = 1000  # timestamp gap between clips and around tracker resets
# Landmark indices: inner lips (13 upper, 14 lower), outer eye corners (33, 263).
LIP_UPPER, LIP_LOWER, EYE_RIGHT, EYE_LEFT = 13, 14, 33, 263


@dataclass
class Observation:
    """One face in one frame."""

    track: int
    box: np.ndarray  # [4] x0, y0, x1, y1 in frame pixels (landmark extent)
    mouth: float  # inner-lip gap / eye-corner distance
    face: Face  # landmarks [478, 3] in full-frame normalised coordinates; matrix in frame terms


@dataclass
class Track:
    id: int
    slot: int  # index of the landmarker following it
    box: np.ndarray  # [4] last box, frame pixels
    crop: tuple[float, float, float] = (0.0, 0.0, 0.0)  # x0, y0, side (frame pixels)
    last_seen: float = 0.0
    frames: int = 0


@dataclass
class TrackerStats:
    searches: int = 0  # frames on which faces were searched
    detector_calls: int = 0
    cuts: int = 0
    tracks: int = 0
    picture: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0, 1.0])  # 0-1 of the frame


def mouth_opening(points_px: np.ndarray) -> float:
    """Inner-lip gap over outer-eye-corner distance, from landmarks in pixels [478, 2+]."""
    gap = np.linalg.norm(points_px[LIP_UPPER, :2] - points_px[LIP_LOWER, :2])
    eyes = np.linalg.norm(points_px[EYE_RIGHT, :2] - points_px[EYE_LEFT, :2])
    return float(gap / max(eyes, 1e-6))


def _turn(direction: np.ndarray) -> np.ndarray:
    """The rotation [3, 3] taking the optical axis (0, 0, -1) to the unit vector `direction`."""
    axis = np.array([0.0, 0.0, -1.0])
    v, c = np.cross(axis, direction), float(np.dot(axis, direction))
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def frame_matrix(
    matrix: np.ndarray, crop: tuple[float, float, float], size: tuple[int, int]
) -> np.ndarray:
    """A facial transformation matrix [4, 4] estimated on a square crop -> in the full frame's camera.

    `crop` = (x0, y0, side) in frame pixels, `size` = (width, height) of the frame.
    """
    x0, y0, side = crop
    width, height = size
    focal = 0.5 * height / math.tan(0.5 * VERTICAL_FOV)  # frame camera, pixels
    dx, dy = x0 + side / 2 - width / 2, y0 + side / 2 - height / 2
    view = np.array([dx, -dy, -focal])
    turn = _turn(view / np.linalg.norm(view))
    out = np.array(matrix, dtype=np.float64)
    translation = out[:3, 3].copy()
    translation[2] *= height / side  # depth: the crop camera's focal length is side/height of ours
    out[:3, 3] = turn @ translation  # the rotation stays as estimated (see the module docstring)
    return out


class FaceTracker:
    """Detection + per-track landmarking over the frames of one clip at a time (see module doc)."""

    def __init__(
        self,
        make_landmarker: Callable[[], Any],
        detector: TileDetector,
        max_faces: int,
        min_face: float,
        detect_every: float,
    ):
        self.make_landmarker = make_landmarker
        self.detector = detector
        self.max_faces, self.min_face, self.detect_every = max_faces, min_face, detect_every
        self.slots: list[Any] = []  # landmarkers, created on first need
        self._dirty: set[int] = set()  # slots that hold tracking state from an earlier face
        self.clock_ms = 0
        self.start_clip()

    def start_clip(self) -> None:
        self.active: list[Track] = []
        self.picture = PictureBox()
        self.stats = TrackerStats()
        self._thumb: np.ndarray | None = None
        self._rejected: list[np.ndarray] = []  # [4] boxes without landmarks (this shot)
        self._lost: list[Track] = []  # tracks of this shot that lost their face
        self._last_search = -math.inf
        self._next_id = 0
        self._start_ms = self.clock_ms + CLIP_GAP_MS
        self._calls_at_start = self.detector.calls

    def close(self) -> None:
        """Close the landmarkers and the detector."""
        for landmarker in self.slots:
            landmarker.close()
        self.slots = []
        self.detector.close()

    def end_clip(self) -> None:
        """Clear every landmarker's tracking state so that the next clip starts fresh."""
        self.active = []
        for slot in sorted(self._dirty):
            self._reset(slot)
        self.clock_ms += CLIP_GAP_MS
        width, height = self.picture.size
        x0, y0, x1, y1 = self.picture.box()
        if width and height:
            self.stats.picture = [x0 / width, y0 / height, x1 / width, y1 / height]
        self.stats.detector_calls = self.detector.calls - self._calls_at_start

    def _tick(self) -> int:
        """The next landmarker timestamp (ms): strictly increasing over every slot and clip."""
        self.clock_ms += 1
        return self.clock_ms

    def _reset(self, slot: int) -> None:
        """Show a slot's landmarker a blank crop: its next face starts with a fresh detection."""
        self.slots[slot].detect(np.zeros((CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8), self._tick())
        self._dirty.discard(slot)

    def _free_slot(self) -> int:
        """A landmarker no active track uses, with no tracking state left (created on first need)."""
        used = {t.slot for t in self.active}
        slot = next(s for s in range(self.max_faces) if s not in used)
        if slot == len(self.slots):
            self.slots.append(self.make_landmarker())
        if slot in self._dirty:
            self._reset(slot)
        return slot

    def _search(self, rgb: np.ndarray, t: float, full: bool) -> None:
        """Run the tile detector (all levels, or the COARSE_LEVELS top ones); start tracks for faces
        no track covers."""
        self._last_search = t
        self.stats.searches += 1
        self.picture.update(rgb)  # borders: learnt from the frames searched
        levels = None if full else COARSE_LEVELS
        boxes = self.detector.detect(rgb, self.picture.box(), self.min_face, levels)  # [K, 5]
        for box in boxes:
            if len(self.active) >= self.max_faces:
                break
            known = [a.box for a in self.active] + self._rejected
            if known and iou(box[None, :4], np.array(known)).max() > 0.2:
                continue  # a face already tracked, or a box the landmarker found no face in
            slot = self._free_slot()
            same = [g for g in self._lost if iou(box[None, :4], g.box[None]).max() > 0.3]
            if same:  # where a lost track of this shot left its face: the same person
                self._lost.remove(same[-1])
                track_id = same[-1].id
            else:
                track_id, self._next_id = self._next_id, self._next_id + 1
            self.active.append(Track(track_id, slot, box[:4].copy(), last_seen=t))
            self.stats.tracks += 1

    def step(self, rgb: np.ndarray, t: float) -> list[Observation]:
        """Faces in one RGB frame [H, W, 3] (full resolution) at clip time t (s, increasing)."""
        self.clock_ms = max(self._start_ms + int(round(t * 1000)), self.clock_ms)
        thumb = thumbnail(rgb)
        new_shot = self._thumb is None or is_cut(self._thumb, thumb)
        if new_shot and self._thumb is not None:
            self.stats.cuts += 1
            self._end(list(self.active))
            self._rejected, self._lost = [], []
        self._thumb = thumb
        every = self.detect_every if self.active else self.detect_every / 4
        if new_shot or t - self._last_search >= every - 1e-6:
            self._search(rgb, t, full=new_shot)
        out: list[Observation] = []
        for track in list(self.active):
            seen = self._landmark(track, rgb, t)
            if seen is not None:
                out.append(seen)
            elif track.frames == 0:  # a false detection, or a face in profile: not again this shot
                self._rejected.append(track.box)
                self._end([track])
            elif t - track.last_seen > LOST_AFTER:
                self._end([track])
                self._lost.append(track)
        return self._dedupe(out)

    def _end(self, tracks: list[Track]) -> None:
        """Stop following these tracks (their landmarkers are reset when next used)."""
        for track in tracks:
            self.active.remove(track)

    def _dedupe(self, seen: list[Observation]) -> list[Observation]:
        """Two tracks on one face (their boxes overlap by half): the younger one ends."""
        seen = sorted(seen, key=lambda o: o.track)
        kept: list[Observation] = []
        for obs in seen:
            if kept and iou(obs.box[None], np.array([k.box for k in kept])).max() > 0.5:
                self._end([t for t in self.active if t.id == obs.track])
                continue
            kept.append(obs)
        return kept

    def _landmark_crop(self, track: Track, rgb: np.ndarray) -> Face | None:
        """The track's landmarker on the crop `track.crop` of the frame (CROP_SIZE px square)."""
        import cv2

        cx0, cy0, side = track.crop
        scale = CROP_SIZE / side
        to_crop = np.array([[scale, 0.0, -cx0 * scale], [0.0, scale, -cy0 * scale]])
        crop = cv2.warpAffine(
            rgb, to_crop, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )  # [CROP_SIZE, CROP_SIZE, 3], black outside the frame  # fmt: skip
        face = self.slots[track.slot].detect(crop, self._tick())
        return None if face is None or face.landmarks is None else face

    def _landmark(self, track: Track, rgb: np.ndarray, t: float) -> Observation | None:
        """Run the track's landmarker on a crop around its last box (and, when that finds nothing
        for a known face, on one twice as big); None when no face is there."""
        height, width = rgb.shape[:2]
        x0, y0, x1, y1 = track.box
        size = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        cx0, cy0, side = track.crop
        moved = side <= 0 or math.hypot(cx - cx0 - side / 2, cy - cy0 - side / 2) > RECROP * side
        if moved or abs(CROP_SCALE * size / side - 1.0) > 0.2:
            side = CROP_SCALE * size
            track.crop = (cx - side / 2, cy - side / 2, side)
        face = self._landmark_crop(track, rgb)
        if face is None and track.frames:  # the face moved far, or turned: look wider, once
            cx0, cy0, side = track.crop
            track.crop = (cx0 - side / 2, cy0 - side / 2, 2 * side)
            face = self._landmark_crop(track, rgb)
        if face is None:
            return None  # nothing to track: the landmarker needs no reset for this
        cx0, cy0, side = track.crop
        self._dirty.add(track.slot)
        pts = face.landmarks * side + np.array([cx0, cy0, 0.0])  # [478, 3] frame pixels
        box = np.array([*pts[:, :2].min(axis=0), *pts[:, :2].max(axis=0)])
        centre = (box[:2] + box[2:]) / 2
        if np.hypot(*(centre - (cx0 + side / 2, cy0 + side / 2))) > 0.35 * side:
            return None  # the landmarker locked onto another face at the crop's edge
        track.box, track.last_seen, track.frames = box, t, track.frames + 1
        landmarks = pts / np.array([width, height, width])  # full-frame normalised
        matrix = None
        if face.matrix is not None:
            matrix = frame_matrix(face.matrix, track.crop, (width, height))
        mapped = Face(face.blendshapes, matrix, landmarks)
        return Observation(track.id, box, mouth_opening(pts), mapped)
