"""Captures larger than memory: segments partitioned by 4-tuple into bucket files, read once.

Every connection lives on one 4-tuple, and what its analysis reads beyond its own segments is the
previous incarnation on the same tuple, the capture's last timestamp and, to guess the roles of a
mid-stream pickup, how many peers talk to each endpoint (the argument of pcapcheck.shard).  So a
capture too large to hold is read once; each segment goes to the bucket file of its tuple's hash,
and the peer counts are read back from the bucket files only if a connection's roles must be
guessed (``ListenerRows``).  Each bucket is then rebuilt, replayed and checked alone
(pcapcheck.store keeps its reports on disk), which bounds memory by the largest bucket, not by the
capture.

A capture that fits under ``IN_MEMORY_SEGMENTS`` never touches the disk: its batches are held and
analysed as one, as before.

A read error part-way (a corrupt record) ends the reading, not the run: what was read before it is
analysed like a capture that stopped there, and the error is reported with those results.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .capture.frames import take_rows
from .connections import PeerCounts, _listener_counts
from .errors import PcapcheckError
from .segments import SEGMENT_DTYPE

# Segments held in memory before the capture is partitioned to disk (~130 bytes each).
IN_MEMORY_SEGMENTS = 200_000
# Target size of one bucket: its rows, their sorted copy and its connections' reports fit in a
# few tens of MB.
SEGMENTS_PER_BUCKET = 100_000
MAX_BUCKETS = 512  # open files at once; well under the usual limit of 1024
# With --jobs N, at least N times this many buckets: uneven buckets even out over several.
BUCKETS_PER_JOB = 4

# Only these columns count peers (connections._listener_counts): one row per distinct pair.
PAIR_DTYPE = np.dtype([("src", np.uint8, (16,)), ("dst", np.uint8, (16,)), ("sport", np.uint16), ("dport", np.uint16)])

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: the multiplier of splitmix64
_SHIFT = np.uint64(31)


def tuple_shard(rows: np.ndarray, shards: int) -> np.ndarray:
    """Shard (0..shards-1) of each row: a hash of its canonical 4-tuple, the same in every process.

    Canonical = the lower (address, port) endpoint first, so both directions of a connection, and
    every incarnation on its tuple, land in one shard.  Python's hash() is salted per process,
    hence this explicit mix of the address halves and ports.
    """
    src = np.ascontiguousarray(rows["src"]).view(">u8").astype(np.uint64)
    dst = np.ascontiguousarray(rows["dst"]).view(">u8").astype(np.uint64)
    sport = rows["sport"].astype(np.uint64)
    dport = rows["dport"].astype(np.uint64)
    s_hi, s_lo, d_hi, d_lo = src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]
    higher = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sport > dport))))
    columns = (
        np.where(higher, d_hi, s_hi),
        np.where(higher, d_lo, s_lo),
        np.where(higher, dport, sport),
        np.where(higher, s_hi, d_hi),
        np.where(higher, s_lo, d_lo),
        np.where(higher, sport, dport),
    )
    h = np.zeros(len(rows), dtype=np.uint64)
    for column in columns:
        h = (h ^ column) * _GOLDEN  # uint64 arithmetic wraps modulo 2**64, which a hash wants
        h ^= h >> _SHIFT
    return (h % np.uint64(shards)).astype(np.int64)


def distinct_pairs(rows: np.ndarray) -> np.ndarray:
    """One PAIR_DTYPE row per distinct (src, sport, dst, dport) in ``rows``."""
    pairs = np.empty(len(rows), dtype=PAIR_DTYPE)
    for name in PAIR_DTYPE.names:
        pairs[name] = rows[name]
    return np.unique(pairs.view(f"V{PAIR_DTYPE.itemsize}")).view(PAIR_DTYPE)


@dataclass
class Partition:
    """The capture's segments in bucket files by tuple hash, each bucket in capture order.

    Several ``writers`` (pcapcheck.parallel_read: processes decoding chunks of one capture file)
    each write their own file of every bucket, in capture order; a bucket's rows are read back
    merged by frame, leaving out those from ``cut`` on (the frame where reading stopped while
    another writer went on)."""

    directory: str
    buckets: int
    segments: int = 0
    writers: int = 1
    writer: int = 0  # which of the writers this one writes as
    cut: int | None = None
    _files: list = field(default_factory=list)

    @classmethod
    def create(cls, directory: str, buckets: int, writers: int = 1, writer: int = 0) -> "Partition":
        part = cls(directory, buckets, writers=writers, writer=writer)
        try:
            part._files = [open(part.path(b, writer), "wb") for b in range(buckets)]
        except OSError as err:
            part.close()
            raise PcapcheckError(f"{directory}: cannot create the temporary bucket files: {err.strerror or err}") from None
        return part

    def path(self, bucket: int, writer: int = 0) -> str:
        name = f"segments-{bucket:04d}.bin" if writer == 0 else f"segments-{bucket:04d}-{writer}.bin"
        return os.path.join(self.directory, name)

    def add(self, batch: np.ndarray, flush: bool = False) -> None:
        """Append ``batch``'s rows to their buckets' files (and onto the disk, ``flush``)."""
        # 16-bit keys (MAX_BUCKETS fits, and the buckets of up to 16384 --jobs): numpy's stable
        # argsort is then a radix sort.
        bucket = tuple_shard(batch, self.buckets).astype(np.uint16 if self.buckets <= 1 << 16 else np.int64)
        order = np.argsort(bucket, kind="stable")  # stable: capture order within each bucket
        counts = np.bincount(bucket, minlength=self.buckets)
        # Written from a byte view of the ordered rows: no per-bucket copy.
        ordered = take_rows(batch, order).view(np.uint8)
        bounds = (np.concatenate(([0], np.cumsum(counts))) * batch.dtype.itemsize).tolist()
        try:
            for b in np.flatnonzero(counts).tolist():
                self._files[b].write(ordered[bounds[b] : bounds[b + 1]])
                if flush:
                    self._files[b].flush()
        except OSError as err:
            raise PcapcheckError(f"{self.directory}: cannot write the temporary bucket files: {err.strerror or err}") from None
        self.segments += len(batch)

    def finish(self) -> None:
        """Close the bucket files for writing (the reading side opens them by path)."""
        files, self._files = self._files, []
        failed = None
        for f in files:
            try:
                f.close()  # what was still buffered is written now: a full disk shows here
            except OSError as err:
                failed = failed or err
        if failed is not None:
            raise PcapcheckError(f"{self.directory}: cannot write the temporary bucket files: {failed.strerror or failed}")

    def rows(self, bucket: int) -> np.ndarray:
        if self.writers == 1:
            rows = self._read(self.path(bucket))
        else:
            # A writer that failed before making all its files wrote nothing to the missing ones.
            rows = np.concatenate([self._read(self.path(bucket, w)) for w in range(self.writers)])
            # Each file is in capture order, and a frame numbers one record: merged by frame.
            rows = take_rows(rows, np.argsort(rows["frame"], kind="stable"))
        if self.cut is not None:
            rows = rows[: np.searchsorted(rows["frame"], self.cut)]
        return rows

    def _read(self, path: str) -> np.ndarray:
        try:
            return np.fromfile(path, dtype=SEGMENT_DTYPE)
        except FileNotFoundError:
            if self.writers > 1:
                return np.zeros(0, dtype=SEGMENT_DTYPE)
            raise PcapcheckError(f"{path}: a temporary bucket file is gone") from None
        except OSError as err:
            raise PcapcheckError(f"{path}: cannot read the temporary bucket file: {err.strerror or err}") from None

    def remove(self) -> None:
        """Delete the bucket files once every bucket is analysed, best effort: their pages, never
        to be read again, are freed without being written back, and serve the reports' writing
        (fresh pages cost more)."""
        for bucket in range(self.buckets):
            for writer in range(self.writers):
                try:
                    os.unlink(self.path(bucket, writer))
                except OSError:  # gone already, or the directory's removal will say
                    pass

    def listener_rows(self) -> "ListenerRows":
        """What counts every endpoint's distinct peers over the whole capture, read when first asked."""
        return ListenerRows(self)

    def close(self) -> None:
        """Close the bucket files after an error, whatever is still buffered."""
        try:
            self.finish()
        except PcapcheckError:  # the error being handled says enough
            pass


