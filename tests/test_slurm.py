"""SLURM scale-out (profiles/slurm, profiles/slurm-ci): checked without a cluster, and end to end.

Without a cluster (needs only snakemake-executor-plugin-slurm): `snakemake --lint` is clean under the
cluster profile, and a dry run of the full DAG under it gives every job the partition / account taken
from the environment, GPU stages the GPU partition and gpu=1.

With a cluster (AEMT_SLURM_TEST=1, e.g. the single-node one of .ci/slurm/setup.sh): the tiny DAG of
config/test.yaml runs through `--profile profiles/slurm-ci`; every job must have gone through sbatch
(Snakemake's SLURM job ids, each confirmed by `scontrol show job` and slurmctld's submit log, one per
job of `snakemake -n`), and the aligned tensors and metrics must equal those of the local run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests._workflow_helpers import REPO_ROOT, copy_workflow, read_yaml

GPU_RULES = {"pretrain", "finetune"}
# The per-shard rules behind the manifest checkpoint (speech recognition and the three extractors).
SHARD_RULES = ("asr", "extract_text", "extract_audio", "extract_visual")
SLURM_DIR = Path(os.environ.get("AEMT_SLURM_DIR", "/tmp/aemt-slurm"))  # .ci/slurm/setup.sh
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")
needs_plugin = pytest.mark.skipif(
    importlib.util.find_spec("snakemake_executor_plugin_slurm") is None,
    reason="snakemake-executor-plugin-slurm is not installed (pip install -e '.[slurm]')",
)


def _env(**extra: str) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)  # `aemt` for the jobs, also inside SLURM jobs
    return dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}", **extra)


def _snakemake(work: Path, *args: str, env: dict[str, str] | None = None, timeout: int = 600):
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run(
        [str(exe), *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or _env(),
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{output[-6000:]}"
    return output


def _dag_scale():
    """benchmarks/dag_scale.py as a module (synthetic dataset + manifest writers)."""
    spec = importlib.util.spec_from_file_location(
        "dag_scale", REPO_ROOT / "benchmarks/dag_scale.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["dag_scale"] = module  # dataclasses look their module up while building the class
    spec.loader.exec_module(module)
    return module


def job_blocks(dry_run: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of each job that a dry run would submit (`localrule` jobs left out)."""
    jobs = []
    for block in re.split(r"\n(?=\S)", dry_run):
        head = re.match(r"(?:rule|checkpoint) (\w+):", block)
        found = re.search(r"^\s+resources: (.*)$", block, re.M)
        if head and found:
            pairs = (item.split("=", 1) for item in found.group(1).split(", ") if "=" in item)
            jobs.append((head.group(1), dict(pairs)))
    return jobs


def job_stats(dry_run: str) -> Counter:
    """Jobs per rule from the 'Job stats' table of a dry run (without the total)."""
    table = dry_run.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    rows = re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M)
    return Counter({m.group(1): int(m.group(2)) for m in rows if m.group(1) != "total"})


# ---- without a cluster ------------------------------------------------------------------------------


@needs_plugin
def test_lint_is_clean_with_the_slurm_profile(tmp_path):
    work = copy_workflow(tmp_path)
    out = _snakemake(
        work, "--lint", "--profile", "profiles/slurm", "--configfile", "config/test.yaml"
    )
    assert "Congratulations, your workflow is in a good condition!" in out


@needs_plugin
def test_slurm_profile_sets_partition_account_and_gpu_of_every_job(tmp_path):
    """Dry run of the whole DAG (a synthetic 120-clip dataset with a written manifest, so the
    extraction fan-out is known) under profiles/slurm with the partition/account variables set."""
    dag = _dag_scale()
    work = copy_workflow(tmp_path)
    cfg = dag.BenchConfig(clips=100, unlabeled=20, shard_size=32, dataset="bench")
    root = work / "data" / cfg.dataset
    dag.write_dataset(root, cfg)
    dag.write_config(work / "bench.yaml", root, cfg)
    shards = dag.write_fake_manifest(work / f"results/{cfg.dataset}/manifest.csv", root, cfg)
    # The label files must be older than the manifest, or the dry run plans to redo the manifest and
    # shows the resources of every job after it as <TBD>.
    old = time.time() - 600
    for path in root.rglob("*.csv"):
        os.utime(path, (old, old))
    env = _env(
        AEMT_SLURM_PARTITION="cpu_q", AEMT_SLURM_GPU_PARTITION="gpu_q", AEMT_SLURM_ACCOUNT="proj_x"
    )
    out = _snakemake(
        work, "-n", "--profile", "profiles/slurm", "all", "--configfile", "bench.yaml", env=env
    )
    jobs = job_blocks(out)
    rules = Counter(rule for rule, _ in jobs)
    assert rules["extract_visual"] == shards == 4
    assert {"extract_text", "extract_audio", "align", "aggregate"} <= set(rules)
    assert GPU_RULES <= set(rules)
    for rule, res in jobs:
        want = "gpu_q" if rule in GPU_RULES else "cpu_q"
        assert res.get("slurm_partition") == want, f"{rule}: {res}"
        assert res.get("slurm_account") == "proj_x", f"{rule}: {res}"
        assert ("gpu" in res) == (rule in GPU_RULES), f"{rule}: {res}"
        if rule in GPU_RULES:
            assert res["gpu"] == "1"
        assert int(res["runtime"]) > 0 and int(res["mem_mb"]) > 0, f"{rule}: {res}"


