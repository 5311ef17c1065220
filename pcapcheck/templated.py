"""Connection reports held as columns: the connections whose replay a memo template made.

A capture of a test run is mostly connections of a few shapes (replay/shape.py).  The memo
(replay/memo.py) gives every later connection of a shape its first one's replay; when that one
found nothing and the connection is a first incarnation that no other follows on its tuple, nothing
reads the connection again but the reports.  Such connections are never made into objects: their
report values stay columns of the rebuild's table (``TemplatedBlock``, one per template), and the
report writers format a whole block at a time.  The other connections a template served join such
blocks once their report is final (analysis: after the checks, and after the next incarnation's SYN
ended their TIME-WAIT, as a block kind of its own).  ``ConnectionReports`` is the analysis' sequence
of reports in id order, objects and blocks together; a report object is made for a block member
only when something iterates the sequence (HTML, JUnit, SARIF), equal to the one the object path
makes (tests/test_fastlane_equivalence.py).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .connections import ConnectionTable, Endpoint
from .replay.model import TemplatedTransitions, TransitionPattern
from .segments import flags_text
from .sequences import IteratedSequence
from .timestamps import seconds

if TYPE_CHECKING:
    from .analysis import ConnectionReport

_flags_text = functools.cache(flags_text)


@dataclass(frozen=True, slots=True)
class BlockKind:
    """What a template fixes in each member's report."""

    pattern: TransitionPattern
    client_final_state: str
    server_final_state: str
    close: str
    vantage: str


@dataclass(slots=True)
class TemplatedBlock:
    """Members of one template, their report values as columns (row i: member i)."""

    kind: BlockKind
    positions: np.ndarray  # int64: place in the ConnectionReports (id - 1 there), ascending
    client_addr: list[str]  # address text
    client_port: np.ndarray
    server_addr: list[str]
    server_port: np.ndarray
    incarnation: np.ndarray
    first_frame: np.ndarray
    last_frame: np.ndarray
    start_ns: np.ndarray
    end_ns: np.ndarray
    packets: np.ndarray
    totals: np.ndarray  # (n, 4): packets client, packets server, bytes client, bytes server
    flags_seen: np.ndarray
    # TemplatedTransitions.values by column: times of the template's segments (kept in ns: the
    # JSON writes their text from the digits, pcapcheck.timestamps), their frames, then TIME-WAIT
    # deadlines.
    times: np.ndarray  # (n, segments) int64 ns
    frames: np.ndarray  # (n, segments) int64
    deadlines: np.ndarray  # (n, deadlines) float64

    def __len__(self) -> int:
        return len(self.positions)

    def take(self, rows: np.ndarray) -> "TemplatedBlock":
        """The members at ``rows`` (an index array), as a block of their own."""
        pick = rows.tolist()
        return TemplatedBlock(
            self.kind,
            self.positions[rows],
            [self.client_addr[i] for i in pick],
            self.client_port[rows],
            [self.server_addr[i] for i in pick],
            self.server_port[rows],
            self.incarnation[rows],
            self.first_frame[rows],
            self.last_frame[rows],
            self.start_ns[rows],
            self.end_ns[rows],
            self.packets[rows],
            self.totals[rows],
            self.flags_seen[rows],
            self.times[rows],
            self.frames[rows],
            self.deadlines[rows],
        )

    def starts(self) -> list[float]:
        return seconds(self.start_ns).tolist()

    def ends(self) -> list[float]:
        return seconds(self.end_ns).tolist()

    def durations(self) -> np.ndarray:
        return self.end_ns - self.start_ns

    def flag_texts(self) -> list[str]:
        return [_flags_text(f) for f in self.flags_seen.tolist()]

    def transition_values(self) -> list[tuple]:
        """Each member's TemplatedTransitions.values."""
        return [
            (*t, *f, *d)
            for t, f, d in zip(seconds(self.times).tolist(), self.frames.tolist(), self.deadlines.tolist())
        ]

    def reports(self) -> list["ConnectionReport"]:
        """A ConnectionReport per member (id: position + 1), as the object path makes them."""
        from .analysis import ConnectionReport

        kind = self.kind
        endpoints: dict[tuple[str, int], Endpoint] = {}

        def endpoint(addr: str, port: int) -> Endpoint:
            made = endpoints.get((addr, port))
            if made is None:
                made = endpoints[(addr, port)] = Endpoint(addr, port)
            return made

        columns = zip(
            self.positions.tolist(),
            self.client_addr,
            self.client_port.tolist(),
            self.server_addr,
            self.server_port.tolist(),
            self.incarnation.tolist(),
            self.first_frame.tolist(),
            self.last_frame.tolist(),
            self.starts(),
            self.ends(),
            seconds(self.durations()).tolist(),
            self.packets.tolist(),
            self.totals.tolist(),
            self.flag_texts(),
            self.transition_values(),
        )
        return [
            ConnectionReport(
                position + 1, Endpoint(c_addr, c_port), endpoint(s_addr, s_port), inc, False, first, last,
                start, end, duration, packets, *totals, kind.client_final_state, kind.server_final_state, kind.close,
                kind.vantage, flags, TemplatedTransitions(kind.pattern, values), None,
            )  # fmt: skip
            for (position, c_addr, c_port, s_addr, s_port, inc, first, last, start, end, duration, packets, totals,
                 flags, values) in columns  # fmt: skip
        ]