@dataclass
class ListenerRows:
    """The whole capture's peer counts (connections._listener_counts), from every bucket file.

    Only a connection picked up mid-stream with neither SYN nor SYN-ACK needs them, which most
    captures never have; so they are counted on the first such connection, once per process, and
    not while partitioning (a sort of every batch).
    """

    partition: Partition
    _counts: PeerCounts | None = None

    def counts(self) -> PeerCounts:
        if self._counts is None:
            part = self.partition
            # A pair belongs to one tuple, hence to one bucket: the buckets' pairs never repeat.
            pairs = [distinct_pairs(part.rows(b)) for b in range(part.buckets)]
            self._counts = _listener_counts(np.concatenate(pairs) if pairs else np.zeros(0, dtype=PAIR_DTYPE))
        return self._counts


@dataclass
class Held:
    """What reading produced: the whole capture in memory, or partitioned on disk."""

    batches: list[np.ndarray]  # the capture's batches, when it fit in memory
    partition: Partition | None = None
    error: str | None = None  # the read error that ended reading early, if any
    workdir: tempfile.TemporaryDirectory | None = None


def read_capture(
    batches: Iterable[np.ndarray],
    *,
    in_memory: int | None = None,
    per_bucket: int | None = None,
    min_buckets: int = 2,
    expected_bytes: int | None = None,
) -> Held:
    """Read every batch: held in memory up to ``in_memory`` segments, beyond that partitioned.

    ``expected_bytes`` (the capture files' total size, None for pipes or compressed files) bounds
    how many segments may come, which sets the bucket count.
    """
    in_memory = IN_MEMORY_SEGMENTS if in_memory is None else in_memory
    per_bucket = SEGMENTS_PER_BUCKET if per_bucket is None else per_bucket
    held = Held([])
    count = 0
    try:
        for batch in batches:
            if held.partition is not None:
                held.partition.add(batch)
                continue
            held.batches.append(batch)
            count += len(batch)
            if count > in_memory:
                held.workdir = work_directory()
                buckets = max(min_buckets, bucket_count(count, per_bucket, expected_bytes))
                held.partition = Partition.create(held.workdir.name, buckets)
                for earlier in held.batches:
                    held.partition.add(earlier)
                held.batches = []
        if held.partition is not None:
            held.partition.finish()
    except PcapcheckError as err:
        held.error = str(err)
        if held.partition is not None:
            held.partition.close()
    return held


def work_directory() -> tempfile.TemporaryDirectory:
    """A private temporary directory for the bucket files and reports (in $TMPDIR), removed when
    the result that reads it is gone."""
    try:
        return tempfile.TemporaryDirectory(prefix="pcapcheck-")
    except OSError as err:
        raise PcapcheckError(f"cannot create a temporary directory in {tempfile.gettempdir()}: {err.strerror or err}") from None


# The smallest record a TCP segment makes in a capture file: a pcap record header (16 bytes) and
# Ethernet, IPv4 and TCP headers (54); a file of N bytes holds at most N / this many segments.
SMALLEST_RECORD = 70


def bucket_count(segments_so_far: int, per_bucket: int, expected_bytes: int | None) -> int:
    if expected_bytes:
        estimate = max(segments_so_far, expected_bytes / SMALLEST_RECORD)
    else:
        estimate = segments_so_far * 16  # a pipe or a compressed file: no size to go by
    return max(2, min(MAX_BUCKETS, math.ceil(estimate / per_bucket)))
