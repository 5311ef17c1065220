"""Connection reports of a partitioned run (pcapcheck.partition), on disk, read back in id order.

Each bucket's reports are spilled as soon as the bucket is analysed, in its own order of first
frame; reading merges the buckets by first frame and numbers the connections 1, 2, ... as it goes,
which is exactly how one in-memory run numbers them (``connections.rebuild``: ids in order of first
frame, and a frame belongs to one connection only).  Reports see a sequence: ``len()``, iteration
in id order, slicing; nothing holds all reports at once.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
from collections import Counter
import os
import pickle
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter, itemgetter
from typing import TYPE_CHECKING

import numpy as np

from .errors import PcapcheckError
from .sequences import ComparesAsList, IteratedSequence
from .text_records import bucket_dtype, interleave, joined, record_lengths, write_records
from . import write_behind

if TYPE_CHECKING:
    from .analysis import ConnectionReport
    from .findings import Finding
    from .replay.model import TransitionPattern

# Reports pickled together: big enough that pickle's per-call cost vanishes, small enough that a
# merge over hundreds of buckets holds little.
CHUNK = 256
# Reports whose text is made at once (one kind at a time, ~20 MB of JSON): a templated block costs
# its setup once per piece, and 8192 makes a bucket one or two pieces (write_bucket 12 % faster
# than 2048 on 1M, 7 MB more held).
TEXT_CHUNK = 8192
# Records of text per chunk on disk.  Writing a report merges every bucket, holding one chunk of
# each (about 2 KB a record), and the one before where a slice of the merge began in it (records
# are views of their chunk, text_records): small chunks keep that flat with hundreds of buckets.
TEXT_RECORDS = 64


def report_values(report: "ConnectionReport") -> tuple:
    """A report as plain values: tuples pickle and unpickle several times faster than objects
    (slotted dataclasses such as Step and Segment pickle through Python-level state methods).

    Templated transitions stay compact: their values, and their pattern once per pickled chunk."""
    from .replay.model import TemplatedTransitions

    read_all, transitions_at, steps_at, endpoints_at = _report_layout()
    values = list(read_all(report))
    transitions = values[transitions_at]
    if not (type(transitions) is TemplatedTransitions and transitions.compact):
        values[transitions_at] = [tuple(t) for t in transitions]
    steps = values[steps_at]
    if steps is not None:
        segment_values, step_values = _step_getters()
        values[steps_at] = [(segment_values(s.segment), *step_values(s)) for s in steps]
    for at in endpoints_at:
        values[at] = (values[at].addr, values[at].port)
    return tuple(values)


@functools.cache
def _report_layout() -> tuple[Callable, int, int, tuple[int, int]]:
    """ConnectionReport's fields in slot order, and where transitions, steps and endpoints are."""
    from .analysis import ConnectionReport

    slots = ConnectionReport.__slots__
    at = slots.index
    return attrgetter(*slots), at("transitions"), at("steps"), (at("client"), at("server"))


@functools.cache
def _step_getters() -> tuple[Callable, Callable]:
    """A Step as (its Segment's field values, its other field values), in their init order."""
    from .replay.model import Step
    from .segments import Segment

    step_fields = [f.name for f in fields(Step) if f.name != "segment"]
    return attrgetter(*Segment._fields), attrgetter(*step_fields)


class StoredSteps(ComparesAsList, Sequence):
    """A report's steps as read back: Step objects are made only when read.  Only the HTML ladder
    reads them (connections with findings); the JSON and CSV writers, which read every report
    back, never do."""

    __slots__ = ("_values", "_steps")

    def __init__(self, values: list[tuple]):
        self._values: list[tuple] | None = values
        self._steps: list | None = None

    def _made(self) -> list:
        if self._steps is None:
            from .replay.model import Step
            from .segments import Segment

            self._steps = [Step(Segment(*segment), *rest) for segment, *rest in self._values or ()]
            self._values = None
        return self._steps

    def __len__(self) -> int:
        return len(self._values) if self._values is not None else len(self._made())

    def __getitem__(self, index):
        return self._made()[index]

    def __iter__(self):
        return iter(self._made())

    def __repr__(self) -> str:
        return repr(self._made())


