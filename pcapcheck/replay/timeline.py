"""The order in which each endpoint lived the captured segments.

Each segment is two events: sent by one endpoint, received by the other.  With the capture point
``leg/2`` away from an endpoint (one way; ``Legs`` holds round trips), an endpoint sent what the
capture saw at ``t`` at ``t - leg/2`` and received it at ``t + leg/2``.  Both endpoints' events
then lie on one time axis and are replayed in that order.

Timing alone can misplace an event when round trips vary, so acknowledgements pin it down: an
endpoint that acknowledges the peer's SYN or FIN must have received it before sending that ACK, and
one that sent an ACK below a SYN or FIN had not yet received it.  An ACK of a SYN or FIN cannot
arrive before the SYN or FIN was sent.

A SYN or FIN the capture shows after the peer's ACK of it was sent before that ACK, and a RST
that answers a segment (its sequence number is that segment's ACK) was sent after it arrived.

Keys are integers (4 * 2 * nanoseconds) so that "just before" and "just after" exist; at equal
times a reception comes before a transmission (the transmission is the reply).
"""

from __future__ import annotations

from bisect import bisect_left

import numpy as np

from ..connections import Connection, SegmentColumns, segment_columns
from ..segments import ACK, FIN, RST, SYN
from .facts import Controls
from .vantage import Legs

RECEIVE, SEND = 0, 1
# How far apart two packets may be captured out of order (two CPUs, merged files).
REORDER_WINDOW_NS = 1_000_000
# Each pinned SYN/FIN/RST costs a pass over the connection; a storm of them (a RST flood on one
# tuple) is pinned only this far and otherwise ordered by time.
MAX_PINNED = 256
# Up to this many segments the keys are computed over Python lists: numpy's fixed cost per call
# (about a microsecond, some forty calls) outweighs the work on the few segments of a short
# connection.  Both ways give the same keys (tests/test_replay_equivalence.py).
SMALL_CONNECTION = 256


def event_order(
    conn: Connection, controls: Controls, legs: Legs, columns: SegmentColumns | None = None
) -> list[tuple[int, int]]:
    """(kind, segment index) for every transmission and reception, in the order they happened.

    Round trips measured on the handshake may not hold later (or may be wrong when the handshake
    itself was captured out of order).  When they contradict what the acknowledgements prove, the
    capture order is taken instead: legs of zero.
    """
    n = conn.packets
    if n <= SMALL_CONNECTION:
        cols = columns if columns is not None else segment_columns(conn)
        receive, send, consistent = event_keys_small(cols, controls, legs)
        if not consistent and (legs.client or legs.server):
            receive, send, _ = event_keys_small(cols, controls, Legs(0, 0, False))
        # lexsort((indices, kinds, keys)): by key, then reception before transmission, then index;
        # packed into one int per event (key, kind bit, index bits) because ints sort much faster
        # than tuples.  Python's & and >> on negative ints act on two's complement: keys may be < 0.
        bits = n.bit_length()
        half = 1 << bits
        packed = [(k << (bits + 1)) | i for i, k in enumerate(receive)]
        packed += [(k << (bits + 1)) | half | i for i, k in enumerate(send)]
        packed.sort()
        mask = half - 1
        return [((v >> bits) & 1, v & mask) for v in packed]
    keys, consistent = _event_keys(conn, controls, legs)
    if not consistent and (legs.client or legs.server):
        keys, _ = _event_keys(conn, controls, Legs(0, 0, False))
    kinds = np.concatenate([np.full(n, RECEIVE), np.full(n, SEND)])
    indices = np.concatenate([np.arange(n), np.arange(n)])
    order = np.lexsort((indices, kinds, keys))
    return [(int(kinds[k]), int(indices[k])) for k in order]


