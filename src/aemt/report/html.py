"""HTML rendering and figure saving shared by the report modules: page template (inline CSS), tables,
notes, PNGs saved atomically.

Used by `aemt.report.results` (results), `aemt.report.curves` (training curves), `aemt.report.quality`
(data quality) and `aemt.report.sensitivity`. HTML pages are self-contained (inline CSS, no scripts) so that Snakemake's report shows them
as they are; figures are PNGs saved atomically through `aemt.io.atomic_path`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from aemt.io import atomic_path

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.2em;
       color: #222; max-width: 1200px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table.aemt { border-collapse: collapse; margin: 0.4em 0 1.2em; font-size: 13px; }
table.aemt th, table.aemt td { border: 1px solid #c8ccd2; padding: 3px 8px; text-align: right; }
table.aemt th { background: #eef1f5; }
table.aemt td:first-child, table.aemt th:first-child { text-align: left; }
table.left2 td:nth-child(-n+2), table.left2 th:nth-child(-n+2) { text-align: left; }
table.textual td, table.textual th { text-align: left; }
table.aemt tr:nth-child(even) td { background: #fafbfc; }
p.note { font-size: 13px; color: #444; max-width: 1000px; }
code { background: #f3f3f3; padding: 0 3px; }
"""


def html_page(title: str, body: Sequence[str]) -> str:
    """A self-contained HTML document (inline CSS) with an <h1> title and the given body fragments."""
    parts = "\n".join(body)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n<h1>{html.escape(title)}</h1>\n{parts}\n</body></html>\n"
    )


def frame_to_html(frame: pd.DataFrame, text_columns: int = 1) -> str:
    """A DataFrame as an escaped HTML table (no index) in the report's style.

    The first `text_columns` columns are left-aligned, the rest (numbers) right-aligned; 0 = all left.
    """
    classes = ["aemt", {1: "", 2: "left2"}.get(text_columns, "textual")]
    return frame.to_html(
        index=False, border=0, classes=[c for c in classes if c], escape=True, na_rep="n/a"
    )


def notes_html(text: str) -> str:
    """Plain-text paragraphs (separated by blank lines) as <p class="note"> elements."""
    return "\n".join(
        f'<p class="note">{html.escape(p.strip())}</p>' for p in text.split("\n\n") if p.strip()
    )


def save_figure(fig, out: str | os.PathLike, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return out


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
