"""Atomic report files: a reader never sees a half-written report.

Each report is written to a temporary file in the *same* directory (so the final rename never
crosses a file system) and moved over the target with ``os.replace``, which POSIX and Windows make
atomic.  When writing fails, the temporary file is removed and the previous report stays intact.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import PcapcheckError


class ReportWriteError(PcapcheckError):
    """A report file could not be written (missing folder, permissions, disk full)."""


def write_atomically(path: str | os.PathLike, write: Callable[[IO[str]], None]) -> None:
    """Call ``write(handle)`` on a temporary text file next to ``path``, then move it into place."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise ReportWriteError(f"{target}: cannot write report: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600; a report is an ordinary file, readable like any other the user writes.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, target)
    except BaseException as err:
        try:
            os.unlink(temp_name)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError):
            raise ReportWriteError(f"{target}: cannot write report: {err.strerror or err}") from None
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    write_atomically(path, lambda handle: handle.write(text))
