"""Test fixtures for the extractors: tiny generated clips (PyAV), manifests and a tiny random BERT.

Clips: H.264 (+ AAC) mp4 with a real face photo (scikit-image's astronaut portrait) moving over a plain
background and a harmonic, amplitude-modulated voice-like tone; variants without audio, without a face,
and truncated. Nothing is downloaded.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import av
import numpy as np
import pandas as pd

FACE_SIZE = 150
BACKGROUND = (90, 120, 150)


def _face_patch() -> np.ndarray:
    """[150, 150, 3] uint8 crop of the astronaut portrait around her face."""
    from skimage import data, transform

    crop = data.astronaut()[0:260, 110:370]
    return (transform.resize(crop, (FACE_SIZE, FACE_SIZE), anti_aliasing=True) * 255).astype(
        np.uint8
    )


def voice_f0(t: np.ndarray) -> np.ndarray:
    """Fundamental frequency (Hz) of `voice` at times t (s)."""
    return 140 + 30 * np.sin(2 * np.pi * 0.7 * t)


def voice(duration: float, sample_rate: int) -> np.ndarray:
    """[n] float32 harmonic tone, f0 gliding around 140 Hz, syllable-rate amplitude modulation."""
    t = np.arange(int(round(duration * sample_rate))) / sample_rate
    f0 = voice_f0(t)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.2 * wave * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def make_clip(
    path: str | Path,
    duration: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    face: bool = True,
    audio: bool = True,
    sample_rate: int = 16000,
    stereo: bool = False,
    blank_from: float | None = None,
    rotation: int = 0,
    silent: bool = False,
) -> Path:
    """Write an mp4 (moov atom first, so a truncated copy still plays its beginning).

    `blank_from`: seconds after which the face disappears (frames without a face). `rotation` (a multiple
    of 90): store every frame turned the other way and tag the stream with this display rotation (degrees
    counterclockwise), as phones do; a player shows the clip upright, at `size`. `silent`: an audio
    stream of digital silence.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    patch = _face_patch() if face else None
    n = int(round(duration * fps))
    turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if turns % 2 else (width, height)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = stored_w, stored_h, "yuv420p"
        video.options = {"preset": "ultrafast"}
        if turns:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=sample_rate) if audio else None
        layout = "stereo" if stereo else "mono"
        if sound is not None:
            sound.layout = layout
        for i in range(n):
            img = np.empty((height, width, 3), np.uint8)  # [H, W, 3]
            img[:] = BACKGROUND
            if patch is not None and (blank_from is None or i / fps < blank_from):
                x = int(10 + (width - FACE_SIZE - 20) * i / max(1, n - 1))
                y = (height - FACE_SIZE) // 2 + int(8 * np.sin(i / 5))
                img[y : y + FACE_SIZE, x : x + FACE_SIZE] = patch
            stored = np.ascontiguousarray(np.rot90(img, k=-turns))  # as the camera wrote it
            for packet in video.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if sound is not None:
            samples = voice(duration, sample_rate)[None]  # [1, n]
            if silent:
                samples = np.zeros_like(samples)
            if stereo:  # right channel silent: the mono downmix is the left channel, scaled
                samples = np.concatenate([samples, np.zeros_like(samples)])  # [2, n]
            mux_audio(out, sound, samples, sample_rate, layout)
    return path


def mux_audio(out, sound, samples: np.ndarray, sample_rate: int, layout: str) -> None:
    """Encode planar float samples [C, n] into the audio stream `sound` of container `out`."""
    for start in range(0, samples.shape[1], 1024):
        chunk = np.ascontiguousarray(samples[:, start : start + 1024])  # [C, 1024]
        frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in sound.encode(frame):
            out.mux(packet)
    for packet in sound.encode():
        out.mux(packet)


def truncate(src: str | Path, dst: str | Path, fraction: float = 0.5) -> Path:
    """Copy the first `fraction` of the bytes of `src` to `dst` (a damaged download)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def write_manifest(path: str | Path, rows: list[dict]) -> Path:
    """A manifest CSV with the contract columns; each row needs video_id, clip_id, video (the other
    columns default to split train, shard 0, labels 0.0, status ok and empty strings)."""
    records = []
    for row in rows:
        record = {
            "key": f"{row['video_id']}/{row['clip_id']}",
            "video_id": row["video_id"],
            "clip_id": row["clip_id"],
            "split": row.get("split", "train"),
            "shard": row.get("shard", 0),
            "video": str(row["video"]),
            "duration": row.get("duration", ""),
            "text": row.get("text", ""),
            "label": row.get("label", "0.0"),
            "label_T": row.get("label_T", "0.0"),
            "label_A": row.get("label_A", "0.0"),
            "label_V": row.get("label_V", "0.0"),
            "annotation": row.get("annotation", ""),
            "status": row.get("status", "ok"),
            "reason": row.get("reason", ""),
        }
        records.append(record)
    pd.DataFrame(records).to_csv(path, index=False)
    return Path(path)


def read_sidecars(out: str | Path) -> dict[str, dict]:
    """The per-clip JSON sidecars `<out>/<video_id>/<clip_id>.json`, by key `video_id/clip_id`."""
    return {
        f"{p.parent.name}/{p.stem}": json.loads(p.read_text()) for p in Path(out).glob("*/*.json")
    }


def file_id(path: Path) -> tuple[int, int]:
    """(inode, mtime in ns) of `path`: unchanged unless the file was rewritten or replaced."""
    info = path.stat()
    return info.st_ino, info.st_mtime_ns


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + (
    "the a movie film was is good bad great awful i really liked it not very , . ! and but so "
    "acting story plot ending boring fun"
).split()


def make_tiny_bert(folder: str | Path, hidden: int = 16) -> Path:
    """A randomly initialised 1-layer BertModel + tokenizer saved with `save_pretrained`."""
    import torch
    import transformers
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(VOCAB) + "\n")
    tokenizer_cls = transformers.BertTokenizer
    if "vocab" in inspect.signature(tokenizer_cls.__init__).parameters:  # transformers >= 5
        tokenizer = tokenizer_cls(vocab=str(vocab_file))
    else:
        tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab_file))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_counter_clip(
    path: str | Path, n_frames: int = 40, fps: int = 25, step: int = 6, bframes: bool = False
) -> Path:
    """A video-only mp4 whose frame i is uniform grey at level step * i (to identify frames).

    bframes: encode with non-reference B-frames (else I and P frames only, lossless).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "0"}
        if bframes:
            video.options = {
                "preset": "medium",
                "crf": "10",
                "bf": "3",
                "x264-params": "b-pyramid=none",
            }
        for i in range(n_frames):
            img = np.full((48, 64, 3), step * i, np.uint8)  # [H, W, 3]
            for packet in video.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def kill_midway(args: list[str], out: Path, done_clips: int = 2, timeout: float = 120.0) -> int:
    """Run `aemt <args>` in a child and SIGKILL it once `done_clips` per-clip JSON files exist under
    `out` (a shard interrupted mid-way); returns the killed child's pid."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "aemt", *args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while len(list(out.glob("*/*.json"))) < done_clips:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, f"no {done_clips} clips finished in {timeout:g} s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return proc.pid
