"""The end of a TIME-WAIT that only the next incarnation can tell: its SYN on the same 4-tuple.

One replay sees one connection.  When a SYN reopens the tuple while the previous incarnation's
endpoint still holds TIME-WAIT, that SYN ends it: RFC 9293 §3.6.1 (and RFC 1122 §4.2.2.13) let an
endpoint in TIME-WAIT accept a new SYN, RFC 6191 with timestamps; an endpoint reopening the tuple
itself (Linux tcp_tw_reuse) drops its TIME-WAIT the same way.  The caller that sees the
incarnations in order (analysis) applies it to the previous replay.
"""

from __future__ import annotations

from dataclasses import replace

from ..connections import Connection
from ..segments import ACK, SYN
from .model import Replay, State, TimeWait, Transition

RFC_NEW_INCARNATION = "RFC 9293 §3.6.1; RFC 6191"


def end_time_wait_by_new_incarnation(previous: Replay, new_connection: Connection) -> bool:
    """End ``previous``'s TIME-WAIT at ``new_connection``'s first SYN, if it was still held then.

    Updates ``previous`` in place (transition TIME-WAIT -> CLOSED, final state, ``time_wait``
    ended_by "new-syn"); returns whether anything changed.
    """
    # Only the first SYN is needed: find its row in the flags column, build that one Segment.
    at = next((i for i, f in enumerate(new_connection.rows["flags"].tolist()) if f & SYN and not f & ACK), None)
    if at is None:
        return False
    syn = next(new_connection.segments([at]))
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
            tw = replace(tw, ended_time=syn.time, ended_by="new-syn")
            changed = True
        waits.append(tw)
    if changed:
        previous.time_waits = waits
        previous.time_wait = waits[0] if waits else None
    return changed
