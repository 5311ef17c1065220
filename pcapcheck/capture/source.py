"""Opening a capture file: existence checks, gzip detection, and reading it in large chunks.

Files are read as a stream of big chunks (never the whole file, never one record at a time), so a
capture of any size runs in bounded memory and gzip-compressed captures need no temporary copy.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from collections.abc import Callable, Iterator, Sized
from typing import Any, BinaryIO, TypeVar

import numpy as np

from ..errors import CaptureError

CHUNK_SIZE = 4 << 20  # bytes per read: large enough to amortise Python overhead, small for memory
GZIP_MAGIC = b"\x1f\x8b"


def open_stream(path: str) -> "ChunkReader":
    """Open ``path`` for reading, transparently gunzipping."""
    if not os.path.exists(path):
        raise CaptureError(path, "no such file")
    if os.path.isdir(path):
        raise CaptureError(path, "is a directory, not a capture file")
    try:
        raw = open(path, "rb")
    except OSError as err:
        raise CaptureError(path, f"cannot open: {err.strerror or err}") from None
    head = raw.read(2)
    if raw.seekable():
        raw.seek(0)
    else:
        # A pipe or FIFO (`cat f | pcapcheck analyze /dev/stdin`, `<(zcat f)`): streamed like a
        # file, in CHUNK_SIZE reads, with the two bytes already taken put back in front.
        raw = _Prefixed(head, raw)
    if head == GZIP_MAGIC:
        return ChunkReader(path, gzip.GzipFile(fileobj=raw, mode="rb"), raw)
    return ChunkReader(path, raw, raw)


def is_stream(path: str) -> bool:
    """A pipe, FIFO or terminal (/dev/stdin, <(zcat f)): readable once, front to back."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path)
    except OSError:
        return False  # missing or unreadable: opening it says so in one line


class _Prefixed:
    """A non-seekable stream with bytes already read from it returned first."""

    def __init__(self, prefix: bytes, stream: BinaryIO):
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        head, self.prefix = self.prefix, b""
        if size is None or size < 0:
            return head + self.stream.read()
        if len(head) >= size:
            head, self.prefix = head[:size], head[size:]
            return head
        return head + self.stream.read(size - len(head))

    def readinto(self, target: memoryview) -> int:
        piece = self.read(len(target))
        target[: len(piece)] = piece
        return len(piece)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        self.stream.close()


class ChunkReader:
    """Reads a stream in CHUNK_SIZE pieces and tells a clean end from a cut-short gzip member."""

    def __init__(self, path: str, stream: BinaryIO, raw: BinaryIO):
        self.path = path
        self.stream = stream
        self.raw = raw
        self.compressed = stream is not raw
        self.cut_short = False  # a gzip stream that ended without its end-of-stream marker

    def read(self, size: int = 0) -> bytes:
        size = size or CHUNK_SIZE
        if self.compressed:
            return self._read_compressed(size)
        try:
            return self.stream.read(size)
        except (gzip.BadGzipFile, zlib.error) as err:
            raise CaptureError(self.path, f"corrupt gzip data: {err}") from None
        except OSError as err:
            raise CaptureError(self.path, f"read error: {err}") from None

    def _read_compressed(self, size: int) -> bytes:
        # read1 returns what one step decompresses, so a gzip member cut short loses nothing
        # before the cut ("Compressed file ended before the end-of-stream marker was reached").
        parts, have = [], 0
        while have < size and not self.cut_short:
            try:
                piece = self.stream.read1(size - have)
            except EOFError:
                self.cut_short = True
                break
            except (gzip.BadGzipFile, zlib.error) as err:
                raise CaptureError(self.path, f"corrupt gzip data: {err}") from None
            except OSError as err:
                raise CaptureError(self.path, f"read error: {err}") from None
            if not piece:
                break
            parts.append(piece)
            have += len(piece)
        return b"".join(parts)

    def readinto(self, target: memoryview) -> int:
        """Fill ``target`` as far as the stream goes (fewer bytes only at its end); bytes read."""
        if self.compressed:
            piece = self._read_compressed(len(target))
            target[: len(piece)] = piece
            return len(piece)
        try:
            return self.stream.readinto(target) or 0
        except OSError as err:
            raise CaptureError(self.path, f"read error: {err}") from None

    def read_exact(self, size: int) -> bytes:
        """Up to ``size`` bytes, fewer only at the end of the file."""
        parts = []
        want = size
        while want > 0:
            piece = self.read(want)
            if not piece:
                break
            parts.append(piece)
            want -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        self.stream.close()
        self.raw.close()


Chunk = TypeVar("Chunk")

# Spare bytes after the data of every chunk handed to ``decode``: the decoder reads fixed-size
# headers in blocks and may run past the end of the last record.
SLACK = 64


def walk_chunks(
    reader: "ChunkReader",
    head: bytes,
    walk: Callable[[memoryview], tuple[Sized, int, str | None]],
    decode: Callable[[memoryview, Any, int], Chunk],
    *,
    path: str,
    corrupt_at: str,
    cut_at: str,
    warnings: list[str],
    chunk_size: int | None = None,
) -> Iterator[Chunk]:
    """The reading loop both capture formats share: complete records chunk by chunk.

    ``walk(data)`` finds the complete records in ``data`` and returns (records, bytes consumed,
    corruption or None); ``decode(data, records, first_frame)`` turns them into one chunk of frames.
    Corruption raises CaptureError *after* the records before it were yielded, so the analysis keeps
    them; a record cut short by the end of the file is only a warning.  ``corrupt_at`` and ``cut_at``
    name the place in the messages, with ``{frame}`` for the frame number reached.

    One buffer holds the raw bytes: each read goes in after the part of a record the last chunk
    ended with, so ``data`` (and what ``decode`` made of it that still points into it) is only
    valid until the next chunk is read.  ``data`` has SLACK writable bytes after its end
    (``with_slack``).  ``chunk_size``: the bytes of each read (CHUNK_SIZE by default).
    """
    chunk_size = chunk_size or CHUNK_SIZE
    buffer = bytearray(len(head) + chunk_size + SLACK)
    buffer[: len(head)] = head
    held = len(head)  # bytes of an incomplete record kept from the chunk before
    next_frame = 1
    while True:
        if len(buffer) < held + chunk_size + SLACK:
            # A record longer than a chunk: a larger buffer.
            larger = bytearray(held + chunk_size + SLACK)
            larger[:held] = buffer[:held]
            buffer = larger
        got = reader.readinto(memoryview(buffer)[held : held + chunk_size])
        size = held + got
        if not size:
            break
        data = memoryview(buffer)[:size]
        records, stop, corrupt = walk(data)
        if len(records):
            yield decode(data, records, next_frame)
            next_frame += len(records)
        if corrupt is not None:
            raise CaptureError(path, f"{corrupt_at.format(frame=next_frame)}: {corrupt}")
        held = size - stop
        buffer[:held] = buffer[stop:size]
        if not got:
            if held:
                warnings.append(
                    f"{path}: {cut_at.format(frame=next_frame)} is cut short "
                    f"({held} bytes); the packets before it were analysed"
                )
            break
    if reader.cut_short:
        warnings.append(f"{path}: compressed file ends early; the packets before the end were analysed")


def with_slack(data: memoryview) -> np.ndarray:
    """A chunk's ``data`` from walk_chunks and the SLACK bytes after it, as one writable array."""
    return np.frombuffer(data.obj, dtype=np.uint8, count=len(data) + SLACK)
