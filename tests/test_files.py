"""The one way graphwalk writes a file (graphwalk._files): whole or not at all, readable by
others, no temporary file left behind."""

import os
import stat

import pytest

from graphwalk._files import atomic_save, atomic_write


def test_atomic_write_replaces_the_file_whole_with_the_open_mode(tmp_path):
    target = tmp_path / "sub" / "a.json"
    old = os.umask(0o022)
    try:
        atomic_write(target, "first\n")
        atomic_write(target, b"second\n")
    finally:
        os.umask(old)
    assert target.read_text() == "second\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "plot.png"
    atomic_write(target, b"old")

    def torn(tmp):
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    with pytest.raises(KeyboardInterrupt):
        atomic_save(target, torn)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["plot.png"]


def test_the_temporary_file_keeps_the_suffix_for_writers_that_read_it(tmp_path):
    seen = []
    atomic_save(tmp_path / "fig.png", lambda tmp: (seen.append(tmp.suffix), tmp.write_bytes(b"x")))
    assert seen == [".png"] and (tmp_path / "fig.png").read_bytes() == b"x"
