"""The end of a TIME-WAIT that only the next incarnation can tell: its SYN on the same 4-tuple.

One replay sees one connection.  When a SYN reopens the tuple while the previous incarnation's
endpoint still holds TIME-WAIT, that SYN ends it: RFC 9293 §3.6.1 (and RFC 1122 §4.2.2.13) let an
endpoint in TIME-WAIT accept a new SYN, RFC 6191 with timestamps; an endpoint reopening the tuple
itself (Linux tcp_tw_reuse) drops its TIME-WAIT the same way.  Likewise a SYN from an endpoint
the previous incarnation still held synchronized ends a half-open connection (§3.5.2 Figure 10).
The caller that sees the incarnations in order (analysis) applies it to the previous replay.
"""

from __future__ import annotations

from typing import NamedTuple

from ..connections import Connection
from ..segments import ACK, RST, SYN, Side
from ..timestamps import second
from .model import Close, Replay, State, TimeWait, Transition

RFC_NEW_INCARNATION = "RFC 9293 §3.6.1; RFC 6191"
RFC_HALF_OPEN = "RFC 9293 §3.5.2"
HALF_OPEN_STATES = frozenset({State.ESTABLISHED, State.CLOSE_WAIT, State.FIN_WAIT_1, State.FIN_WAIT_2})


def end_time_wait_by_new_incarnation(previous: Replay, new_connection: Connection) -> bool:
    """End ``previous``'s TIME-WAIT at ``new_connection``'s first SYN, if it was still held then.

    Updates ``previous`` in place (transition TIME-WAIT -> CLOSED, final state, ``time_wait``
    ended_by "new-syn"); returns whether anything changed.
    """
    syn = _first_syn(new_connection)
    if syn is None:
        return False
    changed = False
    waits: list[TimeWait] = []
    for tw in previous.time_waits:
        if tw.entered_time <= syn.time and (tw.ended_time is None or tw.ended_time > syn.time):
            if tw.ended_by == "expired":
                # It would have expired later: that expiry never happened.
                previous.transitions[:] = [
                    t
                    for t in previous.transitions
                    if not (t.endpoint is tw.endpoint and t.from_state is State.TIME_WAIT and t.time == tw.ended_time)
                ]
            previous.transitions.append(
                Transition(
                    syn.time,
                    syn.frame,
                    tw.endpoint,
                    State.TIME_WAIT,
                    State.CLOSED,
                    "new incarnation's SYN on the same 4-tuple",
                    RFC_NEW_INCARNATION,
                )
            )
            previous.final_state[tw.endpoint] = State.CLOSED
            tw = TimeWait(tw.endpoint, tw.entered_time, tw.entered_frame, tw.duration, syn.time, "new-syn", tw.restarted_time)
            changed = True
        waits.append(tw)
    if changed:
        previous.time_waits = waits
        previous.time_wait = waits[0] if waits else None
    return end_half_open_by_new_incarnation(previous, new_connection, syn) or changed


def end_half_open_by_new_incarnation(previous: Replay, new_connection: Connection, syn: "_Syn | None" = None) -> bool:
    """§3.5.2 Figure 10: the previous incarnation was half-open when the new one's SYN came.

    The endpoint sending a SYN while the previous incarnation still held it synchronized (neither
    FIN exchange nor RST ended it) had lost that connection: a crash or reboot.  Its peer, still
    synchronized, answers the SYN with a challenge ACK (RFC 5961 §4) carrying its old SND.NXT and
    RCV.NXT; the SYN-SENT endpoint answers that with <SEQ=SEG.ACK><CTL=RST> (§3.10.7.3), which
    resets the peer's old connection.  Both land in the new incarnation's rows, so only here can
    the previous replay learn its end.  Updates ``previous`` in place; returns whether it changed.
    ``syn``: the new incarnation's first SYN, when the caller found it already.
    """
    syn = syn or _first_syn(new_connection)
    if syn is None:
        return False
    opener = syn.sender
    if previous.final_state.get(opener) not in HALF_OPEN_STATES:
        return False
    previous.transitions.append(
        Transition(
            syn.time, syn.frame, opener, previous.final_state[opener], State.CLOSED,
            "no longer held the connection: opened the tuple anew (half-open)", RFC_HALF_OPEN,
        )
    )
    previous.final_state[opener] = State.CLOSED
    peer = opener.peer
    if previous.final_state.get(peer) in HALF_OPEN_STATES:
        rst = _half_open_reset(new_connection, opener)
        if rst is not None:
            previous.transitions.append(
                Transition(
                    rst.time, rst.frame, peer, previous.final_state[peer], State.CLOSED,
                    "received RST answering its challenge ACK (half-open recovery)", RFC_HALF_OPEN,
                )
            )
            previous.final_state[peer] = State.CLOSED
            if previous.close is Close.OPEN:
                previous.close = Close.ABORTIVE
    return True


class _Syn(NamedTuple):
    time: float
    frame: int
    sender: Side


def first_syn_row(conn: Connection) -> int | None:
    """Row of the connection's first SYN without ACK: the one that ends the previous incarnation."""
    return next((i for i, f in enumerate(conn.rows["flags"].tolist()) if f & SYN and not f & ACK), None)


def _first_syn(conn: Connection) -> _Syn | None:
    """Time, frame and sender of the connection's first SYN without ACK (as its Segment has them:
    only these are read, and making the Segment costs more than the rest of the work here)."""
    rows = conn.rows
    at = first_syn_row(conn)
    if at is None:
        return None
    sender = Side.CLIENT if int(conn.sender[at]) == 0 else Side.SERVER
    return _Syn(second(rows["ts_ns"][at]), int(rows["frame"][at]), sender)


def _half_open_reset(new_connection: Connection, opener: Side):
    """The opener's RST answering its peer's challenge ACK (same number as that ACK), if captured.

    The challenge ACK is the peer's ACK without SYN sent before any SYN-ACK of the new incarnation.
    """
    flags = new_connection.rows["flags"].tolist()
    raw_seq, raw_ack = new_connection.rows["seq"].tolist(), new_connection.rows["ack"].tolist()
    sender = new_connection.sender.tolist()
    own = 0 if opener is Side.CLIENT else 1
    challenge = None
    for i, f in enumerate(flags):
        if sender[i] != own:
            if f & SYN:
                return None  # the peer answered the SYN itself: no challenge to answer
            if challenge is None and f & ACK and not f & RST:
                challenge = raw_ack[i]
        elif challenge is not None and f & RST and raw_seq[i] == challenge:
            return next(new_connection.segments([i]))
    return None
