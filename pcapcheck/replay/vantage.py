"""Where the capture was taken: handshake timing and TTL, as tcptrace and Wireshark reason.

A capture point splits each round trip into two legs.  The SYN -> SYN-ACK gap is the round trip
from the capture point to the server and back; the SYN-ACK -> ACK gap is the round trip to the
client and back.  A capture taken at the client sees a tiny client leg, one taken at the server a
tiny server leg, one in the middle two comparable legs.

Both legs include the hosts' own turnaround (tens of microseconds) and the capture's timestamp
noise: below ``TIMING_NOISE`` a leg says nothing, so a loopback or single-host capture, where both
legs are that small, is ``unknown``, never a guess.

TTL only rules out: a stack's own outgoing packets carry its initial TTL (64, 128 or 255); packets
that crossed a router carry less, so the capture was not taken at their sender's host.  An initial
TTL does not prove the capture was at the sender's host: any point on the sender's own link (a
router's interface, a mirror port) sees the same.  When neither side carries an initial TTL, the
capture sat between routers: the middle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..connections import Connection, SegmentColumns
from ..segments import ACK, RST, SYN
from .model import Vantage

INITIAL_TTLS = (64, 128, 255)
# One leg at most this fraction of the other: the capture point sits at that leg's host.
NEAR_RATIO = 0.1
# Legs shorter than this are host turnaround and timestamp noise, not distance (nanoseconds).
TIMING_NOISE = 50_000


@dataclass(frozen=True, slots=True)
class Legs:
    """Round-trip time from the capture point to each endpoint and back, in nanoseconds."""

    client: int
    server: int
    measured: bool  # False: no complete handshake, both legs taken as 0

    def of(self, side_index: int) -> int:
        return self.client if side_index == 0 else self.server


def handshake_legs(conn: Connection, columns: SegmentColumns | None = None) -> tuple[int | None, int | None]:
    """(client leg, server leg) in ns from the first answered handshake, None where unseen."""
    if columns is not None:
        return _handshake_legs_of(columns)
    flags = conn.rows["flags"]
    ts = conn.rows["ts_ns"]
    sender = conn.sender
    synacks = np.flatnonzero((sender == 1) & (flags & SYN != 0) & (flags & ACK != 0))
    if not len(synacks):
        return None, None
    first_synack = int(synacks[0])
    if ((sender[:first_synack] == 1) & (flags[:first_synack] & SYN != 0)).any():
        return None, None  # a simultaneous open: no SYN -> SYN-ACK round trip to measure
    # The SYN that SYN-ACK answers: the last client SYN before it (an earlier one may have been lost).
    before = slice(0, first_synack)
    syns = np.flatnonzero((sender[before] == 0) & (flags[before] & SYN != 0) & (flags[before] & ACK == 0))
    server_leg = int(ts[first_synack] - ts[syns[-1]]) if len(syns) else None
    synack_seq = int(conn.seq[first_synack])
    acks = np.flatnonzero(
        (sender == 0)
        & (flags & ACK != 0)
        & (flags & (SYN | RST) == 0)
        & (conn.ack == synack_seq + 1)
        & (np.arange(len(flags)) > first_synack)
    )
    client_leg = None
    if len(acks):
        answered = int(acks[0])
        # The SYN-ACK that ACK answers: the last one before it.
        last_synack = int(synacks[synacks < answered][-1])
        client_leg = int(ts[answered] - ts[last_synack])
    return client_leg, server_leg


def initial_ttl(conn: Connection, side_index: int, columns: SegmentColumns | None = None) -> bool | None:
    """Do ``side``'s packets carry an initial TTL (sent by the capturing host)?  None: none seen."""
    if columns is not None:
        return _initial_ttl_of(columns, side_index)
    ttls = conn.rows["ttl"][conn.sender == side_index]
    if not len(ttls):
        return None
    values, counts = np.unique(ttls, return_counts=True)
    return int(values[np.argmax(counts)]) in INITIAL_TTLS


def _handshake_legs_of(cols: SegmentColumns) -> tuple[int | None, int | None]:
    """``handshake_legs`` over Python lists (a handshake is a few segments: numpy costs more than it saves)."""
    flags, ts, sender = cols.flags, cols.ts_ns, cols.sender
    n = len(flags)
    synacks = [i for i in range(n) if sender[i] == 1 and flags[i] & SYN and flags[i] & ACK]
    if not synacks:
        return None, None
    first_synack = synacks[0]
    if any(sender[i] == 1 and flags[i] & SYN for i in range(first_synack)):
        return None, None  # a simultaneous open: no SYN -> SYN-ACK round trip to measure
    # The SYN that SYN-ACK answers: the last client SYN before it (an earlier one may have been lost).
    syn = next(
        (i for i in range(first_synack - 1, -1, -1) if sender[i] == 0 and flags[i] & SYN and not flags[i] & ACK), None
    )
    server_leg = ts[first_synack] - ts[syn] if syn is not None else None
    expected = cols.seq[first_synack] + 1
    ack = cols.ack
    answered = next(
        (
            i
            for i in range(first_synack + 1, n)
            if sender[i] == 0 and flags[i] & ACK and not flags[i] & (SYN | RST) and ack[i] == expected
        ),
        None,
    )
    client_leg = None
    if answered is not None:
        # The SYN-ACK that ACK answers: the last one before it.
        last_synack = max(i for i in synacks if i < answered)
        client_leg = ts[answered] - ts[last_synack]
    return client_leg, server_leg


def _initial_ttl_of(cols: SegmentColumns, side_index: int) -> bool | None:
    counts: dict[int, int] = {}
    for ttl, side in zip(cols.ttl, cols.sender):
        if side == side_index:
            counts[ttl] = counts.get(ttl, 0) + 1
    if not counts:
        return None
    # The most common TTL; on a tie the lowest, as np.unique + argmax picks.
    top = max(counts.values())
    return min(v for v, c in counts.items() if c == top) in INITIAL_TTLS


def infer_vantage(conn: Connection, columns: SegmentColumns | None = None) -> tuple[Vantage, Legs]:
    client_leg, server_leg = handshake_legs(conn, columns)
    by_ttl = (initial_ttl(conn, 0, columns), initial_ttl(conn, 1, columns))
    measured = client_leg is not None and server_leg is not None
    if by_ttl == (False, False):
        vantage = Vantage.MIDDLE  # both sides' packets crossed a router before the capture point
    elif measured:
        vantage = _by_timing(client_leg, server_leg)
        # A host's own packets carry its initial TTL: forwarded ones rule that host out.
        if (vantage is Vantage.CLIENT and by_ttl[0] is False) or (vantage is Vantage.SERVER and by_ttl[1] is False):
            vantage = Vantage.UNKNOWN
    else:
        vantage = Vantage.UNKNOWN
    legs = Legs(client_leg or 0, server_leg or 0, measured)
    return vantage, legs


def _by_timing(client_leg: int, server_leg: int) -> Vantage:
    """One leg long and the other a small fraction of it: at the short leg's host.  Both long and
    comparable: in the middle.  A leg within the noise cannot be called comparable to anything."""
    if max(client_leg, server_leg) < TIMING_NOISE:
        return Vantage.UNKNOWN
    if client_leg <= NEAR_RATIO * server_leg:
        return Vantage.CLIENT
    if server_leg <= NEAR_RATIO * client_leg:
        return Vantage.SERVER
    if min(client_leg, server_leg) < TIMING_NOISE:
        return Vantage.UNKNOWN
    return Vantage.MIDDLE
