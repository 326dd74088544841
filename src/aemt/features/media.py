"""In-process media decoding with PyAV (FFmpeg): clip info, mono audio, and frames at chosen times.

No temporary files and no system `ffmpeg`: audio is resampled and downmixed with `av.AudioResampler`,
video is decoded once, in order, and only the frames that are kept are converted to RGB and
downscaled. Truncated files stop cleanly; a `DecodeReport` says how far decoding got.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from os import PathLike

import av
import numpy as np

from aemt.errors import UserError

# Errors FFmpeg raises on damaged input (a subclass of OSError/ValueError in PyAV).
DECODE_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, EOFError)


class MediaError(UserError):
    """A media file cannot be opened or decoded (the extraction runner records it per clip)."""


@dataclass
class VideoInfo:
    """Container-level facts about a clip."""

    duration: float  # seconds (container duration, else the longest stream)
    fps: float  # average frame rate of the first video stream (0 when unknown / no video)
    width: int
    height: int
    has_audio: bool
    has_video: bool
    n_frames: int  # frame count from the container header (0 when unknown)


@dataclass
class DecodeReport:
    """Filled in by `sample_frames`: how far decoding got and whether it ended early."""

    frames_decoded: int = 0
    frames_yielded: int = 0
    last_frame_time: float | None = None  # seconds, time of the last decoded frame
    error: str | None = None  # decoder error message when decoding stopped on damaged data
    truncated: bool = False  # requested times past the end of the decodable video were not yielded


def _open(path: str | PathLike) -> av.container.InputContainer:
    try:
        return av.open(str(path))
    except DECODE_ERRORS as err:
        raise MediaError(
            f"{path}: cannot open the video ({err}); check that the file is a complete, "
            "playable media file (re-download or re-encode it)"
        ) from err


def _stream_seconds(stream: av.stream.Stream) -> float:
    if stream.duration is None or stream.time_base is None:
        return 0.0
    return float(stream.duration * stream.time_base)


def video_info(path: str | PathLike) -> VideoInfo:
    """Duration, frame rate, size and stream presence of a media file (header only, no decoding)."""
    with _open(path) as container:
        videos = container.streams.video
        duration = container.duration / 1e6 if container.duration else 0.0
        if duration <= 0:
            duration = max((_stream_seconds(s) for s in container.streams), default=0.0)
        if videos:
            stream = videos[0]
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            return VideoInfo(
                duration=duration,
                fps=fps,
                width=int(stream.codec_context.width or 0),
                height=int(stream.codec_context.height or 0),
                has_audio=bool(container.streams.audio),
                has_video=True,
                n_frames=int(stream.frames or 0),
            )
        return VideoInfo(duration, 0.0, 0, 0, bool(container.streams.audio), False, 0)


def decode_audio(path: str | PathLike, sample_rate: int = 16000) -> tuple[np.ndarray, int] | None:
    """Decode the first audio stream to float32 mono at `sample_rate`; None if there is none.

    Returns (samples [n] float32 in [-1, 1], sample_rate). A stream that breaks off mid-way (a
    truncated file) returns the samples decoded up to that point.
    """
    with _open(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))  # [samples] (packed mono)
        except DECODE_ERRORS:
            pass  # damaged tail: keep what decoded
        for out in resampler.resample(None):  # flush the resampler's buffer
            chunks.append(out.to_ndarray().reshape(-1))
    if not chunks:
        return np.zeros(0, dtype=np.float32), sample_rate
    return np.concatenate(chunks).astype(np.float32, copy=False), sample_rate


def scaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longest side is <= max_side (even sizes, never upscaled)."""
    scale = min(1.0, max_side / max(width, height)) if max_side > 0 else 1.0
    if scale >= 1.0:
        return width, height
    new_w = max(2, int(round(width * scale / 2)) * 2)
    new_h = max(2, int(round(height * scale / 2)) * 2)
    return new_w, new_h


def _frames(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    needed: Callable[[float], bool],
    report: DecodeReport,
) -> Iterator[av.VideoFrame]:
    """Decode `stream` in order; packets whose frame is not `needed` may skip decoding.

    A packet whose presentation time no requested time needs is decoded with skip_frame=NONREF:
    FFmpeg then drops it if no other frame references it (B-frames), and decodes it otherwise.
    A damaged packet is skipped (its error is recorded); damaged container data ends decoding.
    """
    ctx = stream.codec_context
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.time_base is not None:
                ctx.skip_frame = (
                    "DEFAULT" if needed(float(packet.pts * packet.time_base)) else "NONREF"
                )
            else:
                ctx.skip_frame = "DEFAULT"  # the final flush packet
            try:
                decoded = packet.decode()
            except DECODE_ERRORS as err:
                report.error = report.error or str(err)
                continue
            yield from decoded
    except DECODE_ERRORS as err:
        report.error = report.error or str(err)


