"""Connection reports of a partitioned run (pcapcheck.partition), on disk, read back in id order.

Each bucket's reports are spilled as soon as the bucket is analysed, in its own order of first
frame; reading merges the buckets by first frame and numbers the connections 1, 2, ... as it goes,
which is exactly how one in-memory run numbers them (``connections.rebuild``: ids in order of first
frame, and a frame belongs to one connection only).  Reports see a sequence: ``len()``, iteration
in id order, slicing; nothing holds all reports at once.
"""

from __future__ import annotations

import heapq
from collections import Counter
import os
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import TYPE_CHECKING

import numpy as np

from .errors import PcapcheckError

if TYPE_CHECKING:
    from .analysis import ConnectionReport
    from .findings import Finding

# Reports pickled together: big enough that pickle's per-call cost vanishes, small enough that a
# merge over hundreds of buckets holds little.
CHUNK = 256


def report_values(report: "ConnectionReport") -> tuple:
    """A report as plain values: a frozen dataclass pickles and unpickles field by field, slowly."""
    from .analysis import ConnectionReport

    values = []
    for name in ConnectionReport.__slots__:
        value = getattr(report, name)
        if name == "transitions":
            value = [(t.time, t.frame, t.endpoint, t.from_state, t.to_state, t.cause, t.rfc) for t in value]
        elif name in ("client", "server"):
            value = (value.addr, value.port)
        values.append(value)
    return tuple(values)


def report_from(values: tuple) -> "ConnectionReport":
    from .analysis import ConnectionReport
    from .connections import Endpoint
    from .replay.model import Transition

    fields = dict(zip(ConnectionReport.__slots__, values))
    fields["transitions"] = [Transition(*t) for t in fields["transitions"]]
    for name in ("client", "server"):
        fields[name] = Endpoint(*fields[name])
    return ConnectionReport(**fields)


class ConnectionStore(Sequence):
    """Reports bucket by bucket on disk; a sequence of ConnectionReport in id order."""

    def __init__(self, directory: str, keep_alive: object = None):
        self.directory = directory
        self._keep_alive = keep_alive  # e.g. the TemporaryDirectory: removed once the store is gone
        self._first_frames: list[np.ndarray] = []  # per bucket, in the bucket's id order
        self._closes: list[list[str]] = []  # per bucket, aligned with _first_frames
        self._cut: int | None = None  # connections with a first frame at or after it are left out
        self._sorted: np.ndarray | None = None

    def adopt(self, bucket: int, written: "Written") -> None:
        """Take in a bucket written with ``write_bucket`` (by this process or another)."""
        while len(self._first_frames) <= bucket:
            self._first_frames.append(np.zeros(0, dtype=np.int64))
            self._closes.append([])
        self._first_frames[bucket] = written.first_frames
        self._closes[bucket] = written.closes
        self._sorted = None

    def close_counts(self) -> Counter:
        """Connections by how they closed, without reading the reports back."""
        counts: Counter = Counter()
        for frames, closes in zip(self._first_frames, self._closes):
            if self._cut is None:
                counts.update(closes)
            else:
                counts.update(c for f, c in zip(frames.tolist(), closes) if f < self._cut)
        return counts

    def cut_at(self, frame: int | None) -> None:
        """Leave out connections whose first frame is at or after ``frame`` (None: keep all)."""
        self._cut = frame
        self._sorted = None

    def _all_first_frames(self) -> np.ndarray:
        if self._sorted is None:
            joined = np.concatenate(self._first_frames) if self._first_frames else np.zeros(0, dtype=np.int64)
            if self._cut is not None:
                joined = joined[joined < self._cut]
            self._sorted = np.sort(joined)
        return self._sorted

    def global_id(self, bucket: int, local_id: int) -> int | None:
        """The id a connection of ``bucket`` (numbered 1.. within it) has in the whole run."""
        frame = int(self._first_frames[bucket][local_id - 1])
        if self._cut is not None and frame >= self._cut:
            return None
        return int(np.searchsorted(self._all_first_frames(), frame)) + 1

    def renumber(self, bucket: int, findings: list["Finding"]) -> list[tuple[int, "Finding"]]:
        """(id in the run, finding) for a bucket's findings; those of connections cut are dropped."""
        out = []
        for f in findings:
            number = self.global_id(bucket, f.connection)
            if number is not None:
                out.append((number, replace(f, connection=number)))
        return out

    def __len__(self) -> int:
        return len(self._all_first_frames())

    def __iter__(self) -> Iterator["ConnectionReport"]:
        streams = [self._read(b) for b in range(len(self._first_frames))]
        merged = heapq.merge(*streams, key=lambda r: r.first_frame)
        for number, report in enumerate(merged, start=1):
            if self._cut is not None and report.first_frame >= self._cut:
                return  # merged in order of first frame: every later one is cut too
            report.id = number
            yield report

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return list(islice(iter(self), start, stop, step))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return next(islice(iter(self), index, None))

    def _read(self, bucket: int) -> Iterator["ConnectionReport"]:
        with open(self._path(bucket), "rb") as handle:
            while True:
                try:
                    chunk = pickle.load(handle)
                except EOFError:
                    return
                for values in chunk:
                    yield report_from(values)

    def _path(self, bucket: int) -> str:
        return _path(self.directory, bucket)


def _path(directory: str, bucket: int) -> str:
    return os.path.join(directory, f"reports-{bucket:04d}.pkl")


@dataclass(frozen=True, slots=True)
class Written:
    """What the store keeps in memory of a spilled bucket: enough to number and count it."""

    first_frames: np.ndarray  # int64, in the bucket's id order
    closes: list[str]  # how each connection closed, aligned


def write_bucket(directory: str, bucket: int, reports: list["ConnectionReport"]) -> Written:
    """Spill one bucket's reports (in its id order) to ``directory``."""
    try:
        with open(_path(directory, bucket), "wb") as handle:
            for start in range(0, len(reports), CHUNK):
                chunk = [report_values(r) for r in reports[start : start + CHUNK]]
                pickle.dump(chunk, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as err:
        raise PcapcheckError(f"{directory}: cannot write the temporary report file: {err.strerror or err}") from None
    first_frames = np.fromiter((r.first_frame for r in reports), dtype=np.int64, count=len(reports))
    return Written(first_frames, [r.close for r in reports])
