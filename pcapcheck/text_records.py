"""Report text spilled by a partitioned run, as length-prefixed UTF-8 records, and merged back.

A bucket's connections and findings are numbered within the bucket; their numbers in the run are
known only when every bucket is done.  So a bucket writes the text of each record without its
number (``write_records``), and writing a report interleaves the buckets' records in the run's
order (``interleave``), bytes all the way: the report of a large capture is hundreds of MB, and
decoding it only to encode it again would cost a tenth of the writing.

On disk, a chunk is (records, bytes of text), each record's length in bytes (uint32), then the
records' text as UTF-8.
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator, Mapping

import numpy as np

from . import write_behind
from .errors import PcapcheckError

# Records taken from the buckets at a time while interleaving (a few MB of JSON).
MERGE_SLICE = 2048

_HEAD = struct.Struct("<II")


def bucket_dtype(buckets: int) -> type:
    """The integer type of an ``interleave`` sequence over this many files: two bytes a place
    (a sequence names every connection or finding of the run) while the numbers fit."""
    return np.uint16 if buckets <= 1 << 16 else np.int32


def write_records(handle, texts: list[str]) -> None:
    """One chunk of records."""
    if all(map(str.isascii, texts)):  # a flag of each str: nothing is scanned or copied to know
        # Each text's length is its length in bytes, and one encode does them all (the CSV of
        # connections is ASCII; the JSON's RFC references carry a raw "§").
        data = "".join(texts).encode("ascii")
        lengths = np.fromiter(map(len, texts), dtype="<u4", count=len(texts))
    else:
        encoded = [text.encode("utf-8") for text in texts]
        data = b"".join(encoded)
        lengths = np.fromiter(map(len, encoded), dtype="<u4", count=len(encoded))
    handle.write(_HEAD.pack(len(texts), len(data)))
    handle.write(lengths.tobytes())
    handle.write(data)


# Bytes read between two drops of the text read from the page cache (``RecordReader``).
DROP_SLICE = 8 << 20


class RecordReader:
    """A file of ``write_records`` chunks, read in order, a given number of records at a time.

    What it has read is dropped from the page cache behind it: nothing reads a record twice, and
    the pages it frees serve the report being written from it at once (fresh pages cost more; on
    the project's VM, whose host takes freed memory back, the reports took a tenth longer)."""

    def __init__(self, handle):
        self._handle = handle
        self._held: list[memoryview] = []
        self._at = 0
        self._behind: int | None = None  # where the text not yet dropped begins

    def take(self, count: int) -> list[memoryview]:
        out: list[memoryview] = []
        while count:
            if self._at == len(self._held):
                self._load(self._head())
            got = self._held[self._at : self._at + count]
            self._at += len(got)
            count -= len(got)
            out += got
        return out

    def skip(self, count: int) -> None:
        """Pass over the next ``count`` records; whole chunks are not read."""
        while count:
            if self._at == len(self._held):
                records, size = self._head()
                if records <= count:
                    self._handle.seek(4 * records + size, os.SEEK_CUR)
                    count -= records
                    continue
                self._load((records, size))
            passed = min(count, len(self._held) - self._at)
            self._at += passed
            count -= passed

    def _head(self) -> tuple[int, int]:
        head = self._handle.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise PcapcheckError(f"{self._handle.name}: the temporary report text ended early")
        return _HEAD.unpack(head)

    def _load(self, head: tuple[int, int]) -> None:
        count, size = head
        handle = self._handle
        if self._behind is None:
            self._behind = handle.tell() - _HEAD.size  # the first chunk read (after any skipped)
        ends = np.cumsum(np.frombuffer(handle.read(4 * count), dtype="<u4"), dtype=np.int64).tolist()
        # Views, not copies: a record of a few KB copied costs a malloc as well, and the text is
        # copied once more anyway, into the report's blocks (``joined``).
        data = memoryview(handle.read(size))
        self._held = [data[a:b] for a, b in zip([0, *ends], ends)]
        self._at = 0
        at = handle.tell()
        if at - self._behind >= DROP_SLICE:
            write_behind.drop(handle.fileno(), self._behind, at)
            self._behind = at


def record_lengths(path: str) -> np.ndarray:
    """The length in bytes of every record of a file of ``write_records`` chunks, in order, read
    without their text."""
    lengths = []
    try:
        with open(path, "rb") as handle:
            while head := handle.read(_HEAD.size):
                if len(head) < _HEAD.size:
                    raise PcapcheckError(f"{path}: the temporary report text ended early")
                count, size = _HEAD.unpack(head)
                lengths.append(np.frombuffer(handle.read(4 * count), dtype="<u4"))
                handle.seek(size, os.SEEK_CUR)
    except OSError as err:
        raise PcapcheckError(f"{path}: cannot read the temporary report text: {err.strerror or err}") from None
    return np.concatenate(lengths) if lengths else np.zeros(0, dtype="<u4")


def joined(heads: list[bytes], texts: list[memoryview], separator: bytes) -> bytes:
    """Each head followed by its record's text, the records joined by ``separator``.  The join is
    the only copy of the text (``head + text`` and then a join copied it twice)."""
    if not heads:
        return b""
    flat: list[bytes | memoryview] = [b""] * (2 * len(heads))
    if separator:
        flat[0] = heads[0]
        flat[2::2] = [separator + head for head in heads[1:]]
    else:
        flat[0::2] = heads
    flat[1::2] = texts
    return b"".join(flat)


def interleave(
    sequence: np.ndarray, path_of: Callable[[int], str], skip: Mapping[int, int] | None = None
) -> Iterator[tuple[int, list[memoryview]]]:
    """The records of several files in the order ``sequence`` gives (the file of each place: the
    k-th place naming file b takes b's next record), as (first place, records) per slice of
    MERGE_SLICE places; each file ``b`` from after its first ``skip[b]`` records.  A record is a
    view of the chunk it was read in (bytes() copies it out)."""
    with contextlib.ExitStack() as files:
        readers: dict[int, RecordReader] = {}
        # The files named (bincount, not np.unique: its first call imports numpy.ma, ~8 ms).
        for b in np.flatnonzero(np.bincount(sequence)).tolist():
            try:
                handle = open(path_of(b), "rb")
            except OSError as err:
                raise PcapcheckError(f"{path_of(b)}: cannot read the temporary report text: {err.strerror or err}") from None
            readers[b] = RecordReader(files.enter_context(handle))
            if skip:
                readers[b].skip(skip.get(b, 0))
        for start in range(0, len(sequence), MERGE_SLICE):
            part = sequence[start : start + MERGE_SLICE]
            # A file's records in the slice are its next ones: taken at once, then put in the
            # slice's order (the k-th of the pool goes to place order[k]).
            counts = np.bincount(part)
            pool: list[memoryview] = []
            for b in np.flatnonzero(counts).tolist():
                pool += readers[b].take(int(counts[b]))
            order = np.argsort(part, kind="stable")
            pool_at = np.empty(len(part), dtype=np.int64)
            pool_at[order] = np.arange(len(part))
            yield start, [pool[k] for k in pool_at.tolist()]