class _Rebuilder:
    """``report_values`` back to reports; endpoints repeat (a server, a client port reused), so each
    distinct one is made once, and so is each transition pattern (one per template, read back once
    per chunk): the report writers key their text by the pattern object."""

    def __init__(self) -> None:
        from .analysis import ConnectionReport
        from .connections import Endpoint
        from .replay.model import TemplatedTransitions, Transition, TransitionPattern

        slots = ConnectionReport.__slots__
        self._report = ConnectionReport
        self._endpoint = Endpoint
        self._transition = Transition._make
        self._transitions_at = slots.index("transitions")
        self._steps_at = slots.index("steps")
        self._client_at, self._server_at = slots.index("client"), slots.index("server")
        self._endpoints: dict[tuple, object] = {}
        self._templated = TemplatedTransitions
        self._patterns: dict[TransitionPattern, TransitionPattern] = {}
        # By id of a pattern as read (held here, so the id is not reused): its merged one.
        self._read_patterns: dict[int, tuple[TransitionPattern, TransitionPattern]] = {}

    def __call__(self, values: tuple) -> "ConnectionReport":
        values = list(values)
        transitions = values[self._transitions_at]
        if type(transitions) is self._templated:
            transitions.pattern = self._pattern(transitions.pattern)
        else:
            make = self._transition
            values[self._transitions_at] = [make(t) for t in transitions]
        if values[self._steps_at] is not None:
            values[self._steps_at] = StoredSteps(values[self._steps_at])
        for at in (self._client_at, self._server_at):
            key = values[at]
            endpoint = self._endpoints.get(key)
            if endpoint is None:
                if len(self._endpoints) > 100_000:
                    self._endpoints.clear()
                endpoint = self._endpoints[key] = self._endpoint(*key)
            values[at] = endpoint
        return self._report(*values)

    def piece(self, values: list[tuple], positions: np.ndarray, blocks: list) -> Iterator["ConnectionReport"]:
        """A stored piece of a templated.ConnectionReports, its reports in order."""
        from .templated import ConnectionReports

        for block in blocks:
            block.kind = replace(block.kind, pattern=self._pattern(block.kind.pattern))
        return iter(ConnectionReports([self(v) for v in values], positions, blocks))

    def _pattern(self, read: "TransitionPattern") -> "TransitionPattern":
        known = self._read_patterns.get(id(read))
        if known is not None and known[0] is read:
            return known[1]
        if len(self._read_patterns) > 10_000:
            self._read_patterns.clear()
        if len(self._patterns) > 10_000:
            self._patterns.clear()
        merged = self._patterns.setdefault(read, read)
        self._read_patterns[id(read)] = (read, merged)
        return merged


_POWERS_OF_TEN = 10 ** np.arange(1, 19, dtype=np.int64)  # a positive int64 has one more digit at each


