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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .capture.frames import take_rows
from .segments import ACK, CHECKSUM_BAD, FIN, MAX_SACK_BLOCKS, RST, SYN, Segment, Side, address_text


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    addr: str
    port: int

    def __str__(self) -> str:
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


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
        return int(self.rows["ts_ns"][0]) / 1e9

    @property
    def end(self) -> float:
        return int(self.rows["ts_ns"][-1]) / 1e9

    def bytes_sent(self, side: Side) -> int:
        mask = self.sender == (0 if side is Side.CLIENT else 1)
        return int(self.rows["payload_len"][mask].sum())

    def packets_sent(self, side: Side) -> int:
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
                ts_ns[i] / 1e9,
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
    row = conn.rows[i]
    side_index = int(conn.sender[i])
    sender = Side.CLIENT if side_index == 0 else Side.SERVER
    seq = int(conn.seq[i])
    ack = int(conn.ack[i])
    sack_blocks: tuple[tuple[int, int], ...] = ()
    count = int(row["sack_count"])
    if count:
        # SACK edges live in the peer's sequence space, like ack: unwrap them next to ack.
        raw_ack = int(row["ack"])
        sack_blocks = tuple(
            (ack + _delta(int(left), raw_ack), ack + _delta(int(right), raw_ack))
            for left, right in row["sack"][: min(count, MAX_SACK_BLOCKS)]
        )
    return Segment(
        index=i,
        frame=int(row["frame"]),
        time=int(row["ts_ns"]) / 1e9,
        sender=sender,
        seq=seq,
        ack=ack,
        rel_seq=seq - bases[side_index],
        rel_ack=ack - bases[1 - side_index],
        flags=int(row["flags"]),
        window=int(row["window"]),
        length=int(row["payload_len"]),
        mss=int(row["mss"]) if row["mss"] >= 0 else None,
        wscale=int(row["wscale"]) if row["wscale"] >= 0 else None,
        sack_permitted=bool(row["sack_permitted"]),
        ts_val=int(row["ts_val"]) if row["has_ts"] else None,
        ts_ecr=int(row["ts_ecr"]) if row["has_ts"] else None,
        sack_blocks=sack_blocks,
        truncated=bool(row["truncated"]),
        bad_checksum=int(row["checksum"]) == CHECKSUM_BAD,
    )


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
    # Rows whose listener counts guess roles when they are not all in ``rows`` (a shard of the
    # capture): a listening server is recognised by the peers of the whole capture.  None = ``rows``.
    listener_rows: np.ndarray | None = None


def rebuild(batches: Iterable[np.ndarray]) -> Iterator[Connection]:
    """Group segment batches (in timestamp order) into connections; yield them ordered by id."""
    rows = _gather(batches)
    if rows is None:
        return
    split = _split_connections(rows)
    del rows  # the split holds its own sorted copy
    yield from _connections(split)


def rebuild_subset(batches: Iterable[np.ndarray], keep: Callable[[np.ndarray], np.ndarray]) -> Iterator[Connection]:
    """``rebuild`` over the rows ``keep(rows)`` selects (a boolean mask), for one shard of a capture.

    ``keep`` must select whole tuples (e.g. by a hash of the canonical 4-tuple).  Each connection
    then comes out exactly as ``rebuild`` of the whole capture makes it (rows, incarnations, roles,
    including roles guessed from how many peers talk to an endpoint), except that ``id`` and
    ``previous_id`` count only the selected connections, still 1-based in order of first frame.
    """
    rows = _gather(batches)
    if rows is None:
        return
    selected = np.flatnonzero(keep(rows))
    if not len(selected):
        return
    split = _split_connections(take_rows(rows, selected))
    split.listener_rows = rows
    del rows
    yield from _connections(split)


