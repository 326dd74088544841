"""aemt.io: atomic writes and the clean-up of temporary files left by killed writers."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from aemt.io import atomic_path, remove_stale_temporaries, save_npy


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    dest = tmp_path / "clip.npy"
    dead = tmp_path / f".clip.npy.{dead_pid()}.tmp"
    live = tmp_path / f".clip.npy.{os.getppid()}.tmp"  # a running process (the test's parent)
    other = tmp_path / f".other.npy.{dead_pid()}.tmp"  # another destination's: not ours to touch
    for path in (dead, live, other):
        path.write_bytes(b"half-written")
    save_npy(dest, np.arange(3))
    assert np.load(dest).tolist() == [0, 1, 2]
    assert not dead.exists() and live.exists() and other.exists()
    assert remove_stale_temporaries(tmp_path / "other.npy") == [other]


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    dest = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("{")
        raise RuntimeError("interrupted")
    assert not dest.exists() and not list(tmp_path.iterdir())
