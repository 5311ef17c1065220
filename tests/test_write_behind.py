"""Files handed to the disk as they are written (pcapcheck.write_behind) hold what plain files hold."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

import pcapcheck.write_behind as write_behind


@settings(max_examples=30, deadline=None)
@given(pieces=st.lists(st.binary(max_size=300), max_size=40), buffer=st.sampled_from([1, 7, 64, 4096]))
def test_what_is_written_is_what_a_plain_file_holds(tmp_path_factory, pieces, buffer):
    folder = tmp_path_factory.mktemp("wb")
    original, write_behind.SLICE = write_behind.SLICE, 100  # hand over to the disk every 100 bytes
    try:
        with write_behind.create(folder / "x.bin", buffer_size=buffer) as handle:
            offsets = []
            for piece in pieces:
                offsets.append(handle.tell())
                handle.write(piece)
    finally:
        write_behind.SLICE = original
    assert (folder / "x.bin").read_bytes() == b"".join(pieces)
    assert offsets == [sum(len(p) for p in pieces[:k]) for k in range(len(pieces))]


def test_a_text_file_from_an_offset_writes_there_and_keeps_the_rest(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"0123456789")
    with write_behind.text_file(path, 4) as handle:
        handle.write("é!")  # two bytes for the é
    assert path.read_bytes() == "0123é!789".encode()


def test_create_empties_a_file_and_makes_it_readable_like_open_does(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old contents")
    with write_behind.create(path) as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_advice_the_system_refuses_does_not_write_anything_twice(tmp_path, monkeypatch):
    def refused(*args):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "posix_fadvise", refused, raising=False)
    monkeypatch.setattr(write_behind, "SLICE", 4)
    with write_behind.create(tmp_path / "x.bin", buffer_size=1) as handle:
        handle.write(b"abcdefgh")
        handle.write(b"ij")
    assert (tmp_path / "x.bin").read_bytes() == b"abcdefghij"
