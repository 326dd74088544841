"""Data-quality page, section "Faces and speaker": how many faces each clip shows, how its speaker was
chosen, the synchrony scores, and the clips where the choice is uncertain.

Per clip, from the visual sidecar (`speaker_fields`): the most faces seen on one frame (`max_faces`), the
number of face tracks, the selection method (`speaker`: single / sync / largest / none) and why the
fallback was used (`fallback`),
the confidence, and each track's synchrony (best correlation of its mouth opening with the speech
energy). A choice is uncertain when the clip has two or more tracks and its confidence is below
`UNCERTAIN_BELOW`, or when synchrony was too weak and the largest face was taken instead (`low_sync`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aemt.report.html import frame_to_html, notes_html

UNCERTAIN_BELOW = 0.5
COLUMNS = ("max_faces", "tracks", "speaker", "fallback", "confidence", "sync")


def speaker_fields(sidecar: dict[str, Any]) -> dict[str, Any]:
    """The per-clip speaker facts of one visual sidecar (empty for sidecars without them)."""
    speaker = sidecar.get("speaker")
    if not isinstance(speaker, dict):
        return {}
    scores = [t.get("sync") for t in speaker.get("tracks", [])]
    return {
        "max_faces": max(sidecar.get("n_faces") or [0]),
        "tracks": len(speaker.get("tracks", [])),
        "speaker": speaker.get("method", ""),
        "fallback": speaker.get("reason", ""),
        "confidence": speaker.get("confidence", np.nan),
        "sync": " / ".join("-" if s is None else f"{s:.2f}" for s in scores),
    }


def uncertain(clips: pd.DataFrame) -> pd.Series:
    """[N] bool: two or more face tracks and a confidence below UNCERTAIN_BELOW, or low synchrony."""
    several = clips["tracks"].fillna(0) >= 2
    low = clips["confidence"].fillna(1.0) < UNCERTAIN_BELOW
    return several & (low | (clips["fallback"] == "low_sync"))


def speaker_section(clips: pd.DataFrame, worst: int) -> list[str]:
    """HTML blocks of the section (nothing when no sidecar carries speaker facts)."""
    if "speaker" not in clips or clips["speaker"].isna().all():
        return []
    seen = clips.dropna(subset=["speaker"]).copy()
    faces = seen["max_faces"].astype(int).clip(upper=4).map(lambda n: "4+" if n >= 4 else str(n))
    per_faces = faces.value_counts().reindex(["0", "1", "2", "3", "4+"], fill_value=0)
    methods = seen["speaker"].where(
        seen["fallback"].fillna("") == "", seen["speaker"] + " (" + seen["fallback"] + ")"
    )
    counts = (
        pd.DataFrame({"clips": methods.value_counts()})
        .rename_axis("speaker chosen by")
        .reset_index()
    )
    flagged = seen[uncertain(seen)].sort_values("confidence")
    several = seen[seen["tracks"] >= 2].sort_values("confidence").head(worst)
    table = ["key", "split", *COLUMNS]
    note = (
        "Most faces on one analysed frame, per clip: "
        + ", ".join(f"{k}: {v}" for k, v in per_faces.items())
        + f" clips. {int((seen['tracks'] >= 2).sum())} clip(s) show two or more people; their visual "
        "features follow the face whose mouth opening best follows the speech energy (sync: the "
        "correlation, per face track, listed in track order), else the largest, most central, most "
        "persistent face. Confidence: the synchrony margin over the best other face (1 = a margin of "
        f"0.3 or more). Uncertain: two or more faces and confidence below {UNCERTAIN_BELOW}, or too "
        "little synchrony (low_sync)."
    )
    blocks = [
        "<h2>Faces and speaker</h2>",
        notes_html(note),
        frame_to_html(counts, text_columns=1),
        f"<h3>Uncertain speaker choice ({len(flagged)})</h3>",
        frame_to_html(flagged[table], text_columns=2) if len(flagged) else notes_html("None."),
    ]
    if len(several):
        blocks += [
            f"<h3>Clips with several faces, least confident first ({len(several)} shown)</h3>",
            frame_to_html(several[table], text_columns=2),
        ]
    return blocks