class ConnectionStore(IteratedSequence):
    """Reports bucket by bucket on disk; a sequence of ConnectionReport in id order."""

    def __init__(self, directory: str, keep_alive: object = None):
        self.directory = directory
        self._keep_alive = keep_alive  # e.g. the TemporaryDirectory: removed once the store is gone
        self._first_frames: list[np.ndarray] = []  # per bucket, in the bucket's id order
        # Per bucket, aligned with _first_frames: how each connection closed, as codes into the names
        # (a byte a connection: the store holds these for every connection of the run).
        self._closes: list[tuple[np.ndarray, list[str]]] = []
        self._texts: list[tuple[str, ...]] = []  # per bucket, the kinds of text made ahead
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # per bucket, where its chunks start
        self._kept: list[np.ndarray | None] = []  # per bucket, the places of its reports stored (None: all)
        self._cut: int | None = None  # connections with a first frame at or after it are left out
        self._sorted: np.ndarray | None = None
        self._places: np.ndarray | None = None  # ``_sequence``, once asked (reports ask it several times)
        self._lookups = True  # ``reports_of`` may be asked (``forbid_lookups``)

    def forbid_lookups(self) -> None:
        """The run said nothing would look a connection up (analysis.analyze's ``by_id``): its
        buckets keep no report, and asking for one is a bug, not a connection without a report."""
        self._lookups = False

    def adopt(self, bucket: int, written: "Written") -> None:
        """Take in a bucket written with ``write_bucket`` (by this process or another)."""
        while len(self._first_frames) <= bucket:
            self._first_frames.append(np.zeros(0, dtype=np.int64))
            self._closes.append((np.zeros(0, dtype=np.uint8), []))
            self._texts.append(())
            self._chunks.append((np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))
            self._kept.append(None)
        self._first_frames[bucket] = written.first_frames
        self._chunks[bucket] = (written.chunk_starts, written.chunk_offsets)
        self._kept[bucket] = written.kept
        names = sorted(set(written.closes))
        code = {name: k for k, name in enumerate(names)}
        self._closes[bucket] = (np.fromiter(map(code.__getitem__, written.closes), np.uint8, len(written.closes)), names)
        self._texts[bucket] = written.texts
        self._sorted = None
        self._places = None

    def close_counts(self) -> Counter:
        """Connections by how they closed, without reading the reports back."""
        counts: Counter = Counter()
        for frames, (codes, names) in zip(self._first_frames, self._closes):
            if self._cut is not None:
                codes = codes[frames < self._cut]
            for name, n in zip(names, np.bincount(codes, minlength=len(names)).tolist()):
                if n:
                    counts[name] += n
        return counts

    def cut_at(self, frame: int | None) -> None:
        """Leave out connections whose first frame is at or after ``frame`` (None: keep all)."""
        self._cut = frame
        self._sorted = None
        self._places = None

    def _all_first_frames(self) -> np.ndarray:
        if self._sorted is None:
            joined = np.concatenate(self._first_frames) if self._first_frames else np.zeros(0, dtype=np.int64)
            if self._cut is not None:
                joined = joined[joined < self._cut]
            self._sorted = np.sort(joined)
        return self._sorted

    def renumber(self, bucket: int, findings: list["Finding"]) -> list[tuple[int, "Finding"]]:
        """(id in the run, finding) for a bucket's findings (their ``connection``: the id within the
        bucket, 1..); those of connections cut are dropped."""
        if not findings:
            return []
        local = np.fromiter((f.connection for f in findings), dtype=np.int64, count=len(findings))
        frames = self._first_frames[bucket][local - 1]
        # The id in the run is the rank of the connection's first frame among all kept.
        numbers = np.searchsorted(self._all_first_frames(), frames) + 1
        kept = (frames < self._cut) if self._cut is not None else np.ones(len(findings), dtype=bool)
        return [
            (number, replace(f, connection=number))
            for f, number, keep in zip(findings, numbers.tolist(), kept.tolist())
            if keep
        ]

    def __len__(self) -> int:
        # Counted, not from the sorted frames: those would stay held (8 bytes a connection).
        if self._cut is None:
            return sum(len(f) for f in self._first_frames)
        return sum(int(np.count_nonzero(f < self._cut)) for f in self._first_frames)

    def __iter__(self) -> Iterator["ConnectionReport"]:
        rebuild = _Rebuilder()
        streams = [self._read(b, rebuild) for b in range(len(self._first_frames))]
        merged = heapq.merge(*streams, key=lambda r: r.first_frame)
        for number, report in enumerate(merged, start=1):
            if self._cut is not None and report.first_frame >= self._cut:
                return  # merged in order of first frame: every later one is cut too
            report.id = number
            yield report

    def reports_of(self, ids: Collection[int]) -> dict[int, "ConnectionReport"]:
        """The reports of connections ``ids`` (ids not held are left out), reading only the chunks
        that hold them: the terminal's worst findings name a few connections of millions."""
        if not self._lookups:
            raise PcapcheckError("internal error: a report looks connections up, but this run kept none")
        wanted = sorted({n for n in ids if 1 <= n <= len(self)})
        if not wanted:
            return {}
        frames = self._all_first_frames()[np.asarray(wanted, dtype=np.int64) - 1]
        # Per bucket and chunk: (index among the bucket's stored reports, id) of each wanted report.
        places: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for bucket, held in enumerate(self._first_frames):
            if not len(held):
                continue
            at = np.searchsorted(held, frames)
            found = (at < len(held)) & (held[np.minimum(at, len(held) - 1)] == frames)
            at, numbers = at[found], np.asarray(wanted)[found]
            kept = self._kept[bucket]
            if kept is not None:  # only some stored: the others are not held
                if not len(kept):
                    continue
                index = np.searchsorted(kept, at)
                stored = (index < len(kept)) & (kept[np.minimum(index, len(kept) - 1)] == at)
                at, numbers = index[stored], numbers[stored]
            starts = self._chunks[bucket][0]
            for index, number in zip(at.tolist(), numbers.tolist()):
                chunk = int(np.searchsorted(starts, index, side="right")) - 1
                places.setdefault((bucket, chunk), []).append((index, number))
        rebuild = _Rebuilder()
        out: dict[int, ConnectionReport] = {}
        for (bucket, chunk), wanted_here in sorted(places.items()):
            starts, offsets = self._chunks[bucket]
            with open(self._path(bucket), "rb") as handle:
                handle.seek(int(offsets[chunk]))
                reports = list(_reports_in(pickle.load(handle), rebuild))
            for index, number in wanted_here:
                report = reports[index - int(starts[chunk])]
                report.id = number
                out[number] = report
        return out

    def joined_fragments(
        self, kind: str, prefix: bytes, separator: bytes, start: int = 0, stop: int | None = None
    ) -> Iterator[bytes] | None:
        """The report text made ahead (``write_bucket``'s ``render``) as the writers put it in a
        file, in id order: each record ``prefix % id`` and its text, joined by ``separator``, as
        UTF-8 in blocks of text_records.MERGE_SLICE records (the blocks to be joined by
        ``separator`` too); None unless every bucket holding a connection has that kind.  Only the
        records from place ``start`` to ``stop`` (0-based, in id order), when given."""
        if not self._has_text(kind):
            return None
        sequence = self._sequence()
        skip = dict(enumerate(np.bincount(sequence[:start]).tolist())) if start else None
        return (
            joined([prefix % number for number in _numbers(start + first, len(texts))], texts, separator)
            for first, texts in interleave(
                sequence[start:stop], functools.partial(_text_path, self.directory, kind=kind), skip
            )
        )  # fmt: skip

    def record_sizes(self, kind: str, prefix: bytes) -> np.ndarray | None:
        """The bytes of each record ``joined_fragments`` makes (``prefix % id`` and its text), in
        id order, read without the text; None as for ``joined_fragments``."""
        if not self._has_text(kind):
            return None
        sequence = self._sequence()
        # The k-th place naming bucket b holds b's k-th record: the buckets' lengths laid end to
        # end, in bucket order, go to the places sorted by bucket.
        lengths = [self._lengths(b, n, kind) for b, n in enumerate(np.bincount(sequence).tolist()) if n]
        sizes = np.zeros(len(sequence), dtype=np.int64)
        if lengths:
            sizes[np.argsort(sequence, kind="stable")] = np.concatenate(lengths)
        del lengths, sequence
        sizes += len(prefix % 0) - 1
        for power in _POWERS_OF_TEN.tolist():  # ids 1.. in order: one more digit from each power on
            if power > len(sizes):
                break
            sizes[power - 1 :] += 1
        sizes += 1  # the digit every id has
        return sizes

    def text_bytes(self, kind: str) -> int | None:
        """The bytes of the text made ahead of every connection kept, ids not counted; None as for
        ``joined_fragments``."""
        if not self._has_text(kind):
            return None
        counts = np.bincount(self._sequence()).tolist()
        return sum(int(self._lengths(b, n, kind).sum()) for b, n in enumerate(counts) if n)

    def _lengths(self, bucket: int, kept: int, kind: str) -> np.ndarray:
        """The lengths of the first ``kept`` records of the bucket's text (those of connections a
        cut left out come after them)."""
        lengths = record_lengths(_text_path(self.directory, bucket, kind))
        if len(lengths) < kept:
            raise PcapcheckError(f"{_text_path(self.directory, bucket, kind)}: the temporary report text ended early")
        return lengths[:kept]

    def _has_text(self, kind: str) -> bool:
        return all(kind in made for frames, made in zip(self._first_frames, self._texts) if len(frames))

    def _sequence(self) -> np.ndarray:
        """The bucket of each connection kept, in id order."""
        if self._places is None:
            self._places = self._bucket_of_each_place()
        return self._places

    def _bucket_of_each_place(self) -> np.ndarray:
        # Merged by first frame without a heap: the order of buckets is known from the frames.  The
        # bucket of each place is kept as an array (text_records.bucket_dtype): as a list it would
        # hold tens of bytes a connection for the whole merge.
        frames = np.concatenate(self._first_frames) if self._first_frames else np.zeros(0, dtype=np.int64)
        bucket_of = np.repeat(
            np.arange(len(self._first_frames), dtype=bucket_dtype(len(self._first_frames))),
            [len(f) for f in self._first_frames],
        )
        order = np.argsort(frames, kind="stable")
        if self._cut is not None:
            order = order[frames[order] < self._cut]
        return bucket_of[order]

    def _read(self, bucket: int, rebuild: "_Rebuilder") -> Iterator["ConnectionReport"]:
        if self._kept[bucket] is not None:
            # The run said nothing would list every connection (analysis.analyze's all_reports).
            raise PcapcheckError(
                "internal error: a report needs every connection, but this run kept only those with findings"
            )
        with open(self._path(bucket), "rb") as handle:
            while True:
                try:
                    chunk = pickle.load(handle)
                except EOFError:
                    return
                yield from _reports_in(chunk, rebuild)

    def _path(self, bucket: int) -> str:
        return _path(self.directory, bucket)


