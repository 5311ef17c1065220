"""The shape of a connection: everything replay and the checks read from it, minus the copied values.

Two connections of one shape (equal ``connection_shapes`` bytes, and equal run-level time bits,
see memo.py) replay to the same transitions, final states, close, vantage and TIME-WAITs, and the
checks find the same in both, with only frame numbers and times copied from each one's own
segments.  memo.py then replays one connection per shape and instantiates the others from it.
Only connections whose shape is simple enough to argue about get one (None otherwise); the
others, and any shape whose first connection had findings or anomalies, take the reference path.

Why the key is sound, input by input (the modules of pcapcheck/replay and pcapcheck/checks):

* **Sequence numbers** (facts, delivery, machine, timeline, every check comparing seq/ack).  A
  connection is eligible only when every segment's seq is exactly its sender's running next
  sequence number (the end of everything it sent before, RSTs included: no retransmission, no
  gap, no reordering), each side's first segment is its SYN (both ISNs seen), and every ACK field
  equals the end of a segment its peer had already sent in capture order; segments without ACK
  are the opening SYN only.  The per-segment code then holds the flag bits, whether it carries
  payload, and which earlier peer segment its ACK reaches (counted back from the peer's latest):
  every seq, ack, SND.NXT, RCV.NXT, FIN position, ISN + 1 the code compares is one of those
  segment ends (or one less), and each side's ends strictly increase, so every equality and
  order among them follows from the codes; byte counts never decide anything.  It follows that
  facts finds no retransmission, no hole, no ACK of unseen data and no lost FIN, and that
  ``sequence_notes``'s duplicates (same side, seq, ack, flags, length) are decided by the codes
  (two segments with payload never share a seq).  Every SYN and FIN must be acknowledged by
  the peer (a non-RST ACK reaching its end): then delivery.undelivered marks nothing, whatever
  the legs (its timed branches need an unacknowledged or retransmitted control).
* **Windows** (machine: RST in window, segment beyond the window).  They are compared with the
  distance between two sequence numbers of the peer, at most the peer's whole span.  The code
  says zero or larger than the peer's span (scaled as machine scales it: RFC 7323, both SYNs'
  wscale, SYN windows unscaled); anything between makes the connection ineligible, and so does
  a side spanning 65535 or more (machine's DEFAULT_WINDOW).  RST windows are never read.
* **Options**: presence of MSS, wscale, SACK-permitted and timestamps and a bad checksum are
  code bits (option-not-negotiated, timestamps-dropped and reuse read presence only; values are
  read only for retransmitted SYNs and for the next incarnation, both outside).  So is truncation
  (the snap length cut the packet) of a SYN or of a segment without timestamps, the only ones
  any rule reads it of: option-not-negotiated and the reuse rules of SYNs, timestamps-dropped of
  segments without timestamps (the reuse rules also read every segment of the incarnation
  before, from its own rows, and always run for real); a capture with a short snap length cuts
  some data segments and not others, which would otherwise split a key.  SACK blocks make a
  connection ineligible.
* **Time inside the connection** (timeline, delivery, checks).  Timestamps must not decrease;
  a bit per segment says its float time equals the previous one (checks compare segment times
  with >=, decided then by order and ties).  The timeline orders events by integer keys built
  from each segment's time and the handshake legs, then nudges keys by a few units per causal
  bound (at most 3 per bound, under 3n + 1 in all, n <= MAX_SEGMENTS).  The shape holds the order
  of all 2n base keys and, between neighbours, their exact difference when it is at most
  ``KEY_NEAR`` (else "far"): every comparison the timeline makes between nudged keys is then
  decided, and so is its fallback to zero legs (a per-segment gap code of the times in ns, exact
  up to KEY_NEAR / 8).  Its REORDER_WINDOW_NS test is a per-segment count of the segments
  captured more than that window before.  Intra-connection gaps compared with rule parameters
  and the profile's timers are made equal by memo.py: the whole span must be below the smallest.
* **Vantage** (checks' captured_at, reports): computed here exactly as vantage.py does, from the
  handshake legs and each side's TTL (which must be the same on all of that side's segments),
  and part of the key.
* **Connection level**: roles not inferred, at most MAX_SEGMENTS segments.  Whether an earlier
  incarnation is on the tuple is a bit memo.py adds to the key (facts.py notes the SYN reopening a
  tuple); a later incarnation's checks read the previous one, so memo.py runs its checks (the
  checked lane).  A later incarnation does not matter:
  incarnation.py edits the previous replay after the fact, on the instance memo.py makes.
* **Time against the capture's end**: run-level, added by memo.py: a bit for the TIME-WAIT
  expiry (the replay's only comparison with it); when a rule (close-wait-leak,
  missing-fin-retransmit, handshake-incomplete) read it for the template's first, the rules run
  again on members (CheckContext.capture_end notes the reading).
"""