def _gather(batches: Iterable[np.ndarray]) -> np.ndarray | None:
    parts = [batch for batch in batches if len(batch)]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _endpoint_keys(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(src_hi, src_lo, dst_hi, dst_lo): the 16-byte addresses as two big-endian 64-bit halves."""
    src = np.ascontiguousarray(rows["src"]).view(">u8").astype(np.uint64)
    dst = np.ascontiguousarray(rows["dst"]).view(">u8").astype(np.uint64)
    return src[:, 0], src[:, 1], dst[:, 0], dst[:, 1]


def _split_connections(rows: np.ndarray) -> _Split:
    s_hi, s_lo, d_hi, d_lo = _endpoint_keys(rows)
    sport = rows["sport"].astype(np.int64)
    dport = rows["dport"].astype(np.int64)
    # Canonical tuple: the lower (address, port) endpoint first; direction 1 = sent by the higher one.
    higher = (s_hi > d_hi) | ((s_hi == d_hi) & ((s_lo > d_lo) | ((s_lo == d_lo) & (sport > dport))))
    lo_hi, lo_lo, lo_port = np.where(higher, d_hi, s_hi), np.where(higher, d_lo, s_lo), np.where(higher, dport, sport)
    hi_hi, hi_lo, hi_port = np.where(higher, s_hi, d_hi), np.where(higher, s_lo, d_lo), np.where(higher, sport, dport)
    mapped_v4 = np.uint64(0x0000FFFF00000000)
    if not (lo_hi.any() or hi_hi.any()) and np.all((lo_lo & ~np.uint64(0xFFFFFFFF)) == mapped_v4) and np.all(
        (hi_lo & ~np.uint64(0xFFFFFFFF)) == mapped_v4
    ):
        # IPv4 only: (address, port) fits one 48-bit key per endpoint, so sort on two keys, not six.
        low32 = np.uint64(0xFFFFFFFF)
        lo_key = ((lo_lo & low32) << np.uint64(16)) | lo_port.astype(np.uint64)
        hi_key = ((hi_lo & low32) << np.uint64(16)) | hi_port.astype(np.uint64)
        key_columns: tuple[np.ndarray, ...] = (lo_key, hi_key)
    else:
        key_columns = (lo_hi, lo_lo, lo_port, hi_hi, hi_lo, hi_port)
    # lexsort is stable: capture order survives within a tuple.
    order = np.lexsort(key_columns[::-1])
    keys = tuple(k[order] for k in key_columns)
    new_tuple = np.zeros(len(rows), dtype=bool)
    new_tuple[0] = True
    for k in keys:
        new_tuple[1:] |= k[1:] != k[:-1]
    rows = take_rows(rows, order)
    direction = higher[order].astype(np.uint8)
    tuple_starts = np.flatnonzero(new_tuple)
    tuple_ends = np.append(tuple_starts[1:], len(rows))

    flags = rows["flags"]
    opening = ((flags & SYN) != 0) & ((flags & ACK) == 0)
    # Tuples whose opening SYNs (if any) are all one SYN, retransmitted, and come first hold one
    # connection; only the others need the incarnation walk.
    tuple_id = np.cumsum(new_tuple) - 1
    syn_pos = np.flatnonzero(opening)
    needs_walk = np.zeros(len(tuple_starts), dtype=bool)
    if len(syn_pos):
        t = tuple_id[syn_pos]
        tuples_with_syn, first_index = np.unique(t, return_index=True)
        first_syn = np.full(len(tuple_starts), -1, dtype=np.int64)
        first_syn[tuples_with_syn] = syn_pos[first_index]
        same = (rows["seq"][syn_pos] == rows["seq"][first_syn[t]]) & (direction[syn_pos] == direction[first_syn[t]])
        needs_walk[t[~same]] = True
        has_syn = first_syn >= 0
        needs_walk |= has_syn & (first_syn != tuple_starts)

    cuts, walk = _closed_reopenings(rows, direction, tuple_id, tuple_starts, syn_pos, needs_walk)
    synack_walk = _synacks_after_handshake(rows, direction, tuple_id, tuple_starts, tuple_ends)
    synack_walk |= _jumps_after_close(rows, direction, tuple_id)
    if synack_walk.any():
        walk |= synack_walk
        cuts = cuts[~synack_walk[tuple_id[cuts]]]
    extra: list[int] = cuts.tolist()  # incarnation starts after a tuple's first row
    for t in np.flatnonzero(walk).tolist():
        a, b = int(tuple_starts[t]), int(tuple_ends[t])
        extra.extend(a + c for c in _incarnation_starts(rows[a:b], direction[a:b])[1:])
    starts_arr = np.sort(np.concatenate([tuple_starts, np.asarray(extra, dtype=np.int64)]))
    ends_arr = np.append(starts_arr[1:], len(rows))
    return _Split(rows, direction, starts_arr, ends_arr, tuple_id[starts_arr])


def _closed_reopenings(
    rows: np.ndarray,
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
    seq, d = rows["seq"][cand], direction[cand]
    same_tuple_before = np.zeros(len(cand), dtype=bool)
    same_tuple_before[1:] = t[1:] == t[:-1]
    retransmitted = same_tuple_before.copy()
    retransmitted[1:] &= (seq[1:] == seq[:-1]) & (d[1:] == d[:-1])
    cand, t = cand[~retransmitted], t[~retransmitted]
    first_of_tuple = np.ones(len(cand), dtype=bool)
    first_of_tuple[1:] = t[1:] != t[:-1]
    since = np.where(first_of_tuple, tuple_starts[t], np.roll(cand, 1))  # the opening before
    flags = rows["flags"]

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
    rows: np.ndarray, direction: np.ndarray, tuple_id: np.ndarray, tuple_starts: np.ndarray, tuple_ends: np.ndarray
) -> np.ndarray:
    """Per tuple: may a SYN-ACK open an incarnation there (so the tuple needs the walk)?

    In ``_incarnation_starts`` a SYN-ACK can only open one after a row that is not a plain SYN (the
    handshake completed, or a FIN or RST was seen), and never when it repeats the incarnation's
    first SYN-ACK.  So a tuple whose SYN-ACKs all repeat its first one (sender and ack), all before
    any other row than a SYN, has none: a lost SYN of a reused tuple shows as a second SYN-ACK.
    """
    flags = rows["flags"]
    synack_pos = np.flatnonzero(((flags & SYN) != 0) & ((flags & ACK) != 0))
    walk = np.zeros(len(tuple_starts), dtype=bool)
    if not len(synack_pos):
        return walk
    t = tuple_id[synack_pos]
    tuples_with, first_index = np.unique(t, return_index=True)
    first = np.full(len(tuple_starts), -1, dtype=np.int64)
    first[tuples_with] = synack_pos[first_index]
    ack = rows["ack"]
    repeat = (ack[synack_pos] == ack[first[t]]) & (direction[synack_pos] == direction[first[t]])
    walk[t[~repeat]] = True
    plain_syn = ((flags & SYN) != 0) & ((flags & (FIN | RST)) == 0)
    first_other = _first_where(~plain_syn, tuple_starts, tuple_ends)
    after_other = (first_other[t] >= 0) & (synack_pos > first_other[t])
    walk[t[after_other]] = True
    return walk


def _jumps_after_close(rows: np.ndarray, direction: np.ndarray, tuple_id: np.ndarray) -> np.ndarray:
    """Per tuple: may a segment after a close open an incarnation there (so the tuple needs the walk)?

    ``_incarnation_starts`` cuts at a segment without SYN or RST, after a FIN or RST, whose seq or
    ack lies more than ``CLOSED_SLACK`` outside its space, or more than ``FIN_SLACK`` beyond the
    last FIN of that space.  The number before it in the same space (a seq its sender sent, other
    than a RST's, or an ack the peer sent) lies inside that space, so such a segment jumps more
    than ``CLOSED_SLACK`` from it, or lies more than ``FIN_SLACK`` beyond the space's last FIN: the
    tuples with such a segment are a superset of the tuples where the walk cuts that way.
    """
    n = len(rows)
    flags = rows["flags"]
    tuples = int(tuple_id[-1]) + 1 if n else 0
    walk = np.zeros(tuples, dtype=bool)
    closing = (flags & (FIN | RST)) != 0
    if not closing.any():
        return walk
    # Number events: (space, row, value); space = tuple * 2 + direction of the space's owner.
    has_seq = (flags & RST) == 0
    has_ack = (flags & ACK) != 0
    seq_rows, ack_rows = np.flatnonzero(has_seq), np.flatnonzero(has_ack)
    space = np.concatenate([tuple_id[seq_rows] * 2 + direction[seq_rows], tuple_id[ack_rows] * 2 + 1 - direction[ack_rows]])
    row = np.concatenate([seq_rows, ack_rows])
    value = np.concatenate([rows["seq"][seq_rows], rows["ack"][ack_rows]]).astype(np.int64)
    # One past each FIN (only seq events carry one); -1 for the others.  A SYN event ends the
    # bound of the FIN before it (-2), as in the walk.
    fin_rows = seq_rows[(flags[seq_rows] & FIN) != 0]
    fin_end = np.full(n, -1, dtype=np.int64)
    fin_end[(flags & SYN) != 0] = -2
    fin_end[fin_rows] = (
        rows["seq"][fin_rows].astype(np.int64)
        + rows["payload_len"][fin_rows]
        + 1
        + ((flags[fin_rows] & SYN) != 0)
    ) & 0xFFFFFFFF
    event_fin = np.concatenate([fin_end[seq_rows], np.full(len(ack_rows), -1, dtype=np.int64)])
    # Rows are already in tuple order: sorting by (space, row) only interleaves two directions.
    order = np.argsort(space * n + row, kind="stable")
    space, row, value, event_fin = space[order], row[order], value[order], event_fin[order]
    jump = np.zeros(len(row), dtype=bool)
    d = (value[1:] - value[:-1]) & 0xFFFFFFFF
    d = np.minimum(d, SEQ_SPACE - d)
    jump[1:] = (space[1:] == space[:-1]) & (d > CLOSED_SLACK)
    # Beyond the last earlier FIN of the same space by more than the walk's least bound there.
    positions = np.arange(len(row))
    last_fin = np.full(len(row), -1, dtype=np.int64)
    last_fin[1:] = np.maximum.accumulate(np.where(event_fin != -1, positions, -1))[:-1]
    has_fin = last_fin >= 0
    has_fin[has_fin] = (space[last_fin[has_fin]] == space[has_fin]) & (event_fin[last_fin[has_fin]] >= 0)
    ahead = (value - event_fin[np.maximum(last_fin, 0)]) & 0xFFFFFFFF
    jump |= has_fin & (ahead > FIN_SLACK) & (ahead < 1 << 31)
    # Only a segment without SYN or RST after a FIN or RST of its tuple can be cut there.
    closed_before = np.zeros(n, dtype=np.int64)
    closed_before[1:] = np.cumsum(closing)[:-1]
    tuple_first = np.flatnonzero(np.append(True, tuple_id[1:] != tuple_id[:-1]))
    closed_before -= closed_before[tuple_first][tuple_id]
    candidate = ((flags & (SYN | RST)) == 0) & (closed_before > 0)
    hits = row[jump & candidate[row]]
    walk[tuple_id[hits]] = True
    return walk


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
    big = np.iinfo(np.int64).max
    pos = np.where(mask, np.arange(len(mask)), big)
    first = np.minimum.reduceat(pos, starts) if len(starts) else np.zeros(0, dtype=np.int64)
    return np.where(first < ends, first, -1)


def _roles(split: _Split) -> tuple[np.ndarray, np.ndarray]:
    """(client_direction, roles_inferred) per connection; see the module docstring."""
    rows, direction, starts, ends = split.rows, split.direction, split.starts, split.ends
    flags = rows["flags"]
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
        listeners = _listener_counts(rows if split.listener_rows is None else split.listener_rows)
        for k in guess.tolist():
            client[k] = _guess_client_direction(rows, direction, int(starts[k]), listeners)
    return client, inferred


def _listener_counts(rows: np.ndarray) -> dict[tuple[bytes, int], int]:
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


def _guess_client_direction(rows: np.ndarray, direction: np.ndarray, first: int, listeners: dict) -> int:
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
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = group[1:] != group[:-1]
    group_index = np.cumsum(new_group) - 1
    # A group without trusted rows trusts all of its rows.
    trusted_in_group = np.bincount(group_index, weights=trusted, minlength=group_index[-1] + 1) > 0
    trusted = trusted | ~trusted_in_group[group_index]
    t = np.flatnonzero(trusted)
    rt = out[t]
    d = np.zeros(len(t), dtype=np.int64)
    d[1:] = (rt[1:] - rt[:-1]) & 0xFFFFFFFF
    d[d >= 1 << 31] -= SEQ_SPACE
    group_t = group_index[t]
    t_new = np.ones(len(t), dtype=bool)
    t_new[1:] = group_t[1:] != group_t[:-1]
    # Restart the running sum at the first trusted row of every group, from its raw value.
    d[t_new] = rt[t_new]
    csum = np.cumsum(d)
    restart = np.maximum.accumulate(np.where(t_new, np.arange(len(t)), 0))
    unwrapped = csum - (csum[restart] - rt[restart])
    out[t] = unwrapped
    u = np.flatnonzero(~trusted)
    if len(u):
        pos = np.arange(n)
        prev_t = np.maximum.accumulate(np.where(trusted, pos, -1))
        next_t = np.minimum.accumulate(np.where(trusted, pos, n)[::-1])[::-1]
        ref = prev_t[u]
        use_next = (ref < 0) | (group_index[np.maximum(ref, 0)] != group_index[u])
        ref = np.where(use_next, next_t[u], ref)
        ref_val = out[ref]
        delta = (out[u] - ref_val) & 0xFFFFFFFF
        delta[delta >= 1 << 31] -= SEQ_SPACE
        out[u] = ref_val + delta
    return out


def _connections(split: _Split) -> Iterator[Connection]:
    rows, starts, ends = split.rows, split.starts, split.ends
    n_conn = len(starts)
    client_dir, inferred = _roles(split)
    split.listener_rows = None  # roles are known: a shard need not hold the whole capture any longer
    conn_of_row = np.repeat(np.arange(n_conn), ends - starts)
    sender = (split.direction != client_dir[conn_of_row]).astype(np.uint8)
    flags = rows["flags"]

    # Order rows by (connection, sender), time kept: each side's numbers form one group.
    group = conn_of_row * 2 + sender
    by_side = np.argsort(group, kind="stable")
    seq = np.empty(len(rows), dtype=np.int64)
    seq[by_side] = _unwrap(rows["seq"][by_side], group[by_side], (flags[by_side] & RST) == 0)
    ack = rows["ack"].astype(np.int64)
    acked = (flags & ACK) != 0
    ack_sorted = _unwrap(rows["ack"][by_side], group[by_side], acked[by_side])
    ack[by_side] = np.where(acked[by_side], ack_sorted, ack[by_side])
    ack = _align_acks(ack, acked, seq, conn_of_row, sender, starts, ends)

    syn = (flags & SYN) != 0
    first_client_syn = _first_where(syn & ((flags & ACK) == 0) & (sender == 0), starts, ends)
    first_server_syn = _first_where(syn & (sender == 1), starts, ends)
    flags_seen = np.bitwise_or.reduceat(flags.astype(np.int64), starts)

    # ids in order of first frame; incarnations and links per tuple
    first_frame = rows["frame"][starts]
    id_order = np.lexsort((starts, first_frame))
    conn_id = np.empty(n_conn, dtype=np.int64)
    conn_id[id_order] = np.arange(1, n_conn + 1)
    incarnation = np.ones(n_conn, dtype=np.int64)
    same_tuple = np.zeros(n_conn, dtype=bool)
    same_tuple[1:] = split.tuple_of[1:] == split.tuple_of[:-1]
    for k in np.flatnonzero(same_tuple).tolist():
        incarnation[k] = incarnation[k - 1] + 1

    # Endpoints of each connection, from its first row, turned into text once per address.
    a = starts
    client_is_src = sender[a] == 0
    src, dst = rows["src"][a], rows["dst"][a]
    client_addr = np.where(client_is_src[:, None], src, dst)
    server_addr = np.where(client_is_src[:, None], dst, src)
    client_port = np.where(client_is_src, rows["sport"][a], rows["dport"][a]).tolist()
    server_port = np.where(client_is_src, rows["dport"][a], rows["sport"][a]).tolist()
    versions = rows["ip_version"][a].tolist()
    client_key = client_addr.view("V16").ravel().tolist()
    server_key = server_addr.view("V16").ravel().tolist()
    names: dict[tuple[bytes, int], str] = {}

    def text(raw: bytes, version: int) -> str:
        name = names.get((raw, version))
        if name is None:
            name = names[(raw, version)] = address_text(raw, version)
        return name

    start_l, end_l = starts.tolist(), ends.tolist()
    ids, incs, inferred_l = conn_id.tolist(), incarnation.tolist(), inferred.tolist()
    same_l, seen_l = same_tuple.tolist(), flags_seen.tolist()
    cs_l, ss_l = first_client_syn.tolist(), first_server_syn.tolist()
    for k in id_order.tolist():
        a_k, b_k = start_l[k], end_l[k]
        cs, ss = cs_l[k], ss_l[k]
        yield Connection(
            id=ids[k],
            client=Endpoint(text(client_key[k], versions[k]), client_port[k]),
            server=Endpoint(text(server_key[k], versions[k]), server_port[k]),
            incarnation=incs[k],
            roles_inferred=inferred_l[k],
            rows=rows[a_k:b_k],
            sender=sender[a_k:b_k],
            seq=seq[a_k:b_k],
            ack=ack[a_k:b_k],
            client_isn=int(seq[cs]) if cs >= 0 else None,
            server_isn=int(seq[ss]) if ss >= 0 else None,
            previous_id=ids[k - 1] if same_l[k] else None,
            flags_seen=seen_l[k],
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
