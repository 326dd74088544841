"""Words of a transcript and their times: splitting, normalising, and matching a given transcript onto
recognised words. Pure Python (difflib), no model.

A transcript's words are its runs of non-space characters, except that every CJK character is a word
of its own (Chinese and Japanese are written without spaces). `split_words` gives their character
spans; the text extractor maps each token to one of these words through its character offsets.

`timed_words` turns recognised words (faster-whisper's, which carry their leading space) into the
words of the recognised text, each with a start and end time; a recognised word that splits into
several (CJK characters) shares its span in proportion to character counts. `match_words` gives the
words of a label transcript times from the recognised words: difflib aligns the normalised word
sequences (case-folded, punctuation removed); equal words take their counterpart's times (`matched`),
a run of label words facing a different run of recognised words shares that run's span (`replaced`),
label words with no counterpart share the gap between their timed neighbours (`gap`, possibly of
zero length). `spread_words` spreads words over an interval when nothing was recognised (`even`).
Shares are proportional to word length in characters.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# CJK ideographs, kana and compatibility ideographs: one word per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_WORD = re.compile(f"[{_CJK}]|[^\\s{_CJK}]+")
TIMINGS = ("asr", "matched", "replaced", "gap", "even")


@dataclass
class Word:
    """One word of a transcript with its time span (seconds from the clip start)."""

    word: str
    start: float
    end: float
    probability: float | None = None  # recognition confidence (None for unmatched label words)
    timing: str = "asr"  # one of TIMINGS: where the times come from

    def record(self) -> dict:
        """The JSON form (times rounded to ms)."""
        out = asdict(self)
        out["start"], out["end"] = round(self.start, 3), round(self.end, 3)
        if self.probability is not None:
            out["probability"] = round(float(self.probability), 4)
        return out


def split_words(text: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the words of `text` (non-space runs; CJK characters alone)."""
    return [m.span() for m in _WORD.finditer(text)]


def normalise(word: str) -> str:
    """Compatibility-normalised, case-folded, without punctuation, symbols, spaces and control
    characters ("Didn't," -> "didnt")."""
    folded = unicodedata.normalize("NFKC", word).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] not in "PSZC")


def _weights(words: Sequence[str]) -> list[float]:
    return [float(max(1, len(normalise(w)) or len(w))) for w in words]


def spread_words(
    words: Sequence[str], start: float, end: float, timing: str = "even"
) -> list[Word]:
    """`words` laid one after another over [start, end], each for a share proportional to its length."""
    weights = _weights(words)
    total = sum(weights) or 1.0
    out, t = [], start
    for word, weight in zip(words, weights, strict=True):
        step = (end - start) * weight / total
        out.append(Word(word, t, t + step, None, timing))
        t += step
    if out:
        out[-1].end = end  # no rounding drift at the end
    return out


def timed_words(recognised: Sequence[tuple[str, float, float, float]]) -> tuple[str, list[Word]]:
    """(text, words of the text with times) from recognised (word, start, end, probability) tuples.

    The text is the recognised words joined as decoded (each carries its leading space), stripped. Each
    character inherits a time from its recognised word (the word's span divided over its non-space
    characters); a word of the text runs from its first character's start to its last one's end.
    """
    pieces, char_times, probs = [], [], []
    for word, start, end, prob in recognised:
        start = max(0.0, float(start))
        end = max(start, float(end))
        n, k = sum(not c.isspace() for c in word), 0  # spaces take no time
        for c in word:
            t0 = start + (end - start) * k / max(n, 1)
            k += not c.isspace()
            char_times.append((t0, start + (end - start) * k / max(n, 1)))
            probs.append(float(prob))
        pieces.append(word)
    raw = "".join(pieces)
    lead = len(raw) - len(raw.lstrip())
    text = raw.strip()
    words = []
    for a, b in split_words(text):
        first, last = char_times[lead + a], char_times[lead + b - 1]
        prob = min(probs[lead + a : lead + b])
        words.append(Word(text[a:b], first[0], max(first[0], last[1]), prob, "asr"))
    for prev, word in zip(words, words[1:], strict=False):  # monotonic starts
        word.start = max(word.start, prev.start)
        word.end = max(word.end, word.start)
    return text, words


def match_words(text: str, recognised: Sequence[Word]) -> tuple[list[Word], int]:
    """Times for the words of a given transcript from recognised words; (words, number matched).

    `recognised` must be non-empty (else use `spread_words`). See the module docstring for the rules.
    """
    label = [text[a:b] for a, b in split_words(text)]
    # Words that normalise to nothing (punctuation) never match: give each a unique key.
    keys_a = [normalise(w) or f"\0a{i}" for i, w in enumerate(label)]
    keys_b = [normalise(w.word) or f"\0b{i}" for i, w in enumerate(recognised)]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False)
    out: list[Word | None] = [None] * len(label)
    gaps: list[tuple[int, int]] = []  # label index ranges with no counterpart
    matched = 0
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for i, j in zip(range(a0, a1), range(b0, b1), strict=True):
                r = recognised[j]
                out[i] = Word(label[i], r.start, r.end, r.probability, "matched")
            matched += a1 - a0
        elif op == "replace":
            span = spread_words(
                label[a0:a1], recognised[b0].start, recognised[b1 - 1].end, "replaced"
            )
            out[a0:a1] = span
        elif op == "delete":
            gaps.append((a0, a1))
    for a0, a1 in gaps:  # between the neighbours' times (all other words are timed by now)
        before = out[a0 - 1].end if a0 > 0 else recognised[0].start
        after = out[a1].start if a1 < len(out) else recognised[-1].end
        after = max(after, before)
        out[a0:a1] = spread_words(label[a0:a1], before, after, "gap")
    return [w for w in out if w is not None], matched


def countable(words: Sequence[Word]) -> int:
    """Words that can match at all (not pure punctuation): the denominator of the match rate."""
    return sum(bool(normalise(w.word)) for w in words)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, reference words) between two transcripts, on
    normalised words (the numerator and denominator of the word error rate)."""
    ref = [k for k in (normalise(reference[a:b]) for a, b in split_words(reference)) if k]
    hyp = [k for k in (normalise(hypothesis[a:b]) for a, b in split_words(hypothesis)) if k]
    row = list(range(len(hyp) + 1))  # edit distances of ref[:i] to every hyp prefix
    for i, r in enumerate(ref, start=1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1], len(ref)
