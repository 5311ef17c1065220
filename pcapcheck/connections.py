"""Connections: segments grouped by 4-tuple *and* incarnation, with unwrapped sequence numbers.

Contract (the implementation fills ``rebuild``):

* A connection is identified by its bidirectional 4-tuple plus an incarnation number.  A new SYN
  (without ACK) on a tuple whose current connection has begun to close (a FIN from either side, a
  RST, or refused), or that lies outside its sender's sequence space after the handshake, starts a
  new incarnation; so does a SYN-ACK acknowledging a SYN the capture lost, and, after a FIN or RST,
  any segment numbered far outside the closed sequence space (see ``_incarnation_starts``).
* ``id`` is 1-based, in order of each connection's first frame over the whole capture.
* ``incarnation`` is 1-based within the tuple; ``previous_id`` links to the incarnation before.
* The client is the endpoint that sent the first SYN without ACK.  With no such SYN seen (mid-stream
  pickup, or only a SYN-ACK seen) the roles are inferred (SYN-ACK sender is the server; otherwise
  the lower, well-known or listening-looking port is the server) and ``roles_inferred`` is True.
* Sequence numbers are unwrapped modulo 2**32 per direction, relative to that side's ISN (or its
  first seen number for a mid-stream pickup).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .capture.frames import take_rows
from .segments import ACK, CHECKSUM_BAD, FIN, MAX_SACK_BLOCKS, RST, SYN, Segment, Side, address_text
from .timestamps import NS_PER_S, second


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    addr: str
    port: int

    def __str__(self) -> str:
        return endpoint_text(self.addr, self.port)


def endpoint_text(addr: str, port: int) -> str:
    """An endpoint as findings and reports show it: '198.18.0.1:40000', '[fd00::1]:40000'."""
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


@dataclass(slots=True)
class Connection:
    id: int
    client: Endpoint
    server: Endpoint
    incarnation: int
    roles_inferred: bool
    # Rows of SEGMENT_DTYPE belonging to this connection, in capture order.
    rows: np.ndarray
    # Side of each row's sender (0 = client, 1 = server), aligned with rows.
    sender: np.ndarray
    # Unwrapped seq/ack per row (int64), aligned with rows; see module docstring.
    seq: np.ndarray
    ack: np.ndarray
    client_isn: int | None = None  # unwrapped; None when the SYN was not seen
    server_isn: int | None = None
    previous_id: int | None = None  # the incarnation before on the same tuple
    flags_seen: int = 0  # OR of all flags
    # What replay and the checks read of it, minus copied values (replay.shape); None: not eligible
    # for replay.memo's templates.  Equal bytes are one object.
    shape: bytes | None = None
    # (packets client, packets server, bytes client, bytes server), counted for all connections at
    # once by the rebuild; None: counted from the rows when asked.
    totals: tuple[int, int, int, int] | None = None

    @property
    def packets(self) -> int:
        return len(self.rows)

    @property
    def first_frame(self) -> int:
        return int(self.rows["frame"][0])

    @property
    def last_frame(self) -> int:
        return int(self.rows["frame"][-1])

    @property
    def start(self) -> float:
        return second(self.rows["ts_ns"][0])

    @property
    def end(self) -> float:
        return second(self.rows["ts_ns"][-1])

    @property
    def duration(self) -> float:
        """From the nanoseconds: ``end - start`` could be off in the last place (pcapcheck.timestamps)."""
        times = self.rows["ts_ns"]
        return second(int(times[-1]) - int(times[0]))

    def bytes_sent(self, side: Side) -> int:
        if self.totals is not None:
            return self.totals[2 if side is Side.CLIENT else 3]
        mask = self.sender == (0 if side is Side.CLIENT else 1)
        return int(self.rows["payload_len"][mask].sum())

    def packets_sent(self, side: Side) -> int:
        if self.totals is not None:
            return self.totals[0 if side is Side.CLIENT else 1]
        return int(np.count_nonzero(self.sender == (0 if side is Side.CLIENT else 1)))

    def endpoint(self, side: Side) -> Endpoint:
        return self.client if side is Side.CLIENT else self.server

    def base(self, side: Side) -> int:
        """The number relative sequence numbers of ``side`` count from (ISN, or first seen)."""
        isn = self.client_isn if side is Side.CLIENT else self.server_isn
        if isn is not None:
            return isn
        mask = self.sender == (0 if side is Side.CLIENT else 1)
        if mask.any():
            return int(self.seq[mask][0])
        other = ~mask
        # Only the peer's segments were captured: their acks are the best guess of our numbers.
        return int(self.ack[other][0]) if other.any() else 0

    def segments(self, indices: Iterable[int] | None = None) -> Iterator[Segment]:
        """Segment objects for all rows, or only for ``indices`` (the fast replay asks for few)."""
        if indices is None:
            yield from segment_list(self)
            return
        bases = (self.base(Side.CLIENT), self.base(Side.SERVER))
        for i in indices:
            yield segment_at(self, int(i), bases)


@dataclass(frozen=True, slots=True)
class SegmentColumns:
    """One connection's columns as plain Python lists, aligned with its rows.

    Per-row access to numpy scalars costs about a microsecond each; replay reads every column of
    every row several times, so it converts each column once (one ``tolist`` per column) and works
    on Python ints from then on.
    """

    frame: list[int]
    ts_ns: list[int]
    sender: list[int]  # 0 = client, 1 = server
    seq: list[int]  # unwrapped
    ack: list[int]  # unwrapped
    flags: list[int]
    length: list[int]  # payload bytes
    ttl: list[int]

    def __len__(self) -> int:
        return len(self.frame)


def segment_columns(conn: Connection) -> SegmentColumns:
    rows = conn.rows
    return SegmentColumns(
        frame=rows["frame"].tolist(),
        ts_ns=rows["ts_ns"].tolist(),
        sender=conn.sender.tolist(),
        seq=conn.seq.tolist(),
        ack=conn.ack.tolist(),
        flags=rows["flags"].tolist(),
        length=rows["payload_len"].tolist(),
        ttl=rows["ttl"].tolist(),
    )


def segment_list(conn: Connection, columns: SegmentColumns | None = None) -> list[Segment]:
    """All of ``conn``'s segments, equal to ``[segment_at(conn, i, bases) for i in ...]``, built from lists."""
    cols = columns if columns is not None else segment_columns(conn)
    n = len(cols)
    if n == 0:
        return []
    rows = conn.rows
    bases = (conn.base(Side.CLIENT), conn.base(Side.SERVER))
    sides = (Side.CLIENT, Side.SERVER)
    window = rows["window"].tolist()
    mss = rows["mss"].tolist()
    wscale = rows["wscale"].tolist()
    sack_permitted = rows["sack_permitted"].tolist()
    has_ts = rows["has_ts"].tolist()
    ts_val = rows["ts_val"].tolist()
    ts_ecr = rows["ts_ecr"].tolist()
    truncated = rows["truncated"].tolist()
    bad_checksum = (rows["checksum"] == CHECKSUM_BAD).tolist()
    sack_count = rows["sack_count"]
    with_sack = set(np.flatnonzero(sack_count).tolist()) if sack_count.any() else ()
    frame, ts_ns, sender, seq, ack, flags, length = (
        cols.frame, cols.ts_ns, cols.sender, cols.seq, cols.ack, cols.flags, cols.length
    )
    out: list[Segment] = []
    append = out.append
    for i in range(n):
        side = sender[i]
        s, a = seq[i], ack[i]
        if with_sack and i in with_sack:
            append(segment_at(conn, i, bases))
            continue
        # Positional, in field order: keyword arguments cost a measurable share of the build.
        append(
            Segment(
                i,
                frame[i],
                ts_ns[i] / NS_PER_S,  # Python ints (tolist): int / int rounds once, as second() does
                sides[side],
                s,
                a,
                s - bases[side],
                a - bases[1 - side],
                flags[i],
                window[i],
                length[i],
                mss[i] if mss[i] >= 0 else None,
                wscale[i] if wscale[i] >= 0 else None,
                sack_permitted[i],
                ts_val[i] if has_ts[i] else None,
                ts_ecr[i] if has_ts[i] else None,
                (),
                truncated[i],
                bad_checksum[i],
            )
        )
    return out


