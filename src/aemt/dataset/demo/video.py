"""Pictures of the demo clips: `render_video` moves a real face photo (scikit-image's astronaut,
matplotlib's Grace Hopper: no download) over a plain background (roll, nod, scale) and warps its mouth
corners by the clip's visual score."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from aemt.dataset.demo.plan import FACES, ClipPlan, DemoConfig


@lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    """The RGB uint8 photo [H, W, 3], loaded from an installed package (no download)."""
    if name == "astronaut":
        import skimage.data

        return skimage.data.astronaut()
    import matplotlib.cbook
    import matplotlib.image

    return matplotlib.image.imread(
        matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    )


@lru_cache(maxsize=32)
def _face_layer(face: int, size: int, smile: float) -> tuple[np.ndarray, np.ndarray]:
    """RGB [S, S, 3] and alpha [S, S, 1] (float32) of a face centred in an S x S frame.

    `smile` (pixels) moves the mouth corners up (> 0, smile) or down (< 0, frown) with a local warp.
    """
    import cv2  # opencv-contrib-python, a dependency of mediapipe

    src = FACES[face]
    k = 0.375 * size / src.width  # the face spans ~37% of the frame width
    cx, cy = size / 2 - k * src.centre[0], size / 2 - k * src.centre[1]
    photo = np.ascontiguousarray(_photo(src.name))
    to_frame = np.float32([[k, 0, cx], [0, k, cy]])
    rgb = cv2.warpAffine(photo, to_frame, (size, size), None, cv2.INTER_AREA, cv2.BORDER_REPLICATE)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)  # [S, S] each
    map_x, map_y = xx.copy(), yy.copy()
    for (x, y), side in zip(src.corners, (-1.0, 1.0), strict=True):
        bump = np.exp(
            -((xx - cx - k * x) ** 2 + (yy - cy - k * y) ** 2) / (2 * (0.027 * size) ** 2)
        )
        map_x -= 0.4 * smile * side * bump  # corners move outwards when smiling
        map_y += smile * bump  # sampling from below moves the content up
    rgb = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ellipse = np.hypot((xx - size / 2) / (0.36 * size), (yy - 0.46 * size) / (0.46 * size))
    alpha = np.clip((1.0 - ellipse) / 0.08, 0.0, 1.0)[..., None]  # soft oval cameo edge
    return rgb.astype(np.float32), alpha.astype(np.float32)


def render_video(plan: ClipPlan, cfg: DemoConfig) -> np.ndarray:
    """Frames [T, S, S, 3] uint8: the face on a plain background sways, nods, drifts and breathes.

    Visual polarity v = label_V sets the mean head roll (12 deg * v), the nodding amplitude, the face
    scale (1 + 0.1 v) and the smile warp; the rest of the motion is random per clip.
    """
    import cv2

    s, v = cfg.size, plan.label_V
    rng = np.random.default_rng([plan.seed, 1])
    rgb, alpha = _face_layer(plan.face, s, round(0.03 * s * v, 1))
    colour = np.float32(plan.background)
    card = np.round(rgb * alpha + colour * (1 - alpha)).astype(np.uint8)  # [S, S, 3]
    n = int(round(cfg.seconds * cfg.fps))
    t = np.arange(n) / cfg.fps  # [T] seconds

    def wave(lo_hz: float, hi_hz: float) -> np.ndarray:  # [T] random-frequency, random-phase sine
        return np.sin(2 * np.pi * (rng.uniform(lo_hz, hi_hz) * t + rng.uniform()))

    roll = 12.0 * v + rng.normal(0, 1.0) + 3.0 * wave(0.3, 0.6)  # degrees
    nod = (0.01 + 0.03 * (v + 1.0)) * s * wave(1.6, 2.4)  # pixels
    drift = 0.04 * s * wave(0.15, 0.35)  # pixels
    scale = (1.0 + 0.1 * v) * (1.0 + 0.03 * wave(0.2, 0.5))
    offset = rng.normal(0, 0.02 * s, size=2)
    frames = np.empty((n, s, s, 3), np.uint8)
    for i in range(n):
        m = cv2.getRotationMatrix2D((s / 2, s / 2), float(roll[i]), float(scale[i]))
        m[:, 2] += (offset[0] + drift[i], offset[1] + nod[i])
        border = (cv2.BORDER_CONSTANT, plan.background)  # the plain background fills the corners
        frames[i] = cv2.warpAffine(card, m, (s, s), None, cv2.INTER_LINEAR, *border)
    return frames
