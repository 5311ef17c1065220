"""Findings of a partitioned run (pcapcheck.partition), on disk, read back in the run's order.

The process that analyses a bucket writes the bucket's findings (``write_findings``), sorted, and
keeps in memory only what numbering and counting need (``SpilledFindings``: a few bytes a finding);
``FindingStore`` reads the buckets back, numbers each finding's connection as the run numbers it
(pcapcheck.store), leaves out those of connections an error cut, and merges the buckets.

Why the order is the one an in-memory run gives.  There, findings are collected connection by
connection, each connection's in the order its checks emitted them (``buckets.assemble`` once
sorted by (connection, emission index) to make that), then sorted, stably, by (frame, connection,
rule).  So the run's order is by (frame, connection, rule), and among findings equal in those by
emission order; two such findings are of one connection, hence of one bucket.

* Within a bucket, its ids (1.. in order of first frame) are ordered as the run's ids of the same
  connections (the run numbers by first frame too), and the bucket emits connection by connection
  in its id order, each in emission order.  A stable sort of the bucket's findings by (frame, id in
  the bucket, rule) therefore puts them in the run's order restricted to the bucket.
* Across buckets no two findings are equal in (frame, connection, rule): a connection lives in one
  bucket.  Merging the sorted buckets by (frame, run id, rule) therefore gives the run's order, with
  no tie left to the merge.
* Leaving out the findings of cut connections keeps the order of the others.

``len()`` and the counts (``kind_counts``) never read the files.

A finding's JSON record and CSV row are made where its bucket is analysed (``write_findings``'s
``render``; in parallel under ``--jobs``), all but its connection's number and what precedes it (the
rule and severity, which the kind of finding fixes); ``joined_texts`` then writes them in the run's
order without reading a finding back.
"""

from __future__ import annotations

import heapq
import os
import pickle
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

import numpy as np

from .errors import PcapcheckError
from .findings import Finding, Severity
from .segments import Side
from .sequences import ComparesAsList, IteratedSequence
from .text_records import bucket_dtype, interleave, joined, write_records
from . import write_behind

# Findings pickled together.  A merge holds one chunk per bucket, and every bucket stays open to
# the end of it (buckets interleave in time): small chunks keep hundreds of buckets to a few MB.
CHUNK = 64
# Records of text per chunk on disk: as for connections (pcapcheck.store), a merge holds one per bucket.
TEXT_RECORDS = 64

# What counting needs of a finding: (rule, severity value, capture_quality).
Kind = tuple[str, str, bool]

_SEVERITY = {s.value: s for s in Severity}
_SIDE = {s.value: s for s in Side}
_SIDE[None] = None  # type: ignore[index]
_ORDER = attrgetter("frame", "connection", "rule")


@dataclass(frozen=True, slots=True)
class SpilledFindings:
    """What stays in memory of a bucket's findings once ``write_findings`` wrote them: in file
    order, each one's connection (its id in the bucket) and kind."""

    connections: np.ndarray  # int32, ids in the bucket (1..)
    kinds: np.ndarray  # uint16, index into kind_table
    kind_table: tuple[Kind, ...]
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # each finding's
    texts: tuple[str, ...] = ()  # kinds of report text made for every finding (``write_findings``)

    @classmethod
    def empty(cls) -> "SpilledFindings":
        return cls(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.uint16), ())


# Makes the findings' report text by kind ("json", "csv"): each finding's text after its
# connection's number, None for a kind it cannot make (a value of an odd type: the writer then
# formats the findings itself).  Handed in by the CLI (reports.fragments): analysis does not import
# the reports.
FindingRender = Callable[[Sequence[Finding]], dict[str, "list[str] | None"]]


def write_findings(
    directory: str, bucket: int, findings: list[Finding], render: FindingRender | None = None
) -> SpilledFindings:
    """Spill one bucket's findings (connection = the id in the bucket, in the order the checks
    emitted them) to ``directory``, sorted as the module docstring says, with the text ``render``
    makes of them."""
    if not findings:
        return SpilledFindings.empty()
    ordered = sorted(findings, key=_ORDER)  # stable: emission order among equals
    table: dict[Kind, int] = {}
    kinds = np.empty(len(ordered), dtype=np.uint16)
    for i, f in enumerate(ordered):
        kinds[i] = table.setdefault((f.rule, f.severity._value_, f.capture_quality), len(table))
    connections = np.fromiter((f.connection for f in ordered), dtype=np.int32, count=len(ordered))
    try:
        frames = np.fromiter((f.frame for f in ordered), dtype=np.int64, count=len(ordered))
    except (TypeError, ValueError, OverflowError):  # a frame that is no number: no text, the writer reads them
        frames, render = np.zeros(0, dtype=np.int64), None
    made: list[str] = []
    try:
        with write_behind.create(_path(directory, bucket)) as handle:
            for start in range(0, len(ordered), CHUNK):
                chunk = [_values(f) for f in ordered[start : start + CHUNK]]
                pickle.dump(chunk, handle, protocol=pickle.HIGHEST_PROTOCOL)
        for kind, texts in (render(ordered) if render is not None else {}).items():
            if texts is None:
                continue
            with write_behind.create(_text_path(directory, bucket, kind)) as handle:
                for start in range(0, len(texts), TEXT_RECORDS):
                    write_records(handle, texts[start : start + TEXT_RECORDS])
            made.append(kind)
    except OSError as err:
        raise PcapcheckError(f"{directory}: cannot write the temporary findings file: {err.strerror or err}") from None
    return SpilledFindings(connections, kinds, tuple(table), frames, tuple(made))


