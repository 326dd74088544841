"""Speed of the feature half on ONE core: manifest -> asr -> extract (text, audio, visual) -> align.

Usage:
    python benchmarks/feature_speed.py                 # generated demo dataset (aemt.dataset.demo) + ../shared/data
    python benchmarks/feature_speed.py --root data/demo --labels label.csv --unlabeled unlabeled.csv
    python benchmarks/feature_speed.py --demo-clips 60 --no-shared --json speed.json
    python benchmarks/feature_speed.py --frames-per-bin 0.5   # the visual trade-off (masked bins)

Every stage runs as the real CLI (`aemt manifest`, `aemt extract ...`, `aemt align`) in a child process
pinned to one CPU (sched_setaffinity, --threads 1, OMP_NUM_THREADS=1), so the wall times include
start-up and model loading; `--startup-repeats` also times each extraction job with nothing left to do
(its start-up). Reported per stage: wall time, clip-seconds processed per wall-second
(x real time), peak RSS of the child (os.wait4). For visual: frames analysed per second; for asr
(`--asr-mode`, default missing: every clip with audio is recognised for its word timings, Whisper
tiny.en, beam 1, int8) the clip-seconds recognised per second, also on the English real clips. A component
profile then times, per clip-second, in-process and on the same core: audio decode, openSMILE, video
decode + keep/convert, and the face work (searches on tiles, one FaceLandmarker per tracked face; the
speaker choice itself is not included: a few ms per clip). The target is >= 3x real time for the whole
feature half.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = ("mosi/clips/*.mp4", "chsims/clips/*.mp4", "english_unlabelled/*.mp4")
ENGLISH_CLIPS = ("mosi/clips/*.mp4", "english_unlabelled/*.mp4")  # speech recognition: tiny.en


def run_stage(name: str, args: list[str], cpu: int) -> dict:
    """Run `aemt <args>` pinned to `cpu`; return wall time (s) and peak RSS (MiB) of the child."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "GLOG_minloglevel": "2"}
    cmd = [sys.executable, "-m", "aemt", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}):\n{stderr.decode()[-3000:]}")
    cpu_s = usage.ru_utime + usage.ru_stime  # robust to other load on the machine
    return {"stage": name, "wall_s": wall, "cpu_s": cpu_s, "peak_rss_mib": usage.ru_maxrss / 1024}


def _add(total: dict, res: dict) -> None:
    """Add one run's wall and CPU seconds to a stage's `total`; keep the larger peak RSS."""
    total["wall_s"] += res["wall_s"]
    total["cpu_s"] += res["cpu_s"]
    total["peak_rss_mib"] = max(total["peak_rss_mib"], res["peak_rss_mib"])


