"""Words of a transcript and their times, without a model: splitting, normalising, recognised words to
timed words, label words matched onto recognised words (generated word lists with known times)."""

from __future__ import annotations

import pytest

from aemt.asr.words import (
    Word,
    countable,
    match_words,
    normalise,
    split_words,
    spread_words,
    timed_words,
    word_errors,
)


def words_of(text: str) -> list[str]:
    return [text[a:b] for a, b in split_words(text)]


def test_split_words_spaces_and_cjk():
    assert words_of("  Now, the movie's  title!") == ["Now,", "the", "movie's", "title!"]
    assert words_of("我不想嫁给李茶。") == ["我", "不", "想", "嫁", "给", "李", "茶", "。"]
    assert words_of("OK 我们 go") == ["OK", "我", "们", "go"]
    assert split_words("") == [] and split_words("   ") == []


def test_normalise_folds_case_and_drops_punctuation():
    assert normalise("Didn't,") == "didnt" and normalise("ＡＢＣ") == "abc"
    assert normalise("...") == "" and normalise("—") == ""
    assert countable([Word("hello", 0, 1), Word("-", 1, 2), Word("x.", 2, 3)]) == 2


def test_spread_words_in_proportion_to_length():
    out = spread_words(["a", "bbb"], 1.0, 3.0)
    assert [(w.word, w.start, w.end, w.timing) for w in out] == [
        ("a", 1.0, 1.5, "even"),
        ("bbb", 1.5, 3.0, "even"),
    ]
    assert spread_words([], 0.0, 1.0) == []


def test_timed_words_from_recognised_words():
    recognised = [(" Now", 0.0, 0.32, 0.8), (" at", 0.32, 0.46, 0.6), (" all.", 2.26, 2.38, 0.9)]
    text, words = timed_words(recognised)
    assert text == "Now at all."
    assert [(w.word, w.start, w.end, w.probability) for w in words] == [
        ("Now", 0.0, 0.32, 0.8),  # the leading space takes no time
        ("at", 0.32, 0.46, 0.6),
        ("all.", 2.26, 2.38, 0.9),
    ]
    # A recognised word of two CJK characters becomes two words sharing its span.
    text, words = timed_words([("我们", 1.0, 1.4, 0.5), ("走", 1.4, 1.6, 0.7)])
    assert text == "我们走"
    assert [w.word for w in words] == ["我", "们", "走"]
    assert [t for w in words for t in (w.start, w.end)] == pytest.approx(
        [1.0, 1.2, 1.2, 1.4, 1.4, 1.6]
    )
    assert timed_words([]) == ("", [])


def test_match_words_known_timings():
    # Recognised: "Now at the title of the movie" with known times (0.1 s steps).
    heard = [Word(w, 0.2 * i, 0.2 * i + 0.15, 0.9) for i, w in enumerate(
        "Now at the title of the movie".split())]  # fmt: skip
    label = "NOW THE TITEL OF THIS GREAT MOVIE REALLY"
    words, matched = match_words(label, heard)
    got = {w.word: (round(w.start, 3), round(w.end, 3), w.timing) for w in words}
    assert [w.word for w in words] == label.split()
    assert got["NOW"] == (0.0, 0.15, "matched") and got["THE"] == (0.4, 0.55, "matched")
    assert got["OF"] == (0.8, 0.95, "matched") and got["MOVIE"][2] == "matched"
    assert got["TITEL"] == (0.6, 0.75, "replaced")  # a substituted word keeps its slot
    # "THIS GREAT" faces "the": they share its span, in proportion to their lengths.
    assert got["THIS"][2] == got["GREAT"][2] == "replaced"
    assert got["THIS"][0] == 1.0 and got["GREAT"][1] == 1.15 and got["THIS"][1] == got["GREAT"][0]
    # "REALLY" has no counterpart after the last recognised word: a zero-length gap at its end.
    assert got["REALLY"] == (1.35, 1.35, "gap")
    assert matched == 4  # NOW THE OF MOVIE
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)


def test_match_words_gap_between_neighbours_and_punctuation():
    heard = [Word("I", 0.0, 0.1), Word("mean", 0.5, 0.7), Word("impressive.", 1.0, 1.5)]
    words, matched = match_words("I MEAN THAT WAS - IMPRESSIVE", heard)
    assert matched == 3
    gap = [w for w in words if w.timing == "gap"]
    assert [w.word for w in gap] == ["THAT", "WAS", "-"]
    assert gap[0].start == 0.7 and gap[-1].end == 1.0  # between "mean" and "impressive."
    assert countable(words) == 5  # "-" cannot match


def test_word_errors_count_edits_on_normalised_words():
    assert word_errors("NOW THE TITLE", "Now at the title.") == (1, 3)  # one insertion
    assert word_errors("a b c d", "a x c") == (2, 4)  # a substitution and a deletion
    assert word_errors("", "") == (0, 0) and word_errors("a", "") == (1, 1)