@dataclass(frozen=True, slots=True)
class _RunOrder:
    """The findings in the run's order: each one's bucket, connection number and head."""

    buckets: np.ndarray  # text_records.bucket_dtype
    numbers: np.ndarray  # int64, the connection's id in the run
    head_codes: np.ndarray  # int64, index into heads
    heads: list[tuple[str, str]]  # (rule, severity value)


def _values(f: Finding) -> tuple:
    """A finding as plain values (see store.report_values: tuples unpickle several times faster)."""
    # _value_: what .value returns, without the property's cost (this runs for every finding).
    endpoint = f.endpoint._value_ if f.endpoint is not None else None
    return (f.rule, f.severity._value_, f.connection, endpoint, f.frame, f.time, f.message, f.rfc, f.capture_quality)


def _path(directory: str, bucket: int) -> str:
    return os.path.join(directory, f"findings-{bucket:04d}.pkl")


def _text_path(directory: str, bucket: int, kind: str) -> str:
    return os.path.join(directory, f"findings-{kind}-{bucket:04d}.txt")


class FindingStore(ComparesAsList, IteratedSequence):
    """Findings bucket by bucket on disk; a sequence of Finding in the run's order."""

    def __init__(self, directory: str, keep_alive: object = None):
        self.directory = directory
        self._keep_alive = keep_alive  # e.g. the ConnectionStore, which keeps the directory
        self._spilled: list[SpilledFindings] = []  # per bucket
        self._first_frames: list[np.ndarray] = []  # per bucket, its connections' in its id order
        self._cut: int | None = None
        self._len: int | None = None

    def add(self, bucket: int, first_frames: np.ndarray, spilled: SpilledFindings) -> None:
        """Take in a bucket's findings; ``first_frames`` are its connections' (store.Written's)."""
        while len(self._spilled) <= bucket:
            self._spilled.append(SpilledFindings.empty())
            self._first_frames.append(np.zeros(0, dtype=np.int64))
        self._spilled[bucket] = spilled
        self._first_frames[bucket] = first_frames
        self._len = None

    def cut_at(self, frame: int | None) -> None:
        """Leave out findings of connections whose first frame is at or after ``frame`` (None:
        keep all), as ``ConnectionStore.cut_at`` leaves out the connections."""
        self._cut = frame
        self._len = None

    def _kept(self, bucket: int) -> np.ndarray | None:
        """Which of the bucket's findings (file order) are kept; None: all."""
        if self._cut is None:
            return None
        return self._first_frames[bucket][self._spilled[bucket].connections - 1] < self._cut

    def __len__(self) -> int:
        if self._len is None:
            total = 0
            for bucket, spilled in enumerate(self._spilled):
                kept = self._kept(bucket)
                total += len(spilled.connections) if kept is None else int(np.count_nonzero(kept))
            self._len = total
        return self._len

    def kind_counts(self) -> Counter:
        """(rule, severity value, capture_quality) -> how many findings, without reading the files."""
        counts: Counter = Counter()
        for bucket, spilled in enumerate(self._spilled):
            if not len(spilled.kinds):
                continue
            kept = self._kept(bucket)
            codes = spilled.kinds if kept is None else spilled.kinds[kept]
            for code, n in enumerate(np.bincount(codes, minlength=len(spilled.kind_table)).tolist()):
                if n:
                    counts[spilled.kind_table[code]] += n
        return counts

    def _numbers(self) -> list[np.ndarray]:
        """Per bucket, in file order, the id in the run of each finding's connection, 0 for one
        cut.  As ConnectionStore numbers them: the rank of the first frame among all kept.  Only
        the findings' connections are numbered, as arrays: a list of every connection's id would
        hold tens of bytes a connection for the whole merge."""
        joined = np.concatenate(self._first_frames) if self._first_frames else np.zeros(0, dtype=np.int64)
        if self._cut is not None:
            joined = joined[joined < self._cut]
        ranked = np.sort(joined)
        del joined
        out = []
        for frames, spilled in zip(self._first_frames, self._spilled):
            own = frames[spilled.connections.astype(np.int64) - 1]
            numbers = np.searchsorted(ranked, own) + 1
            if self._cut is not None:
                numbers[own >= self._cut] = 0
            out.append(numbers)
        return out

    def __iter__(self) -> Iterator[Finding]:
        numbers = self._numbers()
        streams = [
            self._read(bucket, numbers[bucket])
            for bucket, spilled in enumerate(self._spilled)
            if len(spilled.connections)
        ]
        return heapq.merge(*streams, key=_ORDER)

    def joined_texts(
        self, kind: str, head_of: Callable[[str, str], bytes], separator: bytes
    ) -> Iterator[bytes] | None:
        """The findings' text of ``kind`` made ahead (``write_findings``' ``render``) as a writer
        puts it in a file, in the run's order: each record ``head_of(rule, severity)``, its
        connection's number and its text, joined by ``separator``, as UTF-8 in blocks (to be
        joined by ``separator`` too); None unless every bucket with findings has that kind, and
        when an error cut the run short of findings it made (the writer reads the findings)."""
        if any(kind not in s.texts for s in self._spilled if len(s.connections)):
            return None
        numbers = self._numbers()
        # A bucket's text is read in file order, where the findings of connections the cut left
        # out lie among the others: rare (a damaged capture), so left to the reading path.
        if any(not n.all() for n in numbers):
            return None
        order = self._run_order(numbers)
        try:
            heads = [head_of(rule, level) for rule, level in order.heads]
        except (TypeError, ValueError):  # a rule or severity the writer cannot format: it reads them
            return None
        return self._joined(kind, order, heads, separator)

    def _joined(self, kind: str, order: "_RunOrder", heads: list[bytes], separator: bytes) -> Iterator[bytes]:
        for start, texts in interleave(order.buckets, lambda b: _text_path(self.directory, b, kind)):
            end = start + len(texts)
            codes, numbers = order.head_codes[start:end].tolist(), order.numbers[start:end].tolist()
            yield joined([heads[h] + b"%d" % n for h, n in zip(codes, numbers)], texts, separator)

    def _run_order(self, numbers: list[np.ndarray]) -> "_RunOrder":
        """The findings, numbered (``_numbers``, none cut), in the run's order (the module
        docstring's (frame, connection, rule))."""
        rank_of = {rule: r for r, rule in enumerate(sorted({k[0] for s in self._spilled for k in s.kind_table}))}
        head_index: dict[tuple[str, str], int] = {}
        buckets, frames, numbered, ranks, head_codes = [], [], [], [], []
        for bucket, (spilled, bucket_numbers) in enumerate(zip(self._spilled, numbers)):
            codes = spilled.kinds
            table = spilled.kind_table
            rank = np.asarray([rank_of[rule] for rule, _, _ in table], dtype=np.int64)
            head = np.asarray([head_index.setdefault(k[:2], len(head_index)) for k in table], dtype=np.int64)
            buckets.append(np.full(len(codes), bucket, dtype=bucket_dtype(len(self._spilled))))
            frames.append(spilled.frames)
            numbered.append(bucket_numbers)
            ranks.append(rank[codes])
            head_codes.append(head[codes])
        if not buckets:
            empty = np.zeros(0, dtype=np.int64)
            return _RunOrder(empty, empty, empty, [])
        # Stable: findings equal in (frame, connection, rule) are of one bucket, in its file order.
        order = np.lexsort((np.concatenate(ranks), np.concatenate(numbered), np.concatenate(frames)))
        return _RunOrder(
            np.concatenate(buckets)[order], np.concatenate(numbered)[order], np.concatenate(head_codes)[order],
            list(head_index),
        )  # fmt: skip

    def _read(self, bucket: int, numbers: np.ndarray) -> Iterator[Finding]:
        severity, side = _SEVERITY, _SIDE
        try:
            handle = open(_path(self.directory, bucket), "rb")
        except OSError as err:
            reason = err.strerror or err
            raise PcapcheckError(f"{self.directory}: cannot read the temporary findings file: {reason}") from None
        at = 0
        with handle:
            while True:
                try:
                    chunk = pickle.load(handle)
                except EOFError:
                    return
                ids = numbers[at : at + len(chunk)].tolist()
                at += len(chunk)
                for number, (rule, level, _local, endpoint, frame, time, message, rfc, quality) in zip(ids, chunk):
                    if number:
                        yield Finding(rule, severity[level], number, side[endpoint], frame, time, message, rfc, quality)

    def __repr__(self) -> str:
        return f"FindingStore({self.directory!r}, {len(self)} findings)"
