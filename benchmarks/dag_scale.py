"""DAG-construction benchmark: how long `snakemake -n` takes for a large dataset (default 15,000 clips).

Writes, in a temporary directory, a copy of the workflow files, a synthetic `label.csv` (+ an optional
`unlabeled.csv`) whose video paths point at a `Raw/` folder with no videos in it (none are needed for a
dry run), and a config file naming that dataset. Then it times

1. `snakemake -n` before the manifest exists (the DAG up to the `manifest` checkpoint),
2. the real `manifest` job (`snakemake --cores 1 results/<ds>/manifest.csv`: validates 15,000 rows and
   probes 15,000 missing videos), unless `--fake-manifest` writes the manifest directly,
3. `snakemake -n` for the final targets (`all` and `sensitivity` by default), the full DAG,

and prints each wall time with the job count and the jobs per rule. Target: step 3 in < 30 s.

    .venv/bin/python benchmarks/dag_scale.py                 # 15,000 clips, shard size 64
    .venv/bin/python benchmarks/dag_scale.py --clips 2000 --shard-size 32 --keep /tmp/dag
    .venv/bin/python benchmarks/dag_scale.py --profile       # cProfile of the full dry run

`write_dataset` and `write_fake_manifest` are also used by tests/test_slurm.py.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from aemt.constants import LABEL_COLUMNS, MANIFEST_COLUMNS

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "rules", "workflow", "config", "profiles", "envs")


@dataclass(frozen=True)
class BenchConfig:
    """What to generate and which targets to dry-run."""

    clips: int = 15000  # labelled clips in label.csv
    unlabeled: int = 0  # extra rows in unlabeled.csv (0: no unlabeled file)
    clips_per_video: int = 20
    shard_size: int = 64
    dataset: str = "bench"
    targets: tuple[str, ...] = ("all", "sensitivity")


def split_of(i: int, n: int) -> str:
    """70 / 15 / 15 train / valid / test, in label.csv order."""
    if i < int(n * 0.7):
        return "train"
    return "valid" if i < int(n * 0.85) else "test"


def _rows(n: int, prefix: str, per_video: int) -> list[tuple[str, str, int]]:
    return [(f"{prefix}{i // per_video:05d}", f"{i % per_video:04d}", i) for i in range(n)]


def write_dataset(root: Path, cfg: BenchConfig) -> None:
    """Write `root/label.csv` (+ `unlabeled.csv`); labels cycle over [-1, 1] (scale sims)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Raw").mkdir(exist_ok=True)  # the video pattern points here; no videos are written
    with open(root / "label.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(LABEL_COLUMNS)
        for video_id, clip_id, i in _rows(cfg.clips, "v", cfg.clips_per_video):
            label = round(((i * 7) % 21) / 10 - 1.0, 1)
            text = f"synthetic transcript number {i} for the scale benchmark"
            mode = split_of(i, cfg.clips)
            out.writerow([video_id, clip_id, text, label, label, label, label, "", mode])
    if cfg.unlabeled:
        with open(root / "unlabeled.csv", "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["video_id", "clip_id", "text"])
            for video_id, clip_id, i in _rows(cfg.unlabeled, "u", cfg.clips_per_video):
                out.writerow([video_id, clip_id, f"unlabeled transcript {i}"])


def write_fake_manifest(path: Path, root: Path, cfg: BenchConfig) -> int:
    """Write a manifest in the contract's format (every clip `missing_video`); return its shard count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        (v, c, i, split_of(i, cfg.clips)) for v, c, i in _rows(cfg.clips, "v", cfg.clips_per_video)
    ]
    rows += [(v, c, i, "unlabeled") for v, c, i in _rows(cfg.unlabeled, "u", cfg.clips_per_video)]
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(MANIFEST_COLUMNS)
        for row_index, (video_id, clip_id, i, split) in enumerate(rows):
            label = "" if split == "unlabeled" else round(((i * 7) % 21) / 10 - 1.0, 1)
            video = root / "Raw" / video_id / f"{clip_id}.mp4"
            out.writerow(
                [f"{video_id}/{clip_id}", video_id, clip_id, split, row_index // cfg.shard_size]
                + [video, 0.0, f"transcript {i}", label, label, label, label, ""]
                + ["missing_video", "video file not found"]
            )
    return -(-len(rows) // cfg.shard_size)


def write_config(path: Path, root: Path, cfg: BenchConfig) -> None:
    lines = [
        f"run: [{cfg.dataset}]",
        "datasets:",
        f"  {cfg.dataset}:",
        f"    root: {root}",
        "    labels: label.csv",
        f"    unlabeled: {'unlabeled.csv' if cfg.unlabeled else 'null'}",
        '    video: "Raw/{video_id}/{clip_id}.mp4"',
        "    language: en",
        "    scale: sims",
        "extract:",
        f"  shard_size: {cfg.shard_size}",
    ]
    path.write_text("\n".join(lines) + "\n")


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow definition (no results, data or logs) into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO_ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def prepare(work: Path, cfg: BenchConfig) -> Path:
    """Workflow copy + dataset + config file in `work`; returns the config file."""
    copy_workflow(work)
    root = work / "data" / cfg.dataset
    write_dataset(root, cfg)
    config = work / "bench.yaml"
    write_config(config, root, cfg)
    return config


def job_counts(text: str) -> dict[str, int]:
    """Parse the 'Job stats' table of `snakemake -n`: {rule: count, ..., 'total': n}."""
    counts: dict[str, int] = {}
    in_table = False
    for line in text.splitlines():
        if line.startswith("Job stats:"):
            in_table, counts = True, {}
            continue
        match = re.match(r"^(\S+)\s+(\d+)\s*$", line)
        if in_table and match:
            counts[match.group(1)] = int(match.group(2))
            if match.group(1) == "total":
                in_table = False
    return counts


def snakemake(work: Path, *args: str, timeout: int = 3600) -> tuple[float, str]:
    """Run the venv's snakemake in `work`, its bin/ first on PATH; return (seconds, output)."""
    exe = Path(sys.executable).with_name("snakemake")
    start = time.perf_counter()
    env = dict(os.environ, PATH=f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(
        [str(exe), *args], cwd=work, capture_output=True, text=True, timeout=timeout, env=env
    )
    seconds = time.perf_counter() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{output[-4000:]}"
        )
    return seconds, output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=BenchConfig.clips)
    parser.add_argument("--unlabeled", type=int, default=BenchConfig.unlabeled)
    parser.add_argument("--shard-size", type=int, default=BenchConfig.shard_size)
    parser.add_argument("--targets", nargs="+", default=list(BenchConfig.targets))
    parser.add_argument("--fake-manifest", action="store_true", help="skip the real manifest job")
    parser.add_argument("--profile", action="store_true", help="cProfile the full dry run (top 25)")
    parser.add_argument(
        "--keep", type=Path, help="work here and keep the files (default: a tmp dir)"
    )
    args = parser.parse_args(argv)
    cfg = BenchConfig(
        clips=args.clips,
        unlabeled=args.unlabeled,
        shard_size=args.shard_size,
        targets=tuple(args.targets),
    )
    work = args.keep or Path(tempfile.mkdtemp(prefix="aemt-dag-"))
    config = prepare(work, cfg)
    common = ("--configfile", str(config), "--workflow-profile", "none")
    print(
        f"{cfg.clips} labelled + {cfg.unlabeled} unlabeled clips, shard size {cfg.shard_size}, in {work}"
    )

    seconds, out = snakemake(work, "-n", *common, *cfg.targets)
    print(
        f"dry run before the manifest checkpoint: {seconds:6.1f} s, {job_counts(out).get('total')} jobs"
    )

    manifest = work / "results" / cfg.dataset / "manifest.csv"
    if args.fake_manifest:
        shards = write_fake_manifest(manifest, work / "data" / cfg.dataset, cfg)
        print(f"fake manifest written: {shards} shards")
    else:
        seconds, _ = snakemake(work, "--cores", "1", *common, str(manifest.relative_to(work)))
        print(
            f"manifest job (validate + probe {cfg.clips + cfg.unlabeled} missing videos): {seconds:6.1f} s"
        )

    full = ("-n", *common, *cfg.targets)
    if args.profile:
        _profile(work, full)
    seconds, out = snakemake(work, *full)
    counts = job_counts(out)
    total = counts.pop("total", 0)
    print(f"dry run, full DAG ({' '.join(cfg.targets)}): {seconds:6.1f} s, {total} jobs")
    for rule, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"  {rule:<18} {n:6d}")
    verdict = "OK" if seconds < 30 else "SLOW"
    print(f"{verdict}: target < 30 s for the full dry run")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _profile(work: Path, args: tuple[str, ...]) -> None:
    """Run snakemake's CLI in a child Python under cProfile and print the 25 costliest calls."""
    code = (
        "import cProfile, pstats, sys; from snakemake.cli import main; "
        f"sys.argv = ['snakemake', *{list(args)!r}]; "
        "p = cProfile.Profile(); p.enable()\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "p.disable(); pstats.Stats(p).sort_stats('cumulative').print_stats(25)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, check=False
    )
    print(proc.stdout[-12000:])


if __name__ == "__main__":
    raise SystemExit(main())
