"""Generated film-like scenes for the speaker tests: the demo's face photos in a wide frame, with mouths
that open and close with a speech-like voice (the demo's `synth_audio`), optional black borders.

`speech(seconds, seed)` gives a voice [N] and its opening curve (RMS envelope scaled to 0-1);
`make_scene(path, faces, audio)` writes an H.264 + AAC mp4 in which each `Actor`'s mouth follows its
own curve (the lower lip and jaw are pulled down and the gap darkened), so exactly the actors whose
curve comes from the audio track "speak".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from aemt.dataset.demo.audio import synth_audio
from aemt.dataset.demo.plan import FACES, ClipPlan, DemoConfig
from aemt.dataset.demo.video import _face_layer
from tests._media_helpers import mux_audio

SAMPLE_RATE = 16000
FPS = 25
LEVELS = 12  # mouth openings are drawn at this many steps (cached cards)


def speech(seconds: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(voice [N] float32 at 16 kHz, opening [T] in 0-1 at FPS: the voice's 40 ms RMS, scaled)."""
    cfg = DemoConfig(seconds=seconds, fps=FPS, sample_rate=SAMPLE_RATE)
    plan = ClipPlan("v", "c", "", "", 0.0, 0.0, 0.0, 0.0, 0, (0, 0, 0), 200.0, seed)
    voice = synth_audio(plan, cfg)
    hop = SAMPLE_RATE // FPS
    frames = int(round(seconds * FPS))
    rms = np.array(
        [np.sqrt(np.mean(voice[max(0, i * hop - 320) : i * hop + 320] ** 2)) for i in range(frames)]
    )
    return voice, np.clip(rms / max(np.percentile(rms, 95), 1e-6), 0.0, 1.0)


@lru_cache(maxsize=64)
def _card(face: int, size: int, level: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB [S, S, 3] and alpha [S, S, 1] (float32) of face `face` with the mouth open by level/LEVELS."""
    import cv2

    rgb, alpha = _face_layer(face, size, 0.0)
    src = FACES[face]
    k = 0.375 * size / src.width
    cx, cy = size / 2 - k * src.centre[0], size / 2 - k * src.centre[1]
    (ax, ay), (bx, by) = src.corners
    mx, my = cx + k * (ax + bx) / 2, cy + k * (ay + by) / 2  # mouth centre
    width = k * np.hypot(bx - ax, by - ay)  # mouth width
    drop = level / (LEVELS - 1) * 0.45 * width  # how far the lower lip moves down (pixels)
    if drop < 0.5:
        return rgb, alpha
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    across = np.exp(-((xx - mx) ** 2) / (2 * (0.9 * width) ** 2))
    below = np.clip((yy - my) / (0.08 * width), 0, 1)
    fade = np.exp(-(np.maximum(0, yy - my - 1.2 * width) ** 2) / (2 * (0.8 * width) ** 2))
    map_y = (yy - drop * across * below * fade).astype(np.float32)
    rgb = cv2.remap(rgb, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.remap(alpha[..., 0], xx, map_y, cv2.INTER_LINEAR)[..., None]
    gap = np.zeros((size, size), np.float32)
    axes = (int(round(0.38 * width)), max(1, int(round(drop / 2))))
    cv2.ellipse(gap, (int(round(mx)), int(round(my + drop / 2))), axes, 0, 0, 360, 1.0, -1)
    gap = cv2.GaussianBlur(gap, (0, 0), 1.0)[..., None]
    return rgb * (1 - gap) + np.float32([60, 20, 25]) * gap, alpha


@dataclass
class Actor:
    """A face photo (index into FACES) at `centre` (frame pixels), `width` px wide (landmark extent),
    whose mouth opening per video frame is `opening` [T] in 0-1."""

    face: int
    centre: tuple[int, int]
    width: int
    opening: np.ndarray


def make_scene(
    path: str | Path,
    actors: list[Actor],
    audio: np.ndarray | None,
    size: tuple[int, int] = (960, 540),
    picture: tuple[int, int, int, int] | None = None,
    seconds: float = 3.0,
) -> Path:
    """Write the scene as an mp4. `picture` = (x0, y0, x1, y1): the image area, black outside."""
    path = Path(path)
    width, height = size
    x0, y0, x1, y1 = picture or (0, 0, width, height)
    rng = np.random.default_rng(0)
    backdrop = np.zeros((height, width, 3), np.float32)
    ramp = np.linspace(70, 150, x1 - x0, dtype=np.float32)[None, :, None]
    backdrop[y0:y1, x0:x1] = ramp + rng.normal(0, 6, (y1 - y0, x1 - x0, 3)).astype(np.float32)
    frames = int(round(seconds * FPS))
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound = (
            out.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if audio is not None else None
        )
        for i in range(frames):
            img = backdrop.copy()
            for actor in actors:
                card = int(round(actor.width / 0.375))  # the face spans 37.5% of its card
                level = int(
                    round(float(actor.opening[min(i, len(actor.opening) - 1)]) * (LEVELS - 1))
                )
                rgb, alpha = _card(actor.face, card, level)
                cx, cy = actor.centre
                top, left = cy - card // 2, cx - card // 2
                region = img[top : top + card, left : left + card]
                region[:] = rgb * alpha + region * (1 - alpha)
            frame = np.clip(img, 0, 255).astype(np.uint8)
            frame[:y0], frame[y1:], frame[:, :x0], frame[:, x1:] = 0, 0, 0, 0
            for packet in video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = audio[None, : int(seconds * SAMPLE_RATE)].astype(np.float32)  # [1, n]
            mux_audio(out, sound, samples, SAMPLE_RATE, "mono")
    return path