def sample_frames(
    path: str | PathLike,
    times_s: Sequence[float],
    max_side: int = 480,
    report: DecodeReport | None = None,
    threads: int = 0,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (requested time, RGB uint8 [H, W, 3]) for each time in `times_s` (ascending).

    The video stream is decoded once, in order; each requested time gets the decoded frame on
    screen at that time (the last frame that starts at or before it; the first frame for times
    before it). Frames no requested time falls on are not converted, and when they are not
    reference frames they are not even decoded. Kept frames are converted to RGB and downscaled
    (area averaging) so that the longest side is <= `max_side`, and turned upright when the stream
    carries a display rotation (phone recordings; `upright_turns`); when two times fall on the same
    decoded frame, the same array object is yielded twice (callers can skip repeated work with an
    `is` check). If the video ends early (truncated file, damaged data), the remaining times are not
    yielded and `report` says how far decoding got. `threads`: decoder threads (0 = FFmpeg's choice).
    """
    times = [float(t) for t in times_s]
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("sample_frames: times_s must be ascending")
    report = report if report is not None else DecodeReport()
    if not times:
        return
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream; the visual extractor needs one")
        stream = container.streams.video[0]
        if threads > 0:
            stream.codec_context.thread_count = threads
        rate = stream.average_rate or stream.guessed_rate
        period = 1.0 / float(rate) if rate else 0.04
        start = float(stream.start_time * stream.time_base) if stream.start_time else 0.0
        size: tuple[int, int] | None = None
        cache: tuple[av.VideoFrame | None, np.ndarray | None] = (None, None)

        def needed(pts_s: float) -> bool:
            """Could a requested time fall on the frame shown from pts_s (generous margins)?"""
            t = pts_s - start
            i = bisect.bisect_left(times, t - 0.5 * period)
            return i < len(times) and times[i] < t + 1.5 * period

        def convert(frame: av.VideoFrame) -> np.ndarray:
            """RGB, downscaled; the same decoded frame asked twice returns the same array object."""
            nonlocal size, cache
            if cache[0] is frame and cache[1] is not None:
                return cache[1]
            if size is None:
                size = scaled_size(frame.width, frame.height, max_side)
            out = frame.reformat(
                width=size[0], height=size[1], format="rgb24", interpolation="AREA"
            )
            rgb = out.to_ndarray()  # [H, W, 3] uint8, as stored
            turns = upright_turns(frame)
            if turns:  # phone clips store frames sideways and say how to show them
                rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
            cache = (frame, rgb)
            return cache[1]

        k = 0  # index of the next requested time
        prev: tuple[float, av.VideoFrame] | None = None
        for index, frame in enumerate(_frames(container, stream, needed, report)):
            t = frame.time - start if frame.time is not None else index * period
            report.frames_decoded += 1
            report.last_frame_time = t
            # A requested time before this frame's start is shown by the previous frame.
            while k < len(times) and times[k] < t - 1e-6:
                yield times[k], convert(prev[1] if prev is not None else frame)
                report.frames_yielded += 1
                k += 1
            if k >= len(times):
                return
            prev = (t, frame)
        # The last frame is shown until its time + one frame period.
        while k < len(times) and prev is not None and times[k] < prev[0] + period + 1e-6:
            yield times[k], convert(prev[1])
            report.frames_yielded += 1
            k += 1
        report.truncated = k < len(times)


def upright_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counterclockwise (0-3, `np.rot90`'s k) that show `frame` as its display matrix
    says (the rotation FFmpeg's players apply; PyAV decodes frames as stored)."""
    try:
        angle = float(frame.rotation or 0)  # degrees counterclockwise, in [-180, 180]
    except (AttributeError, ValueError, TypeError):  # older PyAV, or no/odd display matrix
        return 0
    return int(round(angle / 90.0)) % 4


def sample_times(duration: float, rate: float) -> np.ndarray:
    """Centres of round(duration * rate) (>= 1) equal sub-intervals of [0, duration] [n] float64."""
    n = max(1, int(math.floor(duration * rate + 0.5)))
    return (np.arange(n, dtype=np.float64) + 0.5) * (duration / n)