from __future__ import annotations

import numpy as np

from ..segments import ACK, CHECKSUM_BAD, FIN, RST, SYN
from ..timestamps import seconds
from .model import Vantage
from .timeline import REORDER_WINDOW_NS
from .vantage import INITIAL_TTLS, NEAR_RATIO, TIMING_NOISE

MAX_SEGMENTS = 64  # event ids fit 7 bits; the timeline pins every control below its MAX_PINNED
MAX_SPAN_NS = 1 << 26  # ~67 ms: keys and times fit their packed fields (memo.py asks far less)
KEY_NEAR = 1024  # > 2 * (3 * MAX_SEGMENTS + 1) + 3: nudges cannot reorder keys further apart
MAX_SIDE_SPAN = 65535  # machine.DEFAULT_WINDOW: a window never seen is compared as that
_FAR = 0xFFFF
_NO_ACK = 63
_MAX_ACK_BACK = 62
_REL_LIMIT = 1 << 20  # relative sequence numbers kept in packed keys (sides span < 65535 anyway)
_GROUP_SHIFT = 1 << 21
_TIME_SHIFT = 1 << 27
_KEY_OFFSET = 1 << 28  # base keys lie in (-2**28, 2**30) for spans below MAX_SPAN_NS
_KEY_BITS = 31
_VANTAGE_CODES = (Vantage.UNKNOWN, Vantage.CLIENT, Vantage.SERVER, Vantage.MIDDLE)

ROW_DTYPE = np.dtype(
    [
        ("code", "<u4"),  # flag bits and the per-segment bits, see _segment_codes
        ("ack", "u1"),  # how many peer segments back the ACK reaches (0 = all sent so far), or _NO_ACK
        ("reorder", "u1"),  # segments captured more than REORDER_WINDOW_NS before this one
        ("gap", "u1"),  # ns since the previous segment, or 255 when more than KEY_NEAR / 8
        ("events", "u1", (2,)),  # this slot's two events of the base-key order: kind << 6 | segment
        ("near", "<u2", (2,)),  # each of those events' key minus the one before, or _FAR
    ]
)


