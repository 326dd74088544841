"""Every `snakemake` command line written in the README, docs/ and the profiles' READMEs runs, as a dry run
(`-n`) in a copy of the workflow, so that a command a user copies cannot fail as written (e.g. a target put
after `--configfile`, which takes several files and reads the target as one more config file).

`mine.yaml` is the README's own onboarding example, pointed at a small label file. `--report FILE` needs a
finished run, so those lines are checked without it (target and config resolve). `snakemake --lint` runs
in `scripts/test.sh`.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests._workflow_helpers import REPO_ROOT, copy_workflow, snakemake

pytestmark = pytest.mark.slow

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
DOCS += sorted((REPO_ROOT / "profiles").glob("*/README.md"))
SPAN = re.compile(r"`(snakemake [^`]+)`")


def documented_commands() -> list[tuple[str, str]]:
    """(where, command) for each snakemake command line in a code block or an inline code span."""
    found: dict[str, str] = {}
    for doc in DOCS:
        fenced = False
        for number, line in enumerate(doc.read_text().splitlines(), start=1):
            where = f"{doc.relative_to(REPO_ROOT)}:{number}"
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            text = line.split(" # ")[0].strip() if fenced else ""
            spans = [text] if text.startswith("snakemake ") else SPAN.findall(line)
            for command in spans:
                found.setdefault(command.strip(), where)
    return [(where, cmd) for cmd, where in found.items() if _runnable(cmd)]


def _runnable(command: str) -> bool:
    args = shlex.split(command)[1:]
    if "--lint" in args:
        return False  # scripts/test.sh runs the linter
    return args != ["--report"]  # prose about the option, not a command


def mine_yaml(work: Path) -> None:
    """The README's onboarding example (`mine.yaml`), its root pointed at a small labelled dataset."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"e\.g\. `mine\.yaml`:\s*```yaml\n(.*?)```", readme, re.S)
    assert block, "README lost its mine.yaml example"
    config = yaml.safe_load(block.group(1))
    root = work / "mine_data"
    config["datasets"]["mine"]["root"] = str(root)
    (work / "mine.yaml").write_text(yaml.safe_dump(config))
    root.mkdir()
    rows = [
        f"v1,{i:03d},clip {i},0.2,,,,,{mode}" for i, mode in enumerate(["train", "valid", "test"])
    ]
    header = "video_id,clip_id,text,label,label_T,label_A,label_V,annotation,mode"
    (root / "label.csv").write_text("\n".join([header, *rows]) + "\n")
    (root / "unlabeled.csv").write_text("video_id,clip_id,text\nu1,001,more\n")


def test_the_docs_name_commands():
    commands = [cmd for _, cmd in documented_commands()]
    assert any("results/mine/aligned/train/text.npy" in c for c in commands)
    assert any("--profile profiles/slurm" in c for c in commands)


def test_documented_snakemake_commands_dry_run(tmp_path: Path):
    work = copy_workflow(tmp_path / "work")
    mine_yaml(work)
    failures = []
    for where, command in documented_commands():
        args = shlex.split(command)[1:]
        if "--report" in args:  # needs a finished run: check that target and config resolve
            i = args.index("--report")
            args = args[:i] + args[i + 2 :]
        if "-n" not in args:
            args = ["-n", *args]
        try:
            snakemake(work, *args, timeout=300)
        except AssertionError as err:
            failures.append(f"{where}: `{command}`\n{str(err)[-1500:]}")
    assert not failures, "\n\n".join(failures)