def _reports_in(chunk: object, rebuild: _Rebuilder) -> Iterator["ConnectionReport"]:
    """The reports of a chunk ``_stored`` pickled, in order."""
    if type(chunk) is list:
        return map(rebuild, chunk)
    return rebuild.piece(*chunk)  # type: ignore[misc]


def _path(directory: str, bucket: int) -> str:
    return os.path.join(directory, f"reports-{bucket:04d}.pkl")


def _text_path(directory: str, bucket: int, kind: str) -> str:
    return os.path.join(directory, f"{kind}-{bucket:04d}.pkl")


@dataclass(frozen=True, slots=True)
class Written:
    """What the store keeps in memory of a spilled bucket: enough to number and count it."""

    first_frames: np.ndarray  # int64, in the bucket's id order
    closes: list[str]  # how each connection closed, aligned
    texts: tuple[str, ...] = ()  # kinds of report text made ahead for every connection of the bucket
    # Per pickled chunk of reports: the index of its first report among those stored (the place in
    # the bucket when all were), its byte offset.
    chunk_starts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    chunk_offsets: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # The places of the reports stored, when only some were (``write_bucket``'s ``keep``).
    kept: np.ndarray | None = None


# A renderer (reports/fragments.py) turns a bucket's reports into report text by kind, without ids:
# (kind, text per report or None) for each kind, in turn.
Render = Callable[[Sequence["ConnectionReport"]], Iterable[tuple[str, "list[str] | None"]]]