def segment_at(conn: Connection, i: int, bases: tuple[int, int]) -> Segment:
    # One row as a tuple of Python values (``item``): reading its fields one by one as numpy
    # scalars costs several times more, and the checked lane makes a few Segments per connection.
    row = conn.rows[i].item()
    at = _field_positions(conn.rows.dtype)
    side_index = conn.sender.item(i)
    sender = Side.CLIENT if side_index == 0 else Side.SERVER
    seq = conn.seq.item(i)
    ack = conn.ack.item(i)
    sack_blocks: tuple[tuple[int, int], ...] = ()
    count = row[at["sack_count"]]
    if count:
        # SACK edges live in the peer's sequence space, like ack: unwrap them next to ack.
        raw_ack = row[at["ack"]]
        sack_blocks = tuple(
            (ack + _delta(left, raw_ack), ack + _delta(right, raw_ack))
            for left, right in row[at["sack"]][: min(count, MAX_SACK_BLOCKS)].tolist()
        )
    mss, wscale, has_ts = row[at["mss"]], row[at["wscale"]], row[at["has_ts"]]
    return Segment(
        index=i,
        frame=row[at["frame"]],
        time=second(row[at["ts_ns"]]),
        sender=sender,
        seq=seq,
        ack=ack,
        rel_seq=seq - bases[side_index],
        rel_ack=ack - bases[1 - side_index],
        flags=row[at["flags"]],
        window=row[at["window"]],
        length=row[at["payload_len"]],
        mss=mss if mss >= 0 else None,
        wscale=wscale if wscale >= 0 else None,
        sack_permitted=bool(row[at["sack_permitted"]]),
        ts_val=row[at["ts_val"]] if has_ts else None,
        ts_ecr=row[at["ts_ecr"]] if has_ts else None,
        sack_blocks=sack_blocks,
        truncated=bool(row[at["truncated"]]),
        bad_checksum=row[at["checksum"]] == CHECKSUM_BAD,
    )


@functools.cache
def _field_positions(dtype: np.dtype) -> dict[str, int]:
    return {name: k for k, name in enumerate(dtype.names)}


def _delta(raw: int, raw_reference: int) -> int:
    """Signed distance from raw_reference to raw in modulo-2**32 sequence space."""
    d = (raw - raw_reference) & 0xFFFFFFFF
    return d - (1 << 32) if d >= (1 << 31) else d


# --- rebuild ------------------------------------------------------------------------------------
#
# Vectorised over all rows: sort once by canonical 4-tuple (stable, so capture order survives
# inside a tuple), split tuples into incarnations, then unwrap sequence numbers per (connection,
# direction) with cumulative sums of signed 32-bit deltas.  Only tuples that carry more than one
# opening SYN walk their rows in Python.
#
# The work is done in plain functions over arrays so that a later version can run them over the
# rows of connections that have settled (closed and past TIME-WAIT) instead of over everything.

SEQ_SPACE = 1 << 32
FAR_FROM_SPACE = 1 << 30  # a SYN this far from the current sequence space starts a new incarnation
# After a close, a segment this far (or further: the largest window seen, when larger) outside the
# closed connection's sequence spaces cannot belong to it: four unscaled windows (RFC 9293 §3.8.6).
CLOSED_SLACK = 1 << 18
# Above a FIN: the largest window without scaling (RFC 9293 §3.1), unless a larger one was seen.
# (A reused tuple's new ISN lies beyond it: Linux picks the old SND.NXT + 65537.)
FIN_SLACK = 0xFFFF


@dataclass(slots=True)
class _Split:
    """Rows sorted by tuple and time, cut into connections."""

    rows: np.ndarray  # SEGMENT_DTYPE, sorted (tuple, capture order)
    direction: np.ndarray  # uint8 per row: 0 = sent by the tuple's lower endpoint
    starts: np.ndarray  # int64 per connection: first row
    ends: np.ndarray  # int64 per connection: one past the last row
    tuple_of: np.ndarray  # int64 per connection: which tuple (0-based, in sorted order)
    # Columns of ``rows``, contiguous: a pass over a column of the wide rows costs ~50x one over these.
    columns: "_Columns"
    # The peer counts that guess roles when ``rows`` are not the whole capture (a bucket of it): a
    # listening server is recognised by the peers of the whole capture.  Asked only when a guess is
    # needed; None = counted from ``rows``.
    peer_counts: Callable[[], "PeerCounts"] | None = None

    @property
    def flags(self) -> np.ndarray:
        return self.columns.flags


@dataclass(frozen=True, slots=True)
class _Columns:
    """The columns of sorted rows that splitting them reads, each copied out once (contiguous)."""

    flags: np.ndarray
    seq: np.ndarray
    ack: np.ndarray
    payload_len: np.ndarray

    @classmethod
    def of(cls, rows: np.ndarray) -> "_Columns":
        return cls(*(np.ascontiguousarray(rows[name]) for name in ("flags", "seq", "ack", "payload_len")))