def connection_shapes(
    rows: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    sender: np.ndarray,
    seq: np.ndarray,
    ack: np.ndarray,
    eligible: np.ndarray,
    *,
    flags: np.ndarray | None = None,
    length: np.ndarray | None = None,
    by_side: np.ndarray | None = None,
) -> list[bytes | None]:
    """Per connection (rows sorted by connection, each connection's rows in capture order), its
    shape, or None when it is not eligible.  ``eligible``: the connection-level conditions the
    caller knows (roles not inferred).

    What the caller has at hand already, to save a pass over the wide rows or a sort: ``flags``
    and ``length``, rows["flags"] and rows["payload_len"] contiguous; ``by_side``, the stable
    argsort of connection * 2 + sender."""
    n_conn = len(starts)
    if n_conn == 0:
        return []
    if n_conn >= 1 << 24:
        return [None] * n_conn
    counts = ends - starts
    conn = np.repeat(np.arange(n_conn, dtype=np.int64), counts)
    local = np.arange(len(rows), dtype=np.int64) - starts[conn]
    ok = eligible & (counts >= 2) & (counts <= MAX_SEGMENTS)
    # Rows of connections already out are left in: every packed key keeps a connection in its range.
    bad = np.zeros(len(rows), dtype=bool)

    flags = (rows["flags"] if flags is None else flags).astype(np.int64)
    syn, fin, rst, acked = (flags & SYN) != 0, (flags & FIN) != 0, (flags & RST) != 0, (flags & ACK) != 0
    length = (rows["payload_len"] if length is None else length).astype(np.int64)
    side = sender.astype(np.int64)
    group = conn * 2 + side
    seg_len = length + syn + fin

    seqs = _sequence(group, seq, seg_len, rst, syn, n_conn, by_side)
    bad |= seqs.bad_rows
    ok &= seqs.both_sides & (seqs.span.reshape(n_conn, 2).max(axis=1) < MAX_SIDE_SPAN)
    peer = conn * 2 + 1 - side
    bad |= ~acked & ~(syn & ~rst)  # only a SYN may go without an ACK
    ack_code = _ack_codes(group, peer, conn, side, seq, ack, seg_len, rst, acked, seqs, starts)
    bad |= acked & (ack_code < 0)
    ack_code = np.where(acked, ack_code, _NO_ACK)
    bad |= _controls_unacknowledged(group, peer, ack, seq, seg_len, syn, fin, rst, acked, n_conn)
    window_code, window_bad = _window_codes(rows, group, peer, syn, rst, seqs, n_conn)
    bad |= window_bad
    bad |= rows["sack_count"] > 0

    ts = rows["ts_ns"].astype(np.int64)
    rel_t = ts - ts[starts][conn]
    same_conn = np.zeros(len(rows), dtype=bool)
    same_conn[1:] = conn[1:] == conn[:-1]
    step_ns = np.zeros(len(rows), dtype=np.int64)
    step_ns[1:] = np.where(same_conn[1:], ts[1:] - ts[:-1], 0)
    bad |= step_ns < 0
    ok &= (ts[ends - 1] - ts[starts]) < MAX_SPAN_NS
    times = seconds(ts)  # as Segment.time is made: two ns apart can be one float
    tie = np.zeros(len(rows), dtype=bool)
    tie[1:] = same_conn[1:] & (times[1:] == times[:-1])
    gap = np.where(step_ns <= KEY_NEAR // 8, step_ns, 255)
    reorder = _reorder_counts(conn, rel_t, starts)

    by_ttl, ttl_bad = _initial_ttls(rows, group, n_conn)
    ok &= ~ttl_bad
    client_leg, server_leg = _handshake_legs(conn, side, syn, acked, rst, seq, ack, ts, seqs, starts, ends, n_conn)
    vantage = _vantage(client_leg, server_leg, by_ttl)
    legs = np.stack([np.maximum(client_leg, 0), np.maximum(server_leg, 0)], axis=1)  # None -> 0, as Legs
    events, near = _event_signature(conn, local, side, rel_t, legs, starts)

    ok &= ~np.logical_or.reduceat(bad, starts)
    out = np.empty(len(rows), dtype=ROW_DTYPE)
    out["code"] = _segment_codes(rows, flags, side, length, window_code, tie)
    out["ack"] = np.clip(ack_code, 0, 255)
    out["reorder"] = np.clip(reorder, 0, 255)
    out["gap"] = gap
    out["events"] = events.reshape(-1, 2)
    out["near"] = near.reshape(-1, 2)
    tails = [bytes([code]) for code in range(len(_VANTAGE_CODES))]
    interned: dict[bytes, bytes] = {}
    shapes: list[bytes | None] = [None] * n_conn
    # One copy of all rows' bytes, sliced per connection: a tobytes per connection costs ~3x more.
    blob = out.tobytes()
    keep = np.flatnonzero(ok)
    size = ROW_DTYPE.itemsize
    for k, a, b, v in zip(keep.tolist(), (starts[keep] * size).tolist(), (ends[keep] * size).tolist(), vantage[keep].tolist()):
        shape = blob[a:b] + tails[v]
        shapes[k] = interned.setdefault(shape, shape)
    return shapes


class _Sequence:
    """Each side's sequence numbers relative to its ISN, and the rows that break exact order."""

    def __init__(self, base, rel, end, bad_rows, both_sides, span):
        self.base = base  # per group (connection * 2 + side): the side's ISN, unwrapped
        self.rel = rel  # per row: seq - base of its sender
        self.end = end  # per row: rel + sequence space consumed (a RST consumes none)
        self.bad_rows = bad_rows
        self.both_sides = both_sides  # per connection: each side sent, first its SYN
        self.span = span  # per group: the end of everything the side sent (relative)


def _sequence(group, seq, seg_len, rst, syn, n_conn, by_side=None) -> _Sequence:
    n = len(group)
    if by_side is None:
        by_side = np.argsort(group, kind="stable")
    g = group[by_side]
    first = np.ones(n, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    first_pos = np.flatnonzero(first)
    first_rows = by_side[first_pos]
    base = np.zeros(2 * n_conn, dtype=np.int64)
    base[g[first_pos]] = seq[first_rows]
    sides_seen = np.bincount(g[first_pos] // 2, minlength=n_conn)
    opens = np.zeros(2 * n_conn, dtype=bool)
    opens[g[first_pos]] = syn[first_rows] & ~rst[first_rows]
    both_sides = (sides_seen == 2) & opens.reshape(n_conn, 2).all(axis=1)
    rel = seq - base[group]
    end = rel + np.where(rst, 0, seg_len)
    out_of_range = (rel < 0) | (end >= _REL_LIMIT)
    # Running maximum of the ends each side sent before, per side: one accumulate over offset groups.
    packed = g * _GROUP_SHIFT + np.clip(end[by_side], 0, _REL_LIMIT - 1)
    reach = np.maximum.accumulate(packed)
    expected = np.empty(n, dtype=np.int64)
    expected[1:] = reach[:-1] - g[1:] * _GROUP_SHIFT
    exact = first.copy()
    exact[~first] = rel[by_side][~first] == expected[~first]
    bad_rows = out_of_range.copy()
    bad_rows[by_side[~exact]] = True
    last_pos = np.append(first_pos[1:], n) - 1
    span = np.zeros(2 * n_conn, dtype=np.int64)
    span[g[last_pos]] = reach[last_pos] - g[last_pos] * _GROUP_SHIFT
    return _Sequence(base, rel, end, bad_rows, both_sides, span)


def _ack_codes(group, peer, conn, side, seq, ack, seg_len, rst, acked, seqs: _Sequence, starts) -> np.ndarray:
    """Per row: how many of the peer's segments (those consuming sequence space, captured before
    it) lie beyond the one whose end the ACK equals; -1 when it equals none of their ends."""
    consuming = ~rst & (seg_len > 0)
    # Plain integers sort to one array whatever the algorithm; numpy's "stable" one (timsort) is
    # several times faster than the default on these keys, nearly sorted already.
    keys = np.sort(group[consuming] * _GROUP_SHIFT + np.clip(seqs.end[consuming], 0, _REL_LIMIT - 1), kind="stable")
    group_first = np.searchsorted(keys, np.arange(len(seqs.base), dtype=np.int64) * _GROUP_SHIFT)
    rel_ack = ack - seqs.base[peer]
    valid = acked & (rel_ack >= 1) & (rel_ack < _REL_LIMIT)
    query = peer * _GROUP_SHIFT + np.clip(rel_ack, 0, _REL_LIMIT - 1)
    pos = np.searchsorted(keys, query)
    hit = valid & (pos < len(keys))
    hit[hit] = keys[pos[hit]] == query[hit]
    position = pos - group_first[peer]  # which of the peer's segments, 0-based, in order of end
    # The peer's segments captured before this row (the row itself is not the peer's).
    sent = [np.cumsum(consuming & (side == s)) for s in (0, 1)]
    before_conn = [np.where(starts > 0, c[np.maximum(starts - 1, 0)], 0) for c in sent]
    peer_sent = np.where(side == 0, sent[1] - before_conn[1][conn], sent[0] - before_conn[0][conn])
    back = peer_sent - 1 - position
    return np.where(hit & (back >= 0) & (back <= _MAX_ACK_BACK), back, -1)


def _controls_unacknowledged(group, peer, ack, seq, seg_len, syn, fin, rst, acked, n_conn) -> np.ndarray:
    """Rows with a SYN or FIN no non-RST ACK of the peer reaches (delivery would time it)."""
    acking = acked & ~rst
    top = np.full(2 * n_conn, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(top, group[acking], ack[acking])
    peer_top = top[peer]
    control = (syn | fin) & ~rst
    return control & ((syn & ~(peer_top > seq)) | (fin & ~(peer_top >= seq + seg_len)))


def _window_codes(rows, group, peer, syn, rst, seqs: _Sequence, n_conn) -> tuple[np.ndarray, np.ndarray]:
    """1 when the window (as machine scales it) exceeds the peer's whole span, 0 when zero."""
    first_wscale = np.full(2 * n_conn, -1, dtype=np.int64)
    wscale = rows["wscale"].astype(np.int64)
    # Each side's only SYN is its first row (exact order); its offer decides the scaling.
    np.maximum.at(first_wscale, group[syn & ~rst], wscale[syn & ~rst])
    offered = first_wscale.reshape(n_conn, 2)
    both = (offered >= 0).all(axis=1)
    shift = np.where(both[:, None], np.minimum(offered, 14), 0).reshape(-1)
    window = rows["window"].astype(np.int64)
    scaled = np.where(syn, window, window << shift[group])
    big = scaled > seqs.span[peer]
    code = np.where(rst, 0, np.where(scaled == 0, 0, 1))
    return code, ~rst & (scaled != 0) & ~big


def _reorder_counts(conn, rel_t, starts) -> np.ndarray:
    """Per row: how many rows of its connection were captured more than REORDER_WINDOW_NS before."""
    clipped = np.clip(rel_t, 0, _TIME_SHIFT - 1)
    times = np.sort(conn * _TIME_SHIFT + clipped, kind="stable")  # nearly sorted: see _ack_codes
    pos = np.searchsorted(times, conn * _TIME_SHIFT + clipped - REORDER_WINDOW_NS)
    return np.maximum(pos - starts[conn], 0)


def _initial_ttls(rows, group, n_conn) -> tuple[np.ndarray, np.ndarray]:
    """Per connection and side: does it carry an initial TTL; and whether a side's TTLs differ."""
    ttl = rows["ttl"].astype(np.int64)
    low = np.full(2 * n_conn, 256, dtype=np.int64)
    high = np.full(2 * n_conn, -1, dtype=np.int64)
    np.minimum.at(low, group, ttl)
    np.maximum.at(high, group, ttl)
    initial = np.isin(low, INITIAL_TTLS).reshape(n_conn, 2)
    differ = (low != high).reshape(n_conn, 2).any(axis=1)
    return initial, differ


def _first_where(mask, starts, ends) -> np.ndarray:
    big = np.iinfo(np.int64).max
    pos = np.where(mask, np.arange(len(mask)), big)
    first = np.minimum.reduceat(pos, starts)
    return np.where(first < ends, first, -1)


def _handshake_legs(conn, side, syn, acked, rst, seq, ack, ts, seqs, starts, ends, n_conn):
    """vantage.handshake_legs for exactly ordered connections: (client leg, server leg) in ns, -1
    for None.  Each side sent one SYN (its first row), so the first SYN-ACK is the server's first
    row, the SYN it answers the client's first row, and it is the last SYN-ACK before any ACK."""
    synack = _first_where((side == 1) & syn & acked, starts, ends)
    client_syn = _first_where((side == 0) & syn & ~acked, starts, ends)
    has_synack = synack >= 0
    safe_synack = np.maximum(synack, 0)
    answered_syn = has_synack & (client_syn >= 0) & (client_syn < synack)
    server_leg = np.where(answered_syn, ts[safe_synack] - ts[np.maximum(client_syn, 0)], -1)
    expected = (seq[safe_synack] + 1)[conn]
    after = np.arange(len(side)) > safe_synack[conn]
    answers = (side == 0) & acked & ~syn & ~rst & (ack == expected) & after & has_synack[conn]
    answered = _first_where(answers, starts, ends)
    client_leg = np.where(answered >= 0, ts[np.maximum(answered, 0)] - ts[safe_synack], -1)
    # A simultaneous open (a server SYN before its SYN-ACK) measures nothing.
    server_syn = _first_where((side == 1) & syn, starts, ends)
    simultaneous = has_synack & (server_syn < synack)
    return np.where(simultaneous, -1, client_leg), np.where(simultaneous, -1, server_leg)


def _vantage(client_leg, server_leg, by_ttl) -> np.ndarray:
    """vantage.infer_vantage, as an index into _VANTAGE_CODES."""
    unknown, client, server, middle = range(4)
    c = np.maximum(client_leg, 0)
    s = np.maximum(server_leg, 0)
    timing = np.select(
        [np.maximum(c, s) < TIMING_NOISE, c <= NEAR_RATIO * s, s <= NEAR_RATIO * c, np.minimum(c, s) < TIMING_NOISE],
        [unknown, client, server, unknown],
        default=middle,
    )
    timing = np.where(((timing == client) & ~by_ttl[:, 0]) | ((timing == server) & ~by_ttl[:, 1]), unknown, timing)
    measured = (client_leg >= 0) & (server_leg >= 0)
    both_forwarded = ~by_ttl[:, 0] & ~by_ttl[:, 1]
    return np.where(both_forwarded, middle, np.where(measured, timing, unknown))


def _event_signature(conn, local, side, rel_t, legs, starts) -> tuple[np.ndarray, np.ndarray]:
    """The order of every connection's 2n base timeline keys (timeline.event_keys_small before its
    causal bounds), ties broken as event_order breaks them, and each key's distance to the one
    before when it is KEY_NEAR or less.  Slot 2 * row + j holds its connection's event there."""
    own = legs[conn, side]
    other = legs[conn, 1 - side]
    send = 4 * (2 * rel_t - own)
    receive = 4 * (2 * rel_t + other) - 2
    low = local & 63

    def packed(key, kind):
        key = np.clip(key + _KEY_OFFSET, 0, (1 << _KEY_BITS) - 1)
        return (conn << (_KEY_BITS + 7)) | (key << 7) | (kind << 6) | low

    order = np.sort(np.concatenate([packed(receive, 0), packed(send, 1)]), kind="stable")  # see _ack_codes
    events = (order & 127).astype(np.uint8)
    key = (order >> 7) & ((1 << _KEY_BITS) - 1)
    near = np.zeros(len(order), dtype=np.int64)
    near[1:] = key[1:] - key[:-1]
    near[2 * starts] = 0
    near = np.where(near <= KEY_NEAR, near, _FAR).astype(np.uint16)
    return events, near


def _segment_codes(rows, flags, side, length, window_code, tie) -> np.ndarray:
    code = flags & 0x1FF
    code |= side << 9
    code |= (length > 0).astype(np.int64) << 10
    code |= rows["has_ts"].astype(np.int64) << 11
    code |= rows["sack_permitted"].astype(np.int64) << 12
    code |= (rows["mss"] >= 0).astype(np.int64) << 13
    code |= (rows["wscale"] >= 0).astype(np.int64) << 14
    code |= (rows["truncated"] & (((flags & SYN) != 0) | ~rows["has_ts"])).astype(np.int64) << 15
    code |= (rows["checksum"] == CHECKSUM_BAD).astype(np.int64) << 16
    code |= window_code.astype(np.int64) << 17
    code |= tie.astype(np.int64) << 18
    return code.astype(np.uint32)
