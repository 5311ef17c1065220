"""Files whose pages go to the disk as they are written, a slice at a time.

A run writes gigabytes: the report text made ahead, the findings, the reports.  Left
for the kernel to write back at its pace, those pages pile up until it makes the writers wait; on
the project's VM that cost 0.2 to 2.5 s a GB, against about 0.4 s a GB when each slice is handed
to the disk once written (posix_fadvise DONTNEED: write back, then drop from the cache).  Pages
still being written back when advised stay cached, clean; the temporary files' readers drop them
as they go (``drop``, text_records.RecordReader).
"""

from __future__ import annotations

import io
import os

# Bytes written between two hand-overs to the disk.
SLICE = 32 << 20
# The same for a report: it must be on the disk before the run ends (reports.atomic syncs it), so
# it goes in small slices, written by the disk while the writers make the next ones; the sync then
# waits for the last few MB only (the 259k shape's 63 MB of reports: 40 ms of syncing down to 5).
# Temporary text keeps SLICE: it is read back soon, from the cache when not handed over yet.
REPORT_SLICE = 4 << 20


class WriteBehind(io.RawIOBase):
    """Writes at a file descriptor from ``offset`` on, handing every ``every`` bytes written to
    the disk."""

    def __init__(self, fd: int, offset: int = 0, every: int = SLICE):
        self._fd = fd
        self._at = self._behind = offset
        self._every = every

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._at
        elif whence == os.SEEK_END:
            offset += os.fstat(self._fd).st_size
        self._at = offset
        self._behind = min(self._behind, offset)
        return offset

    def tell(self) -> int:
        return self._at

    def write(self, data) -> int:
        if hasattr(os, "pwrite"):
            written = os.pwrite(self._fd, data, self._at)
        else:  # Windows
            os.lseek(self._fd, self._at, os.SEEK_SET)
            written = os.write(self._fd, data)
        self._at += written
        if self._at - self._behind >= self._every:
            drop(self._fd, self._behind, self._at)
            self._behind = self._at
        return written

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


def drop(fd: int, start: int, stop: int) -> None:
    """Bytes ``start`` to ``stop`` of ``fd`` out of the page cache: written to the disk first if
    dirty, freed at once if clean.  Only advice: nothing else changes, and where the system has no
    posix_fadvise, or refuses, nothing happens."""
    advise = getattr(os, "posix_fadvise", None)  # not on every system
    if advise is None:
        return
    try:
        advise(fd, start, stop - start, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


def create(path: str | os.PathLike, buffer_size: int = 1 << 20) -> io.BufferedWriter:
    """A new (or emptied) file at ``path``, for writing bytes, as ``open(path, "wb")`` gives."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    raw = WriteBehind(fd)
    raw.name = os.fspath(path)  # as open() names its files, for messages
    return io.BufferedWriter(raw, buffer_size=buffer_size)


def text_file(path: str | os.PathLike, offset: int) -> io.TextIOWrapper:
    """A UTF-8 text handle on the existing file ``path`` from byte ``offset`` on, for a report
    (handed to the disk every REPORT_SLICE)."""
    raw = WriteBehind(os.open(path, os.O_WRONLY), offset, REPORT_SLICE)
    return io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 20), encoding="utf-8", newline="")