def write_bucket(
    directory: str,
    bucket: int,
    reports: Sequence["ConnectionReport"],
    render: Render | None = None,
    keep: Collection[int] | None = None,
) -> Written:
    """Spill one bucket's reports (in its id order: a list, or a templated.ConnectionReports) to
    ``directory``, with text ``render`` makes (a chunk at a time: the text of a whole bucket is
    tens of MB).

    ``keep``: the places (0-based, in the bucket's id order) of the only reports anything will read,
    by id (``ConnectionStore.reports_of``: the terminal, SARIF and the baseline read those of
    connections with findings); None: every report, which can then be iterated too.  Honoured only
    when ``render`` made every kind of text for the whole bucket: else a writer formats these
    reports itself, reading them all.  Pickling every report costs a run about a tenth of its time.
    """
    made_kinds = _write_texts_of(directory, bucket, reports, render)
    kept = None
    if keep is not None and all(made_kinds.values()):
        # Not np.unique: its first call imports numpy.ma, ~8 ms in every process of a run.
        kept = np.asarray(sorted({p for p in keep if 0 <= p < len(reports)}), dtype=np.int64)
    stored = reports if kept is None else _reports_at(reports, kept)
    # Where each pickled chunk starts: its first report's index among those stored, its byte offset.
    chunk_starts: list[int] = []
    chunk_offsets: list[int] = []
    place = 0
    try:
        with write_behind.create(_path(directory, bucket)) as handle:
            # Pieces of pieces: cutting a ConnectionReports looks at every block it holds.
            for piece in _chunks(stored, TEXT_CHUNK):
                for part in _chunks(piece, CHUNK):
                    chunk_starts.append(place)
                    chunk_offsets.append(handle.tell())
                    place += len(part)
                    pickle.dump(_stored(part), handle, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as err:
        raise PcapcheckError(f"{directory}: cannot write the temporary report file: {err.strerror or err}") from None
    if hasattr(reports, "first_frames"):
        first_frames, closes = reports.first_frames(), reports.closes()  # type: ignore[attr-defined]
    else:
        first_frames = np.fromiter((r.first_frame for r in reports), dtype=np.int64, count=len(reports))
        closes = [r.close for r in reports]
    return Written(
        first_frames,
        closes,
        tuple(k for k, ok in made_kinds.items() if ok),
        np.asarray(chunk_starts, dtype=np.int64),
        np.asarray(chunk_offsets, dtype=np.int64),
        kept,
    )


def _write_texts_of(
    directory: str, bucket: int, reports: Sequence["ConnectionReport"], render: Render | None
) -> dict[str, bool]:
    """The text ``render`` makes of the reports, to the bucket's text files; per kind, whether it
    was made for every report."""
    if render is None:
        return {}
    made_kinds: dict[str, bool] = {}  # kind -> made for every connection so far
    texts: dict[str, object] = {}
    try:
        with contextlib.ExitStack() as files:  # closing writes what is buffered: inside the try
            for number, chunk in enumerate(_chunks(reports, TEXT_CHUNK)):
                for kind, made in render(chunk):
                    if made is None or not made_kinds.get(kind, number == 0):
                        made_kinds[kind] = False  # one odd report: the writer formats the whole kind
                    else:
                        made_kinds[kind] = True
                        if kind not in texts:
                            texts[kind] = files.enter_context(write_behind.create(_text_path(directory, bucket, kind)))
                        for k in range(0, len(made), TEXT_RECORDS):
                            write_records(texts[kind], made[k : k + TEXT_RECORDS])
                    del made  # before the next kind's text is made
    except OSError as err:
        raise PcapcheckError(f"{directory}: cannot write the temporary report file: {err.strerror or err}") from None
    return made_kinds


def _chunks(reports: Sequence["ConnectionReport"], size: int) -> Iterator[Sequence["ConnectionReport"]]:
    from .templated import report_pieces

    pieces = report_pieces(reports, size)
    return pieces if pieces is not None else (reports[k : k + size] for k in range(0, len(reports), size))


def _reports_at(reports: Sequence["ConnectionReport"], places: np.ndarray) -> list["ConnectionReport"]:
    """The reports at ``places`` (sorted), as objects; a templated block's are made only for them."""
    blocks = getattr(reports, "blocks", None)
    if blocks is None:
        return [reports[p] for p in places.tolist()]
    wanted = np.zeros(len(reports), dtype=bool)  # by place
    wanted[places] = True
    positions = reports.object_positions  # type: ignore[attr-defined]
    objects = reports.objects  # type: ignore[attr-defined]
    made = [(int(positions[i]), objects[i]) for i in np.flatnonzero(wanted[positions]).tolist()]
    for block in blocks:
        rows = np.flatnonzero(wanted[block.positions])
        if len(rows):
            taken = block.take(rows)
            made.extend(zip(taken.positions.tolist(), taken.reports()))
    made.sort(key=itemgetter(0))
    return [report for _, report in made]


def _stored(chunk: Sequence["ConnectionReport"]) -> object:
    """What is pickled of a chunk: its reports' values, or for a piece of a ConnectionReports its
    objects' values with their positions and its templated blocks (columns pickle whole)."""
    blocks = getattr(chunk, "blocks", None)
    if blocks is None:
        return [report_values(r) for r in chunk]
    return (
        [report_values(r) for r in chunk.objects],  # type: ignore[attr-defined]
        chunk.object_positions,  # type: ignore[attr-defined]
        blocks,
    )


def _numbers(place: int, count: int) -> range:
    """The ids (1-based) of ``count`` records from 0-based ``place`` on."""
    return range(place + 1, place + 1 + count)
