"""Atomic report files: a reader never sees a half-written report.

Each report is written to a temporary file in the *same* directory (so the final rename never
crosses a file system) and moved over the target with ``os.replace``, which POSIX and Windows make
atomic.  When writing fails, the temporary file is removed and the previous report stays intact.

A path through a symbolic link replaces the file the link names, not the link.  A path that names
no regular file (``--json /dev/stdout``, a named pipe, a terminal) is written straight through:
there is nothing to replace, and replacing the name would put a file where the device was.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import PcapcheckError
from ..write_behind import text_file  # reports go to the disk as they are written


class ReportWriteError(PcapcheckError):
    """A report file could not be written (missing folder, permissions, disk full)."""


def write_atomically(path: str | os.PathLike, write: Callable[[IO[str]], None]) -> None:
    """Call ``write(handle)`` on a temporary text file next to ``path``, then move it into place."""
    if not replaceable(path):
        _write_through(Path(path), write)
        return
    target = _resolved(Path(path))
    temp_name = _temporary(target)
    try:
        with text_file(temp_name, 0) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temp_name, target)
    except BaseException as err:
        _remove(temp_name)
        if isinstance(err, OSError):
            raise ReportWriteError(f"{target}: cannot write report: {err.strerror or err}") from None
        raise


def replaceable(path: str | os.PathLike) -> bool:
    """Is ``path`` a regular file, or nothing yet (what a temporary file can be moved over)?  Not
    when reached through /proc: ``--json /dev/stdout > run.json`` names the shell's file through
    /proc/self/fd/1, an open descriptor to write to, not a name to replace."""
    absolute = os.path.abspath(path)
    for name in (absolute, os.path.realpath(os.path.dirname(absolute)), _link(absolute)):
        if name is not None and (name + "/").startswith("/proc/"):
            return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # missing (or unreadable: writing it says why)


def _link(path: str | os.PathLike) -> str | None:
    """Where a symbolic link points, made absolute; None for anything else."""
    try:
        return os.path.join(os.path.dirname(os.path.abspath(path)), os.readlink(path))
    except OSError:
        return None


def _resolved(target: Path) -> Path:
    """The file a symbolic link names (followed to the end), else ``target``."""
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _write_through(target: Path, write: Callable[[IO[str]], None]) -> None:
    try:
        # Appending: standard output redirected with >> keeps what it held.
        with open(target, "a", encoding="utf-8", newline="") as handle:
            write(handle)
    except OSError as err:
        raise ReportWriteError(f"{target}: cannot write report: {err.strerror or err}") from None


def _temporary(target: Path) -> str:
    """An empty temporary file in ``target``'s directory (so the final rename stays on one file system)."""
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise ReportWriteError(f"{target}: cannot write report: {err.strerror or err}") from None
    os.close(fd)
    return temp_name


def _publish(temp_name: str, target: Path) -> None:
    """The written temporary file in place of ``target``."""
    # mkstemp creates 0600; a report is an ordinary file, readable like any other the user writes.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp_name, 0o666 & ~umask)
    os.replace(temp_name, target)


def _remove(temp_name: str) -> None:
    try:
        os.unlink(temp_name)
    except FileNotFoundError:
        pass


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    write_atomically(path, lambda handle: handle.write(text))


class PiecewiseFile:
    """One report written in pieces, each at its known offset, by several processes at once (a
    GB of JSON), into one temporary file next to ``path``; then moved into place like any other,
    or removed if a piece failed."""

    def __init__(self, path: str | os.PathLike):
        """``path`` must be ``replaceable``."""
        self.target = _resolved(Path(path))
        self.temp_name = _temporary(self.target)

    def write_piece(self, offset: int, write: Callable[[IO[str]], None]) -> None:
        """``write(handle)`` on a text handle (UTF-8) that starts at ``offset`` bytes."""
        try:
            with text_file(self.temp_name, offset) as handle:
                write(handle)
        except OSError as err:
            raise ReportWriteError(f"{self.target}: cannot write report: {err.strerror or err}") from None

    def commit(self) -> None:
        """Every piece written: durable, then in place."""
        try:
            fd = os.open(self.temp_name, os.O_RDONLY)
            try:
                os.fsync(fd)  # the pieces other processes wrote too: the file's pages, whoever wrote them
            finally:
                os.close(fd)
            _publish(self.temp_name, self.target)
        except OSError as err:
            self.abort()
            raise ReportWriteError(f"{self.target}: cannot write report: {err.strerror or err}") from None

    def abort(self) -> None:
        _remove(self.temp_name)
