"""Tampering donors for modality-consistency detection (`pretrain.donor`).

`batch` (default): the donor of a tampered modality is another clip of the batch - usually another
person, so "is this voice the same person as this face?" solves the task without any sentiment.
`same_video`: the donor is another clip of the SAME video (the same speaker and recording) when the data
has one, which removes that shortcut (reference/science-notes.md §5); a clip whose video has no other clip
falls back to another clip of the batch. The video is the part of the clip key before "/".
"""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import Tensor

DONORS = ("batch", "same_video")


class SameVideoDonors:
    """Draws, for rows of a pool of clips, another clip of the same video (or of the batch)."""

    def __init__(self, keys: list[str]) -> None:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, key in enumerate(keys):
            groups[key.split("/", 1)[0]].append(i)
        self.members = [
            groups[key.split("/", 1)[0]] for key in keys
        ]  # pool row -> rows of its video
        self.coverage = sum(len(m) > 1 for m in self.members) / max(1, len(keys))

    def draw(self, rows: Tensor, generator: torch.Generator) -> Tensor:
        """Pool rows [B] -> donor pool rows [B]: another clip of the same video, else of the batch."""
        out = []
        batch = rows.tolist()
        for b, row in enumerate(batch):
            group = [r for r in self.members[row] if r != row]
            if not group:  # no other clip of this video: another clip of the batch
                group = [r for i, r in enumerate(batch) if i != b] or [row]
            pick = int(torch.randint(len(group), (1,), generator=generator))
            out.append(group[pick])
        return torch.tensor(out, dtype=torch.long)