def rebuild(batches: Iterable[np.ndarray]) -> Iterator[Connection]:
    """Group segment batches (in timestamp order) into connections; yield them ordered by id."""
    parts = _gather(batches)
    if parts is None:
        return
    split = _split_connections(parts)
    del parts  # the split holds its own sorted copy
    yield from _connections(split)


def rebuild_table(batches: Iterable[np.ndarray]) -> "ConnectionTable | None":
    """``rebuild``'s connections as one table (None: no segment)."""
    parts = _gather(batches)
    if parts is None:
        return None
    split = _split_connections(parts)
    del parts
    return connection_table(split)


def _gather(batches: Iterable[np.ndarray]) -> list[np.ndarray] | None:
    """The non-empty batches, or None.  Not concatenated: the sort by tuple copies each row once."""
    parts = [batch for batch in batches if len(batch)]
    return parts or None


def _endpoint_keys(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(src_hi, src_lo, dst_hi, dst_lo): the 16-byte addresses as two big-endian 64-bit halves."""
    src = np.ascontiguousarray(rows["src"]).view(">u8").astype(np.uint64)
    dst = np.ascontiguousarray(rows["dst"]).view(">u8").astype(np.uint64)
    return src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]


_MAPPED_V4 = np.uint64(0x0000FFFF00000000)  # ::ffff:0:0/96 in the low half of an address
_SIXTEEN = np.uint64(16)


@dataclass(slots=True)
class _TupleKeys:
    """One batch's canonical tuples: the lower (address, port) endpoint first.

    ``columns`` are sort keys whose order is the tuple's: (lower, higher) 48-bit keys of address
    and port when every address is IPv4, else (hi, lo, port) of the lower and then the higher.
    """

    higher: np.ndarray  # bool per row: sent by the higher endpoint (direction 1)
    columns: tuple[np.ndarray, ...]

    @property
    def compact(self) -> bool:
        return len(self.columns) == 2

    def expanded(self) -> tuple[np.ndarray, ...]:
        """The six-column form of compact keys (to sort with batches that hold IPv6)."""
        if not self.compact:
            return self.columns
        out: list[np.ndarray] = []
        for key in self.columns:
            zero = np.zeros(len(key), dtype=np.uint64)
            out += [zero, _MAPPED_V4 | (key >> _SIXTEEN), (key & np.uint64(0xFFFF)).astype(np.int64)]
        return tuple(out)


def _tuple_keys(rows: np.ndarray) -> _TupleKeys:
    src = np.ascontiguousarray(rows["src"]).view(">u4")
    dst = np.ascontiguousarray(rows["dst"]).view(">u4")
    if _ipv4_mapped(src) and _ipv4_mapped(dst):
        # IPv4 only: (address, port) fits one 48-bit key per endpoint, so sort on two keys, not
        # six; the keys order the endpoints as (address, port) does.
        src_key = (src[:, 3].astype(np.uint64) << _SIXTEEN) | rows["sport"]
        dst_key = (dst[:, 3].astype(np.uint64) << _SIXTEEN) | rows["dport"]
        return _TupleKeys(src_key > dst_key, (np.minimum(src_key, dst_key), np.maximum(src_key, dst_key)))
    s_hi, s_lo, d_hi, d_lo = _endpoint_keys(rows)
    sport = rows["sport"].astype(np.int64)
    dport = rows["dport"].astype(np.int64)
    higher = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sport > dport))))
    lo = (np.where(higher, d_hi, s_hi), np.where(higher, d_lo, s_lo), np.where(higher, dport, sport))
    hi = (np.where(higher, s_hi, d_hi), np.where(higher, s_lo, d_lo), np.where(higher, sport, dport))
    return _TupleKeys(higher, lo + hi)


def _ipv4_mapped(addresses: np.ndarray) -> bool:
    """Every address (rows of four big-endian 32-bit words) is ::ffff:a.b.c.d."""
    return bool(((addresses[:, 0] | addresses[:, 1]) == 0).all() and (addresses[:, 2] == 0xFFFF).all())


def _sort_by_tuple(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, direction, new_tuple) of all the parts' rows sorted by canonical tuple.

    The sort is stable, so capture order survives within a tuple.  Each row is copied once, from
    its part straight to its sorted place.
    """
    keys = [_tuple_keys(part) for part in parts]
    compact = all(k.compact for k in keys)
    columns = [np.concatenate(column) for column in zip(*(k.columns if compact else k.expanded() for k in keys))]
    higher = np.concatenate([k.higher for k in keys])
    del keys
    order = np.lexsort(columns[::-1])
    n = len(order)
    new_tuple = np.zeros(n, dtype=bool)
    new_tuple[0] = True
    for column in columns:
        sorted_column = column[order]
        new_tuple[1:] |= sorted_column[1:] != sorted_column[:-1]
    del columns
    direction = higher[order].astype(np.uint8)
    return _take_from_parts(parts, order), direction, new_tuple


def _take_from_parts(parts: list[np.ndarray], order: np.ndarray) -> np.ndarray:
    """``np.concatenate(parts)[order]`` without the concatenated copy."""
    if len(parts) == 1:
        return take_rows(parts[0], order)
    dtype = parts[0].dtype
    opaque = np.dtype((np.void, dtype.itemsize))
    out = np.empty(len(order), dtype=opaque)
    destination = np.empty(len(order), dtype=np.int64)
    destination[order] = np.arange(len(order), dtype=np.int64)
    first = 0
    for part in parts:
        part = np.ascontiguousarray(part)
        out[destination[first : first + len(part)]] = part.view(opaque)
        first += len(part)
    return out.view(dtype)


def _split_connections(rows: np.ndarray | list[np.ndarray]) -> _Split:
    """Rows (one array, or the batches in capture order) sorted by tuple and cut into connections."""
    parts = [rows] if isinstance(rows, np.ndarray) else list(rows)
    rows, direction, new_tuple = _sort_by_tuple(parts)
    del parts
    tuple_starts = np.flatnonzero(new_tuple)
    tuple_ends = np.append(tuple_starts[1:], len(rows))

    cols = _Columns.of(rows)
    flags = cols.flags
    opening = ((flags & SYN) != 0) & ((flags & ACK) == 0)
    # Tuples whose opening SYNs (if any) are all one SYN, retransmitted, and come first hold one
    # connection; only the others need the incarnation walk.
    tuple_id = np.cumsum(new_tuple) - 1
    syn_pos = np.flatnonzero(opening)
    needs_walk = np.zeros(len(tuple_starts), dtype=bool)
    if len(syn_pos):
        t = tuple_id[syn_pos]
        first_index = np.flatnonzero(_runs_start(t))
        tuples_with_syn = t[first_index]
        first_syn = np.full(len(tuple_starts), -1, dtype=np.int64)
        first_syn[tuples_with_syn] = syn_pos[first_index]
        same = (cols.seq[syn_pos] == cols.seq[first_syn[t]]) & (direction[syn_pos] == direction[first_syn[t]])
        needs_walk[t[~same]] = True
        has_syn = first_syn >= 0
        needs_walk |= has_syn & (first_syn != tuple_starts)

    cuts, walk = _closed_reopenings(cols, direction, tuple_id, tuple_starts, syn_pos, needs_walk)
    # The connections found so far (by tuple, and by SYN where that explained every opening).
    found = np.sort(np.concatenate([tuple_starts, cuts]))
    synack_walk = _synacks_after_handshake(cols, direction, tuple_id, found, np.append(found[1:], len(rows)))
    synack_walk |= _jumps_after_close(cols, direction, tuple_id)
    if synack_walk.any():
        walk |= synack_walk
        cuts = cuts[~synack_walk[tuple_id[cuts]]]
    extra: list[int] = cuts.tolist()  # incarnation starts after a tuple's first row
    for t in np.flatnonzero(walk).tolist():
        a, b = int(tuple_starts[t]), int(tuple_ends[t])
        extra.extend(a + c for c in _incarnation_starts(rows[a:b], direction[a:b])[1:])
    starts_arr = np.sort(np.concatenate([tuple_starts, np.asarray(extra, dtype=np.int64)]))
    ends_arr = np.append(starts_arr[1:], len(rows))
    return _Split(rows, direction, starts_arr, ends_arr, tuple_id[starts_arr], cols)


def _runs_start(values: np.ndarray) -> np.ndarray:
    """True where a run of equal values begins (values grouped, e.g. sorted)."""
    start = np.ones(len(values), dtype=bool)
    start[1:] = values[1:] != values[:-1]
    return start


def _closed_reopenings(
    cols: _Columns,
    direction: np.ndarray,
    tuple_id: np.ndarray,
    tuple_starts: np.ndarray,
    syn_pos: np.ndarray,
    needs_walk: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The common port-reuse case without a Python walk: every new SYN follows a closed connection.

    For the tuples that need splitting, take their opening SYNs (a retransmission of the one before
    is no opening); if each one is the tuple's first row or comes after a FIN or a RST since the
    opening before it, the SYNs are exactly the incarnation starts of ``_incarnation_starts``.
    Returns (incarnation starts found, tuples that still need the walk).
    """
    walk = needs_walk.copy()
    cand = syn_pos[needs_walk[tuple_id[syn_pos]]]
    if not len(cand):
        return np.zeros(0, dtype=np.int64), walk
    t = tuple_id[cand]
    seq, d = cols.seq[cand], direction[cand]
    same_tuple_before = np.zeros(len(cand), dtype=bool)
    same_tuple_before[1:] = t[1:] == t[:-1]
    retransmitted = same_tuple_before.copy()
    retransmitted[1:] &= (seq[1:] == seq[:-1]) & (d[1:] == d[:-1])
    cand, t = cand[~retransmitted], t[~retransmitted]
    first_of_tuple = np.ones(len(cand), dtype=bool)
    first_of_tuple[1:] = t[1:] != t[:-1]
    since = np.where(first_of_tuple, tuple_starts[t], np.roll(cand, 1))  # the opening before
    flags = cols.flags

    def count_between(mask: np.ndarray) -> np.ndarray:
        before = np.concatenate(([0], np.cumsum(mask)))
        return before[cand] - before[since]

    closed = count_between((flags & (RST | FIN)) != 0) > 0
    at_start = cand == tuple_starts[t]
    explained = at_start | closed
    unexplained_tuples = np.unique(t[~explained])
    walk[:] = False
    walk[unexplained_tuples] = True
    keep = ~at_start & ~walk[t]
    return cand[keep], walk


def _synacks_after_handshake(
    cols: _Columns, direction: np.ndarray, tuple_id: np.ndarray, starts: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Per tuple: may a SYN-ACK open an incarnation there (so the tuple needs the walk)?

    ``starts``/``ends`` are the connections found without the walk: tuples, cut at the SYNs that
    ``_closed_reopenings`` explained.  If these are the walk's incarnations up to a SYN-ACK, the
    walk's state at that SYN-ACK is the state since its connection's start.  In
    ``_incarnation_starts`` a SYN-ACK can only open one after a row that is not a plain SYN (the
    handshake completed, or a FIN or RST was seen), and never when it repeats the incarnation's
    first SYN-ACK.  So a tuple whose SYN-ACKs all repeat their connection's first one (sender and
    ack), all before any other row than a SYN, has none: a lost SYN of a reused tuple shows as a
    second SYN-ACK.
    """
    flags = cols.flags
    synack_pos = np.flatnonzero(((flags & SYN) != 0) & ((flags & ACK) != 0))
    walk = np.zeros(int(tuple_id[-1]) + 1 if len(tuple_id) else 0, dtype=bool)
    if not len(synack_pos):
        return walk
    conn = np.searchsorted(starts, synack_pos, side="right") - 1
    first = synack_pos[np.maximum.accumulate(np.where(_runs_start(conn), np.arange(len(conn)), 0))]
    ack = cols.ack
    repeat = (ack[synack_pos] == ack[first]) & (direction[synack_pos] == direction[first])
    t = tuple_id[synack_pos]
    walk[t[~repeat]] = True
    plain_syn = ((flags & SYN) != 0) & ((flags & (FIN | RST)) == 0)
    first_other = _first_where(~plain_syn, starts, ends)[conn]
    after_other = (first_other >= 0) & (synack_pos > first_other)
    walk[t[after_other]] = True
    return walk


def _jumps_after_close(cols: _Columns, direction: np.ndarray, tuple_id: np.ndarray) -> np.ndarray:
    """Per tuple: may a segment after a close open an incarnation there (so the tuple needs the walk)?

    ``_incarnation_starts`` cuts at a segment without SYN or RST, after a FIN or RST, whose seq or
    ack lies more than ``CLOSED_SLACK`` outside its space, or more than ``FIN_SLACK`` beyond the
    last FIN of that space.  The number before it in the same space (a seq its sender sent, other
    than a RST's, or an ack the peer sent) lies inside that space, so such a segment jumps more
    than ``CLOSED_SLACK`` from it, or lies more than ``FIN_SLACK`` beyond the space's last FIN: the
    tuples with such a segment are a superset of the tuples where the walk cuts that way.
    """
    flags = cols.flags
    n = len(flags)
    tuples = int(tuple_id[-1]) + 1 if n else 0
    walk = np.zeros(tuples, dtype=bool)
    closing = (flags & (FIN | RST)) != 0
    if not closing.any():
        return walk
    # Only a segment without SYN or RST after a FIN or RST of its tuple can be cut there.
    closed_before = np.zeros(n, dtype=np.int64)
    closed_before[1:] = np.cumsum(closing)[:-1]
    closed_before -= closed_before[np.flatnonzero(_runs_start(tuple_id))][tuple_id]
    candidate = ((flags & (SYN | RST)) == 0) & (closed_before > 0)
    if not candidate.any():
        return walk
    # What such a segment is compared with lies at or after its tuple's first FIN or RST (every
    # FIN does, and a SYN after one), except the number just before it in its space.
    closed = (closed_before > 0) | closing
    has_seq = (flags & RST) == 0
    has_ack = (flags & ACK) != 0
    # The numbers of one sequence space, in row order: the seqs its owner sent and the acks of
    # the peer.  Rows are in tuple order, so taking the spaces owned by direction 0, then by
    # direction 1, lists each space's numbers together.
    for owner in (0, 1):
        own = direction == owner
        event = np.flatnonzero(np.where(own, has_seq, has_ack))
        if not len(event):
            continue
        space = tuple_id[event]
        needed = closed[event]
        needed[:-1] |= needed[1:] & (space[:-1] == space[1:])
        event, space = event[needed], space[needed]
        if not len(event):
            continue
        own_e = own[event]
        value = np.where(own_e, cols.seq[event], cols.ack[event]).astype(np.int64)
        event_fin = np.where(own_e, _fin_end(cols, event), -1)
        same_space = np.zeros(len(event), dtype=bool)
        same_space[1:] = space[1:] == space[:-1]
        jump = np.zeros(len(event), dtype=bool)
        d = (value[1:] - value[:-1]) & 0xFFFFFFFF
        d = np.minimum(d, SEQ_SPACE - d)
        jump[1:] = same_space[1:] & (d > CLOSED_SLACK)
        # Beyond the last earlier FIN of the same space by more than the walk's least bound there.
        positions = np.arange(len(event))
        last_fin = np.full(len(event), -1, dtype=np.int64)
        last_fin[1:] = np.maximum.accumulate(np.where(event_fin != -1, positions, -1))[:-1]
        has_fin = last_fin >= 0
        has_fin[has_fin] = (space[last_fin[has_fin]] == space[has_fin]) & (event_fin[last_fin[has_fin]] >= 0)
        ahead = (value - event_fin[np.maximum(last_fin, 0)]) & 0xFFFFFFFF
        jump |= has_fin & (ahead > FIN_SLACK) & (ahead < 1 << 31)
        hits = event[jump & candidate[event]]
        walk[tuple_id[hits]] = True
    return walk


def _fin_end(cols: _Columns, at: np.ndarray) -> np.ndarray:
    """Per row ``at``: one past its FIN in its sender's space; -2 for a SYN without FIN (a SYN ends
    the bound of the FIN before it, as in the walk), -1 for others.  RSTs carry no bound."""
    flags = cols.flags[at]
    out = np.where((flags & SYN) != 0, -2, -1).astype(np.int64)
    fin = np.flatnonzero(((flags & FIN) != 0) & ((flags & RST) == 0))
    if len(fin):
        r = at[fin]
        out[fin] = (cols.seq[r].astype(np.int64) + cols.payload_len[r] + 1 + ((flags[fin] & SYN) != 0)) & 0xFFFFFFFF
    return out


def _incarnation_starts(rows: np.ndarray, direction: np.ndarray) -> list[int]:
    """Row offsets (within one tuple's rows) where a new incarnation begins; always starts with 0.

    A SYN without ACK that is not a retransmission of the current opening SYN (same sender, same
    ISN) opens a new incarnation when

    * either side has sent a FIN or a RST on the current connection: no SYN without ACK belongs to
      a connection after that (RFC 9293 §3.10.7.4: the only SYN such a connection accepts is the
      one of a new incarnation, in TIME-WAIT); a capture that lost one FIN still shows the other;
    * the handshake is complete and the SYN's sequence number lies outside its sender's sequence
      space as seen so far, widened by the peer's receive window: a rebooted peer or a reused port
      (RFC 9293 §3.5.2, Figure 10).  An in-window SYN stays (the RFC 5961 §4 challenge-ACK case);
    * its ISN is far outside the sending side's current sequence space.

    A SYN-ACK whose acknowledgment lies outside its receiver's sequence space, after the handshake
    completed or after a FIN or RST, answers a SYN the capture lost: it opens the new incarnation,
    and the SYN it acknowledges (if captured later, e.g. in a merge of two taps) belongs to it.
    A SYN-ACK repeating the incarnation's first one (same sender and ack) is a retransmission.

    A segment without SYN or RST opens one (a new connection picked up mid-stream: the capture lost
    its handshake) when its seq, or its ack, lies in a sequence space its owner closed (by a FIN,
    or either side's RST) and outside that space: more than ``CLOSED_SLACK`` (or the largest
    window seen) below or above what was seen of it, or more than ``FIN_SLACK`` (or the receiver's
    window) beyond the owner's FIN.  Exact copies of the connection's segments (a second tap)
    lie inside and stay.
    """
    cuts = [0]
    flags = rows["flags"].tolist()
    seqs = rows["seq"].tolist()
    acks = rows["ack"].tolist()
    lengths = rows["payload_len"].tolist()
    windows = rows["window"].tolist()
    wscales = rows["wscale"].tolist()
    dirs = direction.tolist()
    client_dir: int | None = None
    client_isn = 0
    fin = [False, False]
    fin_end: list[int | None] = [None, None]  # one past the last FIN each direction sent
    reset = False
    synchronized = False  # a segment without SYN acknowledged something: the handshake is over
    first_synack: tuple[int, int] | None = None  # (sender, ack) of the incarnation's first SYN-ACK
    last_seq: list[int | None] = [None, None]  # last raw seq sent by each direction
    last_ack: list[int | None] = [None, None]  # last raw ack *of* each direction's space
    # Each direction's sequence space seen so far: its lowest raw number and the span above it
    # (sent by that direction, or acknowledged by the other).
    low: list[int | None] = [None, None]
    span = [0, 0]
    window = [0, 0]  # last receive window each direction advertised (scaled when both SYNs offered it)
    syn_wscale: list[int | None] = [None, None]

    def extend(d: int, number: int, consumed: int) -> None:
        if low[d] is None:
            low[d], span[d] = number, consumed
            return
        offset = _delta(number, low[d])
        if offset < 0:
            low[d] = number
            span[d] -= offset
            offset = 0
        span[d] = max(span[d], offset + consumed)

    def within(d: int, number: int, slack: int) -> bool:
        if low[d] is None:
            return True  # nothing known of that space: no evidence against the number
        offset = _delta(number, low[d])
        return 0 <= offset <= span[d] + slack

    def near(d: int, number: int, slack: int) -> bool:
        if low[d] is None:
            return True
        offset = _delta(number, low[d])
        return -slack <= offset <= span[d] + slack

    for j, (fl, seq, ack, length, wnd, ws, d) in enumerate(zip(flags, seqs, acks, lengths, windows, wscales, dirs)):
        cut = False
        if fl & SYN and not fl & ACK:
            retransmitted = client_dir == d and client_isn == seq
            if j > cuts[-1] and not retransmitted:
                reference = last_seq[d] if last_seq[d] is not None else last_ack[d]
                far = reference is not None and abs(_delta(seq, reference)) > FAR_FROM_SPACE
                foreign = synchronized and not within(d, seq, window[1 - d])
                cut = fin[0] or fin[1] or reset or far or foreign
        elif fl & SYN and j > cuts[-1] and first_synack != (d, ack):
            if (synchronized or fin[0] or fin[1] or reset) and not within(1 - d, ack, 0):
                cut = True
        elif not fl & (SYN | RST) and j > cuts[-1] and (fin[0] or fin[1] or reset):
            # A sequence space its owner closed (FIN, or RST for both) never grows again (RFC 9293
            # §3.10.7.4): a seq or ack more than a window outside it belongs to a new incarnation
            # whose handshake the capture lost, picked up mid-stream.  Nothing is numbered above a
            # FIN, and nothing beyond it by more than the receiver's window could be accepted; a
            # wrong ack a little beyond it stays (the fin-ack-mismatch case).
            slack = max(CLOSED_SLACK, window[0], window[1])
            closed = (fin[0] or reset, fin[1] or reset)

            def outside(x: int, number: int) -> bool:
                end = fin_end[x]
                beyond_fin = end is not None and _delta(number, end) > max(FIN_SLACK, window[1 - x])
                return closed[x] and (beyond_fin or not near(x, number, slack))

            cut = outside(d, seq) or (bool(fl & ACK) and outside(1 - d, ack))
        if cut:
            cuts.append(j)
            fin, reset, synchronized, first_synack = [False, False], False, False, None
            fin_end = [None, None]
            last_seq, last_ack = [None, None], [None, None]
            low, span, window, syn_wscale = [None, None], [0, 0], [0, 0], [None, None]
            client_dir = None
            if fl & ACK:  # a SYN-ACK: the client is its receiver, with the ISN it acknowledges
                client_dir, client_isn = 1 - d, (ack - 1) & 0xFFFFFFFF
        if fl & SYN:
            if client_dir is None and not fl & ACK:
                client_dir, client_isn = d, seq
            if fl & ACK and first_synack is None:
                first_synack = (d, ack)
            syn_wscale[d] = ws if ws >= 0 else None
        elif fl & ACK and not fl & RST:
            synchronized = True
        if fl & SYN and not fl & RST:
            fin_end[d] = None  # a SYN restates the sender's ISN: its FIN bound no longer holds
        if fl & FIN:
            fin[d] = True
            if not fl & RST:
                fin_end[d] = (seq + length + 1 + (1 if fl & SYN else 0)) & 0xFFFFFFFF
        if fl & RST:
            reset = True
        else:
            last_seq[d] = seq
            extend(d, seq, length + (1 if fl & SYN else 0) + (1 if fl & FIN else 0))
            scale = syn_wscale[d] if syn_wscale[d] is not None and syn_wscale[1 - d] is not None else 0
            window[d] = wnd if fl & SYN else wnd << scale  # RFC 7323 §2.2: a SYN's window is unscaled
        if fl & ACK:
            last_ack[1 - d] = ack
            extend(1 - d, ack, 0)
    return cuts


def _first_where(mask: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per connection, the row index of the first row where mask holds, or -1."""
    where = np.append(np.flatnonzero(mask), len(mask))
    first = where[np.searchsorted(where, starts)]
    return np.where(first < ends, first, -1)


def _roles(split: _Split) -> tuple[np.ndarray, np.ndarray]:
    """(client_direction, roles_inferred) per connection; see the module docstring."""
    rows, direction, starts, ends = split.rows, split.direction, split.starts, split.ends
    flags = split.flags
    syn = (flags & SYN) != 0
    has_ack = (flags & ACK) != 0
    first_open = _first_where(syn & ~has_ack, starts, ends)
    first_synack = _first_where(syn & has_ack, starts, ends)
    client = np.zeros(len(starts), dtype=np.uint8)
    inferred = first_open < 0
    known = ~inferred
    client[known] = direction[first_open[known]]
    by_synack = inferred & (first_synack >= 0)
    client[by_synack] = 1 - direction[first_synack[by_synack]]
    guess = np.flatnonzero(inferred & (first_synack < 0))
    if len(guess):
        listeners = _listener_counts(rows) if split.peer_counts is None else split.peer_counts()
        for k in guess.tolist():
            client[k] = _guess_client_direction(rows, direction, int(starts[k]), listeners)
    return client, inferred


# Per endpoint (16-byte address, port): how many distinct peer endpoints sent to it.
PeerCounts = dict[tuple[bytes, int], int]


def _listener_counts(rows: np.ndarray) -> PeerCounts:
    """How many distinct peer endpoints sent to each endpoint: a listening server has many."""
    s_hi, s_lo, d_hi, d_lo = _endpoint_keys(rows)
    sport, dport = rows["sport"], rows["dport"]
    order = np.lexsort((sport, s_lo, s_hi, dport, d_lo, d_hi))
    cols = [c[order] for c in (d_hi, d_lo, dport, s_hi, s_lo, sport)]
    changed = [np.append(True, c[1:] != c[:-1]) for c in cols]
    changed_endpoint = changed[0] | changed[1] | changed[2]
    changed_pair = changed_endpoint | changed[3] | changed[4] | changed[5]
    pair_rows = np.flatnonzero(changed_pair)
    endpoint_of_pair = np.cumsum(changed_endpoint)[pair_rows]
    per_endpoint = np.bincount(endpoint_of_pair)
    ep_rows = np.flatnonzero(changed_endpoint)
    addr = np.ascontiguousarray(rows["dst"][order][ep_rows]).view("V16").ravel().tolist()
    port = cols[2][ep_rows].tolist()
    counts = per_endpoint[1:].tolist()
    return {(a, p): c for a, p, c in zip(addr, port, counts)}


def _guess_client_direction(rows: np.ndarray, direction: np.ndarray, first: int, listeners: PeerCounts) -> int:
    """Mid-stream pickup with no SYN or SYN-ACK: which direction is the client's.

    The server is the endpoint that more peers talk to (a listener); failing that the one with a
    well-known port (< 1024) when only one has it; failing that the lower port; failing that the
    receiver of the first packet seen.
    """
    row = rows[first]
    sender_is_higher = int(direction[first])
    src = (row["src"].tobytes(), int(row["sport"]))
    dst = (row["dst"].tobytes(), int(row["dport"]))
    src_peers, dst_peers = listeners.get(src, 0), listeners.get(dst, 0)
    if src_peers != dst_peers and max(src_peers, dst_peers) > 1:
        src_is_server = src_peers > dst_peers
    elif (src[1] < 1024) != (dst[1] < 1024):
        src_is_server = src[1] < 1024
    elif src[1] != dst[1]:
        src_is_server = src[1] < dst[1]
    else:
        src_is_server = False
    return 1 - sender_is_higher if src_is_server else sender_is_higher


def _unwrap(raw: np.ndarray, group: np.ndarray, trusted: np.ndarray) -> np.ndarray:
    """Unwrap 32-bit numbers into int64 per group (rows already ordered by group, then time).

    Trusted rows continue each other: each adds the signed 32-bit distance from the previous
    trusted row of its group, starting from its raw value.  An untrusted row (a RST may carry any
    sequence number, e.g. 0) is placed nearest to the trusted row before it (or after it, at the
    start of a group), so it can never shift the numbers that follow.
    """
    n = len(raw)
    out = raw.astype(np.int64)
    if n == 0:
        return out
    if not trusted.all():
        starts = np.flatnonzero(_runs_start(group))
        any_trusted = np.logical_or.reduceat(trusted, starts)
        if not any_trusted.all():
            # A group without trusted rows trusts all of its rows.
            trusted = trusted | np.repeat(~any_trusted, np.diff(np.append(starts, n)))
    t = np.flatnonzero(trusted)
    rt = out[t]
    step = np.zeros(len(t), dtype=np.int64)
    step[1:] = _signed_distance(rt[1:], rt[:-1])
    # One running sum over all groups; each group's start then puts it back on its raw value.
    running = np.cumsum(step)
    firsts = np.flatnonzero(_runs_start(group[t]))
    offset = rt[firsts] - running[firsts]
    out[t] = running + np.repeat(offset, np.diff(np.append(firsts, len(t))))
    u = np.flatnonzero(~trusted)
    if len(u):
        after = np.searchsorted(t, u)  # the first trusted row after each untrusted one
        before = t[np.maximum(after - 1, 0)]
        use_before = (after > 0) & (group[before] == group[u])
        ref = np.where(use_before, before, t[np.minimum(after, len(t) - 1)])
        ref_val = out[ref]
        out[u] = ref_val + _signed_distance(out[u], ref_val)
    return out


def _signed_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b as a signed 32-bit distance in sequence space, in [-2**31, 2**31) (int64 arrays)."""
    return ((a - b + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _connections(split: _Split) -> Iterator[Connection]:
    yield from connection_table(split).connections()


@dataclass(slots=True)
class ConnectionTable:
    """Every connection of a split as columns, in id order (index k is connection id k + 1).

    ``connection(k)`` makes the Connection object; the analysis makes one only for connections it
    must replay or check: the others it reads from these columns (pcapcheck.templated)."""

    rows: np.ndarray  # the split's rows (SEGMENT_DTYPE), each connection's a contiguous range
    sender: np.ndarray  # per row: 0 = client, 1 = server
    seq: np.ndarray  # per row, unwrapped
    ack: np.ndarray
    starts: np.ndarray  # int64 per connection: first row
    ends: np.ndarray  # int64 per connection: one past the last row
    client_key: list[bytes]  # 16-byte address
    client_port: np.ndarray
    server_key: list[bytes]
    server_port: np.ndarray
    version: np.ndarray  # IP version
    incarnation: np.ndarray
    inferred: np.ndarray  # bool: roles_inferred
    client_isn: list[int | None]
    server_isn: list[int | None]
    previous: list[int | None]  # previous_id
    flags_seen: np.ndarray
    shapes: list[bytes | None]
    totals: np.ndarray  # (n, 4): packets client, packets server, bytes client, bytes server
    # Another incarnation follows on the same tuple: its checks read this one.
    has_next: np.ndarray
    _names: dict[tuple[bytes, int], str] = field(default_factory=dict)
    _servers: dict[tuple[bytes, int, int], Endpoint] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.starts)

    def address(self, raw: bytes, version: int) -> str:
        name = self._names.get((raw, version))
        if name is None:
            name = self._names[(raw, version)] = address_text(raw, version)
        return name

    def server(self, raw: bytes, version: int, port: int) -> Endpoint:
        """One Endpoint per server: few servers serve many connections."""
        server = self._servers.get((raw, version, port))
        if server is None:
            server = self._servers[(raw, version, port)] = Endpoint(self.address(raw, version), port)
        return server

    def endpoints(self, k: int) -> tuple[Endpoint, Endpoint]:
        """Connection ``k``'s client and server."""
        return self.endpoint(k, 0), self.endpoint(k, 1)

    def endpoint(self, k: int, side: int) -> Endpoint:
        """Connection ``k``'s client (side 0) or server (1)."""
        version = int(self.version[k])
        if side == 0:
            return Endpoint(self.address(self.client_key[k], version), int(self.client_port[k]))
        return self.server(self.server_key[k], version, int(self.server_port[k]))

    def connection(self, k: int) -> Connection:
        a_k, b_k = int(self.starts[k]), int(self.ends[k])
        return Connection(
            k + 1,
            *self.endpoints(k),
            int(self.incarnation[k]),
            bool(self.inferred[k]),
            self.rows[a_k:b_k],
            self.sender[a_k:b_k],
            self.seq[a_k:b_k],
            self.ack[a_k:b_k],
            self.client_isn[k],
            self.server_isn[k],
            self.previous[k],
            int(self.flags_seen[k]),
            self.shapes[k],
            tuple(self.totals[k].tolist()),  # type: ignore[arg-type]
        )

    def connections(self) -> Iterator[Connection]:
        """Every connection, in id order (faster than ``connection`` one by one)."""
        rows, sender, seq, ack = self.rows, self.sender, self.seq, self.ack
        text, server_of = self.address, self.server
        per_connection = zip(
            self.starts.tolist(),
            self.ends.tolist(),
            self.client_key,
            self.client_port.tolist(),
            self.server_key,
            self.server_port.tolist(),
            self.version.tolist(),
            self.incarnation.tolist(),
            self.inferred.tolist(),
            self.client_isn,
            self.server_isn,
            self.previous,
            self.flags_seen.tolist(),
            self.shapes,
            map(tuple, self.totals.tolist()),
        )
        for id_, (a_k, b_k, c_key, c_port, s_key, s_port, version, inc, inf, c_isn, s_isn, prev, seen, shape,
                  totals) in enumerate(per_connection, start=1):  # fmt: skip
            # Positional, in field order: keyword arguments cost a measurable share of the loop.
            yield Connection(
                id_,
                Endpoint(text(c_key, version), c_port),
                server_of(s_key, version, s_port),
                inc,
                inf,
                rows[a_k:b_k],
                sender[a_k:b_k],
                seq[a_k:b_k],
                ack[a_k:b_k],
                c_isn,
                s_isn,
                prev,
                seen,
                shape,
                totals,
            )


def connection_table(split: _Split) -> ConnectionTable:
    rows, starts, ends, cols = split.rows, split.starts, split.ends, split.columns
    n_conn = len(starts)
    client_dir, inferred = _roles(split)
    split.peer_counts = None  # roles are known: a bucket need not hold the whole capture's counts
    conn_of_row = np.repeat(np.arange(n_conn), ends - starts)
    sender = (split.direction != client_dir[conn_of_row]).astype(np.uint8)
    flags = cols.flags

    # Order rows by (connection, sender), time kept: each side's numbers form one group.
    group = conn_of_row * 2 + sender
    by_side = np.argsort(group, kind="stable")
    group_by_side = group[by_side]
    seq = np.empty(len(rows), dtype=np.int64)
    seq[by_side] = _unwrap(cols.seq[by_side], group_by_side, (flags[by_side] & RST) == 0)
    ack = cols.ack.astype(np.int64)
    acked = (flags & ACK) != 0
    acked_by_side = acked[by_side]
    ack_by_side = ack[by_side]
    ack[by_side] = np.where(acked_by_side, _unwrap(ack_by_side, group_by_side, acked_by_side), ack_by_side)
    ack = _align_acks(ack, acked, seq, conn_of_row, sender, starts, ends)

    syn = (flags & SYN) != 0
    first_client_syn = _first_where(syn & ~acked & (sender == 0), starts, ends)
    first_server_syn = _first_where(syn & (sender == 1), starts, ends)
    flags_seen = np.bitwise_or.reduceat(flags.astype(np.int64), starts) if n_conn else np.zeros(0, np.int64)

    # ids in order of first frame; incarnations and links per tuple
    first_frame = rows["frame"][starts]
    id_order = np.lexsort((starts, first_frame))
    conn_id = np.empty(n_conn, dtype=np.int64)
    conn_id[id_order] = np.arange(1, n_conn + 1)
    same_tuple = np.zeros(n_conn, dtype=bool)
    same_tuple[1:] = split.tuple_of[1:] == split.tuple_of[:-1]
    has_next = np.zeros(n_conn, dtype=bool)
    has_next[:-1] = same_tuple[1:]
    tuple_first = np.flatnonzero(~same_tuple)
    incarnation = np.arange(1, n_conn + 1) - np.repeat(tuple_first, np.diff(np.append(tuple_first, n_conn)))
    previous = np.zeros(n_conn, dtype=np.int64)
    previous[1:] = conn_id[:-1]

    # Endpoints of each connection, from its first row.
    a = starts
    client_is_src = sender[a] == 0
    src, dst = rows["src"][a], rows["dst"][a]
    client_addr = np.where(client_is_src[:, None], src, dst)
    server_addr = np.where(client_is_src[:, None], dst, src)
    sport, dport = rows["sport"][a], rows["dport"][a]
    client_port = np.where(client_is_src, sport, dport)
    server_port = np.where(client_is_src, dport, sport)
    versions = rows["ip_version"][a]

    from .replay.shape import connection_shapes  # replay imports this module

    shapes = connection_shapes(
        rows, starts, ends, sender, seq, ack, ~inferred,
        flags=flags, length=cols.payload_len, by_side=by_side,
    )  # fmt: skip
    packets = np.bincount(group, minlength=2 * n_conn)
    payload = np.bincount(group, weights=cols.payload_len, minlength=2 * n_conn).astype(np.int64)
    client_isn = seq[np.maximum(first_client_syn, 0)]
    server_isn = seq[np.maximum(first_server_syn, 0)]

    o = id_order
    o_list = o.tolist()
    return ConnectionTable(
        rows=rows,
        sender=sender,
        seq=seq,
        ack=ack,
        starts=starts[o],
        ends=ends[o],
        client_key=client_addr[o].view("V16").ravel().tolist(),
        client_port=client_port[o],
        server_key=server_addr[o].view("V16").ravel().tolist(),
        server_port=server_port[o],
        version=versions[o],
        incarnation=incarnation[o],
        inferred=inferred[o],
        client_isn=[v if seen else None for v, seen in zip(client_isn[o].tolist(), (first_client_syn[o] >= 0).tolist())],
        server_isn=[v if seen else None for v, seen in zip(server_isn[o].tolist(), (first_server_syn[o] >= 0).tolist())],
        previous=[v if reused else None for v, reused in zip(previous[o].tolist(), same_tuple[o].tolist())],
        flags_seen=flags_seen[o],
        shapes=[shapes[k] for k in o_list],
        totals=np.stack((packets[0::2], packets[1::2], payload[0::2], payload[1::2]), axis=1)[o],
        has_next=has_next[o],
    )


def _align_acks(
    ack: np.ndarray,
    acked: np.ndarray,
    seq: np.ndarray,
    conn_of_row: np.ndarray,
    sender: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
) -> np.ndarray:
    """Shift each side's unwrapped acks by whole 2**32 so they sit next to the peer's unwrapped seqs.

    Both were unwrapped from their own first value; after an ISN close to 2**32 the first ack can
    already have wrapped while the peer's first seq has not.
    """
    for side in (0, 1):
        first_ack = _first_where(acked & (sender == side), starts, ends)
        peer_first = _first_where(sender == 1 - side, starts, ends)
        both = np.flatnonzero((first_ack >= 0) & (peer_first >= 0))
        if not len(both):
            continue
        a0 = ack[first_ack[both]]
        p0 = seq[peer_first[both]]
        d = (a0 - p0) & 0xFFFFFFFF
        d[d >= 1 << 31] -= SEQ_SPACE
        shift = (p0 + d) - a0
        need = np.flatnonzero(shift != 0)
        if not len(need):
            continue
        per_conn = np.zeros(len(starts), dtype=np.int64)
        per_conn[both[need]] = shift[need]
        rows_shift = per_conn[conn_of_row]
        fix = acked & (sender == side) & (rows_shift != 0)
        ack[fix] += rows_shift[fix]
    return ack