def demo_root(work: Path, clips: int) -> tuple[Path, str, str | None]:
    """Generate the demo dataset (aemt.dataset.demo) with about `clips` clips; (root, labels, unlabeled)."""
    try:
        from aemt.dataset import demo
    except ImportError as err:
        raise SystemExit("aemt.dataset.demo is not available: pass --root DATASET") from err
    n_lab = max(3, clips * 2 // 3)
    demo.generate(
        work / "demo", n_train=n_lab // 2, n_valid=n_lab // 4, n_test=n_lab - n_lab // 2 - n_lab // 4,
        n_unlabeled=max(0, clips - n_lab),
    )  # fmt: skip
    return work / "demo", "label.csv", "unlabeled.csv"


def shared_manifest(
    shared: Path, out: Path, patterns: tuple[str, ...] = SHARED_CLIPS
) -> Path | None:
    """A one-shard manifest over the real clips in ../shared/data (read in place, never copied)."""
    import pandas as pd

    from aemt.constants import MANIFEST_COLUMNS
    from aemt.features.media import video_info

    paths = sorted(p for pattern in patterns for p in shared.glob(pattern))
    if not paths:
        return None
    rows = []
    for path in paths:
        group = path.relative_to(shared).parts[0]
        row = dict.fromkeys(MANIFEST_COLUMNS, "")  # every column, in the contract's order
        row.update(key=f"{group}/{path.stem}", video_id=group, clip_id=path.stem, split="unlabeled",
                   shard=0, video=str(path), duration=video_info(path).duration, status="ok")  # fmt: skip
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    return out


def asr_stage(manifest: Path, out: Path, cpu: int, mode: str) -> dict:
    """`aemt asr` over every shard (one core); clips recognised and the median seconds per clip."""
    import pandas as pd

    shards = sorted({int(s) for s in pd.read_csv(manifest, dtype=str)["shard"]})
    total = {"stage": f"asr ({mode})", "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0}
    for shard in shards:
        args = ["asr", "--manifest", str(manifest), "--shard", str(shard), "--out-dir", str(out),
                "--done", str(out / f"shard_{shard}.csv"), "--mode", mode, "--threads", "1"]  # fmt: skip
        res = run_stage(f"asr {shard}", args, cpu)
        _add(total, res)
    records = [json.loads(p.read_text()) for p in out.glob("*/*.json")]
    per_clip = sorted(r["seconds"] for r in records if r.get("recognised") is not None)
    total["recognised_clips"] = len(per_clip)
    total["median_s_per_clip"] = per_clip[len(per_clip) // 2] if per_clip else 0.0
    return total


def extract_stages(
    manifest: Path,
    features: Path,
    cpu: int,
    modalities: tuple[str, ...] = ("text", "audio", "visual"),
    frames_per_bin: float = 1.0,
    transcripts: Path | None = None,
) -> list[dict]:
    import pandas as pd

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    shards = sorted({int(s) for s in table["shard"]})
    results = []
    for modality in modalities:
        total = {"stage": f"extract {modality}", "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0}
        for shard in shards:
            out = features / modality
            done = out / f"shard_{shard}.csv"
            args = ["extract", modality, "--manifest", str(manifest), "--shard", str(shard),
                    "--out-dir", str(out), "--done", str(done), "--threads", "1"]  # fmt: skip
            if modality == "visual":
                args += ["--frames-per-bin", str(frames_per_bin)]
            if modality == "text" and transcripts is not None:  # the asr stage's shard file
                args += ["--transcripts", str(transcripts / f"shard_{shard}.csv")]
            res = run_stage(f"extract {modality} {shard}", args, cpu)
            _add(total, res)
        if modality == "visual":
            frames = sum(
                json.loads(p.read_text()).get("decode", {}).get("frames_analysed", 0)
                for p in (features / "visual").glob("*/*.json")
            )
            total["frames"] = frames
            total["frames_per_s"] = frames / total["wall_s"]
        results.append(total)
    return results


def startup_stages(manifest: Path, features: Path, cpu: int, repeats: int) -> dict[str, float]:
    """Start-up of each extraction job: the CLI rerun on shard 0 once every clip is done (resume path:
    imports, manifest, model hash, done-file), median wall seconds over `repeats` runs."""
    out = {}
    for modality in ("text", "audio", "visual"):
        args = ["extract", modality, "--manifest", str(manifest), "--shard", "0", "--out-dir",
                str(features / modality), "--done", str(features / modality / "again.csv")]  # fmt: skip
        walls = sorted(run_stage(f"start {modality}", args, cpu)["wall_s"] for _ in range(repeats))
        out[f"extract {modality}"] = walls[len(walls) // 2]
    return out


def profile_components(manifest: Path, limit: int) -> dict:
    """Per clip-second CPU cost (ms) of each piece of work, in-process on the current core."""
    import pandas as pd

    from aemt.features.base import make_extractor
    from aemt.features.media import decode_audio, sample_frames, sample_times

    table = pd.read_csv(manifest, dtype=str, keep_default_na=False).head(limit)
    audio = make_extractor("audio", {})
    visual = make_extractor("visual", {})
    visual.load()
    tracker = visual.tracker
    cost = {"audio_decode": 0.0, "opensmile": 0.0, "video_decode_convert": 0.0, "faces": 0.0}
    seconds, frames, calls = 0.0, 0, tracker.detector.calls
    for row in table.itertuples():
        duration = float(row.duration)
        seconds += duration
        t0 = time.process_time()
        decoded = decode_audio(row.video, 16000)
        t1 = time.process_time()
        if decoded is not None and decoded[0].size:
            audio._features(*decoded)
        cost["audio_decode"] += t1 - t0
        cost["opensmile"] += time.process_time() - t1
        times = sample_times(duration, visual.sample_rate(duration))
        tracker.start_clip()
        previous = None
        frames_iter = iter(sample_frames(row.video, times, visual.options.max_side))
        while True:  # decode and face work interleaved, timed apart
            t2 = time.process_time()
            item = next(frames_iter, None)
            t3 = time.process_time()
            cost["video_decode_convert"] += t3 - t2
            if item is None:
                break
            t, img = item
            frames += 1
            if img is not previous:  # a repeated frame is analysed once
                tracker.min_face = tracker.min_face or visual.options.min_face * img.shape[0]
                tracker.step(img, t)
                previous = img
            cost["faces"] += time.process_time() - t3
        tracker.end_clip()
        tracker.min_face = 0.0
    visual.close()
    per = {f"{k}_ms_per_clip_s": 1000 * v / max(seconds, 1e-9) for k, v in cost.items()}
    per["faces_ms_per_frame"] = 1000 * cost["faces"] / max(frames, 1)
    per["detector_calls"] = tracker.detector.calls - calls
    per["clips"], per["clip_seconds"], per["frames"] = len(table), seconds, frames
    return per


def report(title: str, clip_seconds: float, stages: list[dict]) -> list[dict]:
    """Print the table; 'x real time' = clip-seconds / wall-seconds (and / CPU-seconds)."""
    print(f"\n== {title}: {clip_seconds:.1f} clip-seconds ==")
    head = f"{'stage':<22}{'wall s':>8}{'cpu s':>8}{'x rt wall':>10}{'x rt cpu':>10}{'RSS MiB':>9}"
    print(head + "  extra")
    for s in stages:
        s["x_real_time"] = clip_seconds / s["wall_s"]
        s["x_real_time_cpu"] = clip_seconds / max(s["cpu_s"], 1e-9)
        extra = ""
        if "frames" in s:
            s["frames_per_cpu_s"] = s["frames"] / max(s["cpu_s"], 1e-9)
            extra = f"{s['frames_per_s']:.1f} frames/s wall, {s['frames_per_cpu_s']:.1f} per cpu-s"
        if "recognised_clips" in s:
            extra = (
                f"{s['recognised_clips']} clips recognised, median {s['median_s_per_clip']:.2f} s "
                "per clip (in-process)"
            )
        print(
            f"{s['stage']:<22}{s['wall_s']:>8.2f}{s['cpu_s']:>8.2f}{s['x_real_time']:>10.2f}"
            f"{s['x_real_time_cpu']:>10.2f}{s['peak_rss_mib']:>9.0f}  {extra}"
        )
    wall, cpu = sum(s["wall_s"] for s in stages), sum(s["cpu_s"] for s in stages)
    print(
        f"{'total':<22}{wall:>8.2f}{cpu:>8.2f}{clip_seconds / wall:>10.2f}{clip_seconds / cpu:>10.2f}"
    )
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, help="dataset folder (label.csv + Raw/); default: demo"
    )
    parser.add_argument("--labels", default="label.csv")
    parser.add_argument("--unlabeled", default=None)
    parser.add_argument("--video-pattern", default="Raw/{video_id}/{clip_id}.mp4")
    parser.add_argument("--scale", default="sims", choices=["sims", "mosei"])
    parser.add_argument("--demo-clips", type=int, default=24, help="size of the generated demo")
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--no-shared", action="store_true", help="skip the real clips")
    parser.add_argument("--cpu", type=int, default=min(os.sched_getaffinity(0)))
    parser.add_argument(
        "--profile-clips", type=int, default=12, help="clips in the component profile"
    )
    parser.add_argument(
        "--frames-per-bin",
        type=float,
        default=1.0,
        help="visual.frames_per_bin (default 1, the pipeline default; 0.5 leaves bins masked)",
    )
    parser.add_argument(
        "--startup-repeats", type=int, default=3, help="runs per start-up measurement (0: none)"
    )
    parser.add_argument(
        "--asr-mode",
        default="missing",
        choices=["never", "missing", "always"],
        help="asr stage mode",
    )
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {args.cpu})  # the component profile runs here, on the same core
    results: dict = {"cpu": args.cpu, "frames_per_bin": args.frames_per_bin}
    with tempfile.TemporaryDirectory(prefix="aemt_speed_") as tmp:
        work = Path(tmp)
        if args.root is None:
            root, labels, unlabeled = demo_root(work, args.demo_clips)
        else:
            root, labels, unlabeled = args.root, args.labels, args.unlabeled
        manifest = work / "results" / "manifest.csv"
        margs = ["manifest", "--root", str(root), "--labels", labels, "--video-pattern",
                 args.video_pattern, "--scale", args.scale, "--shard-size", str(args.shard_size),
                 "--out", str(manifest)]  # fmt: skip
        if unlabeled:
            margs += ["--unlabeled", unlabeled]
        stages = [run_stage("manifest", margs, args.cpu)]
        asr_dir = work / "results" / "asr"
        stages.append(asr_stage(manifest, asr_dir, args.cpu, args.asr_mode))
        stages += extract_stages(
            manifest, work / "results" / "features", args.cpu, frames_per_bin=args.frames_per_bin,
            transcripts=asr_dir,
        )  # fmt: skip
        import pandas as pd

        table = pd.read_csv(manifest, dtype=str, keep_default_na=False)
        align = {"stage": "align (all splits)", "wall_s": 0.0, "cpu_s": 0.0, "peak_rss_mib": 0.0}
        for split in sorted(set(table["split"])):
            res = run_stage(
                f"align {split}",
                ["align", "--manifest", str(manifest), "--features-dir",
                 str(work / "results" / "features"), "--split", split, "--length", "50",
                 "--out-dir", str(work / "results" / "aligned" / split)],
                args.cpu,
            )  # fmt: skip
            _add(align, res)
        stages.append(align)
        seconds = float(pd.to_numeric(table["duration"]).sum())
        title = f"dataset {root} ({len(table)} clips, frames_per_bin {args.frames_per_bin:g})"
        results["dataset"] = report(title, seconds, stages)
        if args.startup_repeats > 0:
            features = work / "results" / "features"
            results["startup_s"] = startup_stages(
                manifest, features, args.cpu, args.startup_repeats
            )
            print("start-up (s, median, every clip already done):", _fmt(results["startup_s"]))
        results["dataset_components"] = profile_components(manifest, args.profile_clips)
        print("components (ms per clip-second):", _fmt(results["dataset_components"]))
        if not args.no_shared and args.shared.is_dir():
            real = shared_manifest(args.shared, work / "real" / "manifest.csv")
            if real is not None:
                stages = extract_stages(
                    real, work / "real" / "features", args.cpu, ("audio", "visual"),
                    args.frames_per_bin,
                )  # fmt: skip
                seconds = float(pd.read_csv(real)["duration"].sum())
                results["shared"] = report(f"real clips in {args.shared}", seconds, stages)
                english = shared_manifest(args.shared, work / "en" / "manifest.csv", ENGLISH_CLIPS)
                if english is not None:
                    stage = asr_stage(english, work / "en" / "asr", args.cpu, "always")
                    seconds = float(pd.read_csv(english)["duration"].sum())
                    results["shared_asr"] = report(f"English real clips in {args.shared}", seconds,
                                                   [stage])  # fmt: skip
                results["shared_components"] = profile_components(real, args.profile_clips)
                print("components (ms per clip-second):", _fmt(results["shared_components"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def _fmt(d: dict) -> str:
    return ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in d.items())


if __name__ == "__main__":
    raise SystemExit(main())