def test_ci_profile_keeps_squeue_status_and_the_ci_partition():
    """The CI profile must not fall back to sacct (no slurmdbd: it would wait forever)."""
    profile = read_yaml("profiles/slurm-ci/config.yaml")
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"
    assert profile["default-resources"]["slurm_partition"] == "'debug'"
    setup = (REPO_ROOT / ".ci/slurm/setup.sh").read_text()
    min_job_age = int(re.search(r"^MinJobAge=(\d+)", setup, re.M).group(1))
    assert min_job_age >= 3 * profile["slurm-init-seconds-before-status-checks"]
    assert "PartitionName=debug" in setup


# ---- with a cluster ----------------------------------------------------------------------------------


def _sinfo_error() -> str | None:
    try:
        proc = subprocess.run(
            ["sinfo", "-h", "-o", "%P %T"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    if proc.returncode != 0 or not proc.stdout.strip():
        return proc.stderr.strip() or "sinfo lists no partition"
    return None


def _run_with_sigint(cmd: list[str], cwd: Path, env: dict[str, str], limit: int) -> tuple[int, str]:
    """Run `cmd`; past `limit` seconds send SIGINT (SIGTERM does not stop Snakemake waiting on
    SLURM jobs), then SIGKILL 60 s later. Returns (exit code, output)."""
    log = cwd / "slurm_run.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            # a background job of a non-interactive shell inherits SIGINT as ignored: undo that
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            code = -1
    return code, log.read_text()


def _scontrol_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, timeout=30
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Fail early (before the local reference run) when AEMT_SLURM_TEST=1 but no cluster answers."""
    error = _sinfo_error()
    if error:
        pytest.fail(f"AEMT_SLURM_TEST=1 but sinfo does not work ({error}): run .ci/slurm/setup.sh")


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("AEMT_SLURM_TEST") != "1",
    reason="set AEMT_SLURM_TEST=1 with a running cluster (bash .ci/slurm/setup.sh)",
)
def test_tiny_dag_through_slurm_matches_local_run(slurm_cluster, tiny_run, tmp_path):
    work = copy_workflow(tmp_path / "slurm")
    # Same environment as the local run of tests/conftest.py (thread counts come from the rules).
    env = _env(OMP_NUM_THREADS="1")
    exe = str(Path(sys.executable).with_name("snakemake"))
    limit = int(os.environ.get("AEMT_SLURM_TIMEOUT", "2400"))
    start = time.perf_counter()
    args = ["--profile", "profiles/slurm-ci", "all", "--configfile", "config/test.yaml"]
    code, log = _run_with_sigint([exe, *args], work, env, limit)
    wall = time.perf_counter() - start
    print(f"tiny DAG through SLURM: {wall:.1f} s")
    assert code == 0, f"snakemake through SLURM failed or timed out ({code}):\n{log[-6000:]}"

    # Every job that runs a command went through sbatch, once.
    # `-n -F` re-plans the manifest checkpoint and so cannot see the extraction jobs behind it;
    # `-n -R asr extract_*` plans everything from the per-shard jobs on. Together: every job of the DAG.
    cfg = ("--configfile", "config/test.yaml")
    expected = job_stats(_snakemake(work, "-n", "all", "-F", *cfg, env=env)) | job_stats(
        _snakemake(work, "-n", "all", "-R", *SHARD_RULES, *cfg, env=env)
    )
    local_only = set(re.findall(r"^localrule (\w+):", log, re.M))
    assert local_only <= {"all"}, f"jobs run outside SLURM: {local_only}"
    submitted = SUBMITTED.findall(log)
    assert submitted, f"no job was submitted to SLURM:\n{log[-3000:]}"
    ctld = SLURM_DIR / "var/log/slurmctld.log"
    ctld_ids = set(re.findall(r"_slurm_rpc_submit_batch_job: JobId=(\d+)", ctld.read_text()))
    per_rule: Counter = Counter()
    for job_id, job_log in submitted:
        info = _scontrol_job(job_id)
        assert info.get("JobState") == "COMPLETED", f"SLURM job {job_id}: {info}"
        rule = re.match(r"rule_(\w+?)(?:_wildcards_.*)?$", info["Comment"]).group(1)
        assert f"rule_{rule}" in job_log
        assert job_id in ctld_ids, f"job {job_id} is not in {ctld}"
        if rule in GPU_RULES:  # the real `sbatch --gpus=1` path (fake GPU of setup.sh)
            assert "gpu" in info.get("TresPerJob", "") + info.get("TresPerNode", ""), info
        per_rule[rule] += 1
    assert per_rule == expected - Counter({r: expected[r] for r in local_only}), (
        f"sbatch jobs per rule {dict(per_rule)} != jobs of `snakemake -n` {dict(expected)}"
    )

    # Same results as the local run (tests/conftest.py::tiny_run).
    slurm, local = work / "results/tiny", tiny_run / "results/tiny"
    arrays = sorted(p.relative_to(local) for p in (local / "aligned").rglob("*.npy"))
    assert len(arrays) == 4 * 6  # train/valid/test/unlabeled x text/audio/vision (+ masks)
    for rel in arrays:
        assert np.array_equal(np.load(local / rel), np.load(slurm / rel)), rel
    for rel in sorted(p.relative_to(local) for p in (local / "aligned").rglob("meta.csv")):
        pd.testing.assert_frame_equal(pd.read_csv(local / rel), pd.read_csv(slurm / rel))
    test = read_yaml("config/test.yaml")
    seeds = test["seeds"]
    for variant in test["run_variants"]:
        for seed in seeds:
            run = Path("finetune") / variant / str(seed)
            assert json.loads((slurm / run / "metrics.json").read_text()) == json.loads(
                (local / run / "metrics.json").read_text()
            ), run
            pd.testing.assert_frame_equal(
                pd.read_csv(local / run / "predictions.csv"),
                pd.read_csv(slurm / run / "predictions.csv"),
            )
    pd.testing.assert_frame_equal(
        pd.read_csv(local / "summary.csv"), pd.read_csv(slurm / "summary.csv")
    )
