"""Markdown renderings of the result tables: `summary.md` (mean ± std and per-seed tables) and `ablation.md`
(the paper-style table with the train-mean baseline), written by `aemt aggregate`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aemt.evaluate.summary import paired_differences
from aemt.io import save_text
from aemt.report.tables import (
    ablation_table,
    baseline_note,
    convention_note,
    mean_std_table,
    paired_note,
    paired_table,
    per_seed_table,
)


@dataclass(frozen=True)
class MarkdownOutputs:
    summary_md: Path
    ablation_md: Path
    table: str  # the mean ± std table (what the CLI prints)


def markdown_table(frame: pd.DataFrame, text_columns: int = 1) -> str:
    """A GitHub-flavoured Markdown table: the first `text_columns` columns left-aligned, the rest right."""
    header = [str(c) for c in frame.columns]
    align = [":--" if i < text_columns else "--:" for i in range(len(header))]
    rows = [["" if pd.isna(v) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return "\n".join("| " + " | ".join(line) + " |" for line in [header, align, *rows])


def write_summary_markdown(
    runs: pd.DataFrame,
    scale: str,
    seeds: Sequence[int],
    baseline: dict[str, float] | None,
    summary_md: str | os.PathLike,
    ablation_md: str | os.PathLike,
    dataset: str,
) -> MarkdownOutputs:
    """Write summary.md and ablation.md from the per-seed runs (see :mod:`aemt.report.tables`)."""
    note = convention_note(scale, len(seeds))
    table = markdown_table(mean_std_table(runs, scale), text_columns=2)
    seed_list = ", ".join(str(s) for s in seeds)
    diffs = paired_differences(runs, scale)
    paired = ""
    if len(diffs):
        paired = (
            f"## Paired differences against aemt (×100)\n\n"
            f"{markdown_table(paired_table(diffs), text_columns=2)}\n\n{paired_note()}\n\n"
        )
    save_text(
        summary_md,
        f"# Results: {dataset} (scale: {scale})\n\n"
        f"## Mean ± std over seeds ({seed_list})\n\n{table}\n\n{paired}"
        f"## Per seed\n\n{markdown_table(per_seed_table(runs, scale))}\n\n{note}\n",
    )
    extra = baseline_note(baseline)
    ablation = markdown_table(ablation_table(runs, scale, baseline), text_columns=2)
    save_text(
        ablation_md,
        f"# Ablation (scale: {scale})\n\n{ablation}"
        + (f"\n\n{extra}" if extra else "")
        + f"\n\n{paired.replace('## ', '### ')}{note}\n",
    )
    return MarkdownOutputs(Path(summary_md), Path(ablation_md), table)