def _event_keys(conn: Connection, controls: Controls, legs: Legs) -> tuple[np.ndarray, bool]:
    """Keys of all receptions then all transmissions, and whether every causal bound could hold."""
    t = conn.rows["ts_ns"].astype(np.int64) - int(conn.rows["ts_ns"][0])
    sender = conn.sender.astype(np.int64)
    leg = np.array([legs.client, legs.server], dtype=np.int64)
    send = 4 * (2 * t - leg[sender])
    receive = 4 * (2 * t + leg[1 - sender]) - 2
    flags = conn.rows["flags"].astype(np.int64)
    seq, ack = conn.seq, conn.ack
    length = conn.rows["payload_len"].astype(np.int64)
    acking = ((flags & ACK) != 0) & ((flags & RST) == 0)
    consistent = True

    # A SYN or FIN is received before the receiver's first ACK of it, after its last ACK below it
    # (a SYN without ACK counts as one: it acknowledges nothing).
    control = np.flatnonzero(((flags & (SYN | FIN)) != 0) & ((flags & RST) == 0))
    bare_syn = ((flags & SYN) != 0) & ((flags & (ACK | RST)) == 0)
    for i in control[:MAX_PINNED]:
        end = int(seq[i] + length[i] + (1 if flags[i] & SYN else 0) + (1 if flags[i] & FIN else 0))
        # An ACK captured well before the segment it would cover acknowledges something unsent.
        replies = acking & (sender != sender[i]) & (t >= t[i] - REORDER_WINDOW_NS)
        covering = replies & (ack >= end)
        if covering.any():
            upper = int(send[covering].min())
            if send[i] >= upper - 2:
                # Captured after its own acknowledgement (capture reordering): it left before.
                send[i] = upper - 3
                consistent = False
            below = ((replies & (ack < end)) | (bare_syn & (sender != sender[i]))) & (send < upper)
            if below.any():
                receive[i] = max(receive[i], int(send[below].max()) + 1)
            receive[i] = min(receive[i], upper - 1)
            if receive[i] <= send[i]:
                consistent = False
    # Data is received before the receiver's first ACK of it (vectorised: there is a lot of it).
    for side in (0, 1):
        data = np.flatnonzero((sender == side) & (length > 0) & ((flags & (SYN | FIN | RST)) == 0))
        replies = np.flatnonzero(acking & (sender != side))
        if not len(data) or not len(replies):
            continue
        reached = np.maximum.accumulate(ack[replies])
        first = np.searchsorted(reached, seq[data] + length[data], side="left")
        found = first < len(replies)
        data, first = data[found], first[found]
        j = replies[first]
        plausible = t[j] >= t[data] - REORDER_WINDOW_NS
        data, j = data[plausible], j[plausible]
        if (send[j] - 1 <= send[data]).any():
            consistent = False  # the legs put an ACK before the data it acknowledges
        receive[data] = np.minimum(receive[data], send[j] - 1)
    # An ACK of a SYN or FIN arrives after that SYN or FIN left.
    for side in (0, 1):
        for bit, position in ((SYN, controls.syn[side]), (FIN, controls.fin[side])):
            if position is None:
                continue
            first = np.flatnonzero((sender == side) & ((flags & bit) != 0))
            if not len(first):
                continue
            sent_at = int(send[first[0]])
            after = t >= t[first[0]] - REORDER_WINDOW_NS
            mask = acking & (sender != side) & (ack > position) & (receive <= sent_at) & after
            receive[mask] = sent_at + 1
    # A RST answering a segment (RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>) follows its arrival.
    for i in np.flatnonzero((flags & RST) != 0)[:MAX_PINNED]:
        answered = np.flatnonzero(acking[:i] & (sender[:i] != sender[i]) & (ack[:i] == seq[i]))
        if len(answered):
            j = answered[-1]
            if receive[j] >= send[i]:
                receive[j] = max(send[i] - 1, send[j] + 1)
    # Nothing is received before it was sent.
    receive = np.maximum(receive, send + 1)
    return np.concatenate([receive, send]), consistent