def templated_block(
    table: ConnectionTable,
    kind: BlockKind,
    members: list[int],
    indices: tuple[int, ...],
    deadlines: tuple[tuple[int, float], ...],
    extra_rows: list[int] | None = None,
) -> TemplatedBlock:
    """The block of ``members`` (table indices, ascending) of a template reading its connections'
    segments ``indices``; ``deadlines``: (position in indices, offset) of each TIME-WAIT deadline.
    ``extra_rows``: per member one more table row (the SYN that ended its TIME-WAIT), whose time
    and frame follow the segments' times and frames in the values (analysis._matched_ended_kind)."""
    k = np.asarray(members, dtype=np.int64)
    starts, ends = table.starts[k], table.ends[k]
    ts_ns, frame = table.rows["ts_ns"], table.rows["frame"]
    at = starts[:, None] + np.asarray(indices, dtype=np.int64)[None, :]
    times = ts_ns[at]
    if deadlines:
        deadline_values = np.stack([seconds(times[:, i]) + offset for i, offset in deadlines], axis=1)
    else:
        deadline_values = np.zeros((len(k), 0), dtype=np.float64)
    if extra_rows is not None:
        at = np.concatenate([at, np.asarray(extra_rows, dtype=np.int64)[:, None]], axis=1)
        times = ts_ns[at]
    version = table.version[k].tolist()
    address = table.address
    return TemplatedBlock(
        kind,
        k,
        [address(raw, v) for raw, v in zip([table.client_key[i] for i in members], version)],
        table.client_port[k],
        [address(raw, v) for raw, v in zip([table.server_key[i] for i in members], version)],
        table.server_port[k],
        table.incarnation[k],
        frame[starts],
        frame[ends - 1],
        ts_ns[starts],
        ts_ns[ends - 1],
        ends - starts,
        table.totals[k],
        table.flags_seen[k],
        times,
        frame[at],
        deadline_values,
    )


class ConnectionReports(IteratedSequence):
    """Reports in id order: objects (``objects`` at ``object_positions``) and templated blocks.

    Position p holds connection id p + 1.  Iteration makes the blocks' report objects a piece at a
    time; the report writers format ``pieces`` instead (json_report, csv_report)."""

    def __init__(
        self, objects: list["ConnectionReport"], object_positions: np.ndarray, blocks: list[TemplatedBlock]
    ):
        self.objects = objects
        self.object_positions = np.asarray(object_positions, dtype=np.int64)
        self.blocks = blocks
        self._length = len(objects) + sum(len(b) for b in blocks)

    def __len__(self) -> int:
        return self._length

    def _offset(self) -> int:
        """The first position held (a piece of a larger sequence starts past 0)."""
        firsts = [int(self.object_positions[0])] if len(self.objects) else []
        firsts += [int(b.positions[0]) for b in self.blocks if len(b)]
        return min(firsts) if firsts else 0

    def pieces(self, size: int) -> Iterator["ConnectionReports"]:
        """Consecutive pieces of at most ``size`` reports, in order."""
        if self._length <= size:
            yield self
            return
        offset = self._offset()
        for lo in range(offset, offset + self._length, size):
            hi = lo + size
            a, b = np.searchsorted(self.object_positions, (lo, hi))
            blocks = []
            for block in self.blocks:
                x, y = np.searchsorted(block.positions, (lo, hi))
                if y > x:
                    blocks.append(block.take(np.arange(x, y)))
            yield ConnectionReports(self.objects[a:b], self.object_positions[a:b], blocks)

    def merge(self, object_items: list, block_items: list[list]) -> list:
        """One list in position order from per-object items and per-block items (aligned)."""
        if not self.blocks:
            return list(object_items)
        out: list = [None] * self._length
        offset = self._offset()
        for position, item in zip((self.object_positions - offset).tolist(), object_items):
            out[position] = item
        for block, items in zip(self.blocks, block_items):
            for position, item in zip((block.positions - offset).tolist(), items):
                out[position] = item
        return out

    def ids(self) -> list[int]:
        offset = self._offset()
        return list(range(offset + 1, offset + 1 + self._length))

    def first_frames(self) -> np.ndarray:
        return np.asarray(
            self.merge([r.first_frame for r in self.objects], [b.first_frame.tolist() for b in self.blocks]),
            dtype=np.int64,
        )

    def closes(self) -> list[str]:
        return self.merge([r.close for r in self.objects], [[b.kind.close] * len(b) for b in self.blocks])

    def close_counts(self):
        from collections import Counter

        counts = Counter(r.close for r in self.objects)
        for block in self.blocks:
            counts[block.kind.close] += len(block)
        return counts

    def reports_of(self, ids: Collection[int]) -> dict[int, "ConnectionReport"]:
        """The reports of connections ``ids`` held here, making only those of the blocks."""
        out: dict[int, ConnectionReport] = {}
        offset = self._offset()
        for number in sorted(set(ids)):
            position = number - 1
            if not offset <= position < offset + self._length:
                continue
            at = int(np.searchsorted(self.object_positions, position))
            if at < len(self.objects) and self.object_positions[at] == position:
                out[number] = self.objects[at]
                continue
            for block in self.blocks:
                at = int(np.searchsorted(block.positions, position))
                if at < len(block) and block.positions[at] == position:
                    out[number] = block.take(np.asarray([at])).reports()[0]
                    break
        return out

    def __iter__(self) -> Iterator["ConnectionReport"]:
        for piece in self.pieces(PIECE):
            if not piece.blocks:
                yield from piece.objects
            else:
                yield from piece.merge(piece.objects, [b.reports() for b in piece.blocks])

# Reports made at once when a ConnectionReports is iterated.
PIECE = 2048


def report_pieces(connections: object, size: int) -> Iterator[ConnectionReports] | None:
    """``connections`` in pieces when it holds templated blocks (the writers format those a block at
    a time); None for any other sequence."""
    pieces: Callable | None = getattr(connections, "pieces", None)
    return pieces(size) if pieces is not None else None



def by_source(
    connections: Sequence, objects: Callable[[Sequence], list | None], block: Callable[[TemplatedBlock], list]
) -> list | None:
    """Per report, in order, what ``objects`` makes of report objects and ``block`` of a templated
    block's members (a block at a time); None when ``objects`` gives None."""
    blocks = getattr(connections, "blocks", None)
    if blocks is None:
        return objects(connections)
    made = objects(connections.objects)  # type: ignore[attr-defined]
    if made is None:
        return None
    return connections.merge(made, [block(b) for b in blocks])  # type: ignore[attr-defined]


def shown_addresses(addresses: list[str], plain: Callable[[str], bool]) -> list[str] | None:
    """Each address as ``Endpoint.__str__`` shows it before the port (IPv6 in brackets); None when
    one is not ``plain`` in the report's format (would need escaping or quotes)."""
    out = []
    seen: dict[str, str] = {}
    for address in addresses:
        shown = seen.get(address)
        if shown is None:
            shown = f"[{address}]" if ":" in address else address
            if not plain(shown):
                return None
            seen[address] = shown
        out.append(shown)
    return out