def event_keys_small(cols: SegmentColumns, controls: Controls, legs: Legs) -> tuple[list[int], list[int], bool]:
    """``_event_keys`` over Python lists: (reception keys, transmission keys, consistent).

    The same bounds in the same order as ``_event_keys``; each numpy mask there is a loop here.
    """
    ts, sender, flags, seq, ack, length = cols.ts_ns, cols.sender, cols.flags, cols.seq, cols.ack, cols.length
    n = len(ts)
    t0 = ts[0]
    t = [x - t0 for x in ts]
    leg = (legs.client, legs.server)
    send = [4 * (2 * t[i] - leg[sender[i]]) for i in range(n)]
    receive = [4 * (2 * t[i] + leg[1 - sender[i]]) - 2 for i in range(n)]
    acking = [bool(f & ACK) and not f & RST for f in flags]
    # Per sending side: the segments that acknowledge (not RSTs), and the bare SYNs.
    ackers = ([], [])
    bare_syns = ([], [])
    for j in range(n):
        if acking[j]:
            ackers[sender[j]].append(j)
        elif flags[j] & SYN and not flags[j] & (ACK | RST):
            bare_syns[sender[j]].append(j)
    consistent = True

    # A SYN or FIN is received before the receiver's first ACK of it, after its last ACK below it.
    control = [i for i, f in enumerate(flags) if f & (SYN | FIN) and not f & RST]
    for i in control[:MAX_PINNED]:
        f = flags[i]
        end = seq[i] + length[i] + (1 if f & SYN else 0) + (1 if f & FIN else 0)
        other = 1 - sender[i]
        earliest = t[i] - REORDER_WINDOW_NS
        replies = [j for j in ackers[other] if t[j] >= earliest]
        covering = [send[j] for j in replies if ack[j] >= end]
        if not covering:
            continue
        upper = min(covering)
        if send[i] >= upper - 2:
            # Captured after its own acknowledgement (capture reordering): it left before.
            send[i] = upper - 3
            consistent = False
        below = [send[j] for j in replies if ack[j] < end and send[j] < upper]
        below += [send[j] for j in bare_syns[other] if send[j] < upper]
        if below:
            receive[i] = max(receive[i], max(below) + 1)
        receive[i] = min(receive[i], upper - 1)
        if receive[i] <= send[i]:
            consistent = False
    # Data is received before the receiver's first ACK of it.
    for side in (0, 1):
        data = [
            i for i in range(n) if sender[i] == side and length[i] > 0 and not flags[i] & (SYN | FIN | RST)
        ]
        replies = ackers[1 - side]
        if not data or not replies:
            continue
        reached = []
        top = None
        for j in replies:
            top = ack[j] if top is None or ack[j] > top else top
            reached.append(top)
        pairs = []
        for d in data:
            first = bisect_left(reached, seq[d] + length[d])
            if first < len(replies):
                j = replies[first]
                if t[j] >= t[d] - REORDER_WINDOW_NS:
                    pairs.append((d, j))
        if any(send[j] - 1 <= send[d] for d, j in pairs):
            consistent = False  # the legs put an ACK before the data it acknowledges
        for d, j in pairs:
            receive[d] = min(receive[d], send[j] - 1)
    # An ACK of a SYN or FIN arrives after that SYN or FIN left.
    for side in (0, 1):
        for bit, position in ((SYN, controls.syn[side]), (FIN, controls.fin[side])):
            if position is None:
                continue
            first = next((i for i in range(n) if sender[i] == side and flags[i] & bit), None)
            if first is None:
                continue
            sent_at = send[first]
            earliest = t[first] - REORDER_WINDOW_NS
            for j in ackers[1 - side]:
                if ack[j] > position and receive[j] <= sent_at and t[j] >= earliest:
                    receive[j] = sent_at + 1
    # A RST answering a segment (RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>) follows its arrival.
    resets = [i for i, f in enumerate(flags) if f & RST]
    for i in resets[:MAX_PINNED]:
        me, s = sender[i], seq[i]
        j = next((j for j in range(i - 1, -1, -1) if acking[j] and sender[j] != me and ack[j] == s), None)
        if j is not None and receive[j] >= send[i]:
            receive[j] = max(send[i] - 1, send[j] + 1)
    # Nothing is received before it was sent.
    receive = [r if r > s + 1 else s + 1 for r, s in zip(receive, send)]
    return receive, send, consistent
