"""missing-fin-retransmit: a FIN nobody acknowledged, never retransmitted.

A FIN occupies sequence space and is retransmitted like data until acknowledged (RFC 9293 §3.4,
§3.10.4 CLOSE "queue this until all preceding SENDs have been segmentized, then form a FIN
segment"; retransmission timeout per RFC 6298 §2: initial RTO 1 s, §5.5 backing off).  The check
waits ``margin`` × max(``rto_initial``, 3 × handshake RTT, 2 × the sender's longest retransmission
gap up to the FIN) after the FIN (RTO = SRTT + 4·RTTVAR is 3·RTT after the first sample, RFC 6298
§2.2; a sender already backing off doubles its last timeout, §5.5) and fires only when, within
that time, the sender sent nothing at or below its FIN's sequence number, no acknowledgement (in
any capture order: the replay may receive an ACK captured just before its FIN) or RST came back,
and the capture went on past that time.

It needs positive evidence that the FIN went unacknowledged: the capture was taken at the FIN
sender's host, or the peer still acknowledged below the FIN a round trip after it.  A capture that
merely lost the ACK proves nothing.  It stays silent when the capture was taken at the peer's host
(the retransmissions may have been lost before reaching it) or the peer's direction is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import Step
from ..segments import FIN, Segment, Side
from .context import CheckContext, acknowledges, fin_number, first_fin_index, handshake_rtt, seconds

RULE = "missing-fin-retransmit"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    for side in (Side.CLIENT, Side.SERVER):
        at = first_fin_index(steps, side)
        if at is None:
            continue
        fin = steps[at].segment
        fin_end = fin_number(fin) + 1
        if _acknowledged(steps, side, fin_end) or _reset_after(steps, at, side):
            continue  # the usual case, decided cheaply
        if ctx.captured_at(side.peer) or not ctx.seen_from_side(side.peer):
            continue
        rtt = handshake_rtt(steps) or 0.0
        # Positive evidence that the FIN sender was left unacknowledged: the capture was taken at
        # its host (an ACK reaching it would have been seen), or the peer went on acknowledging
        # below the FIN after the FIN had had a round trip to arrive.  Silence proves nothing: the
        # capture may simply have lost the ACK.
        if not (ctx.captured_at(side) or _peer_acked_below(steps, side, fin, fin_end, rtt)):
            continue
        # RFC 6298 §5.5: each expiry doubles the RTO, so a sender already backing off waits twice
        # its longest retransmission gap before the next one.
        rto = max(ctx.params["rto_initial"], 3 * rtt, 2 * _longest_retransmission_gap(steps[: at + 1], side))
        wait = ctx.params["margin"] * rto
        deadline = fin.time + wait
        if not ctx.captured_until(deadline):
            continue
        if any(
            s.segment.sender is side and s.segment.time <= deadline and (s.segment.rst or s.segment.seq < fin_end)
            for s in steps[at + 1 :]
        ):
            continue  # retransmitted (the FIN or data before it) or reset in time
        yield ctx.finding(
            fin,
            side,
            f"{ctx.who(side)} sent FIN (frame {fin.frame}) that was never acknowledged and did not "
            f"retransmit it within {seconds(wait)} while the capture went on",
        )


# Capture order may put a segment up to this long before the one it answers (two taps merged,
# reordering between the capture point and the stack); the replay's timeline allows the same.
_REORDER = 0.001


def _acknowledged(steps: list[Step], side: Side, fin_end: int) -> bool:
    """Did a delivered ACK of the FIN reach ``side``?  Anywhere in the capture: an ACK of FIN + 1 can
    only have been sent after the FIN, whatever order the capture shows them in."""
    return any(s.segment.sender is side.peer and s.delivered and acknowledges(s.segment, fin_end) for s in steps)


def _reset_after(steps: list[Step], at: int, side: Side) -> bool:
    fin_time = steps[at].segment.time
    return any(
        s.segment.sender is side.peer and s.segment.rst and (k > at or s.segment.time >= fin_time - _REORDER)
        for k, s in enumerate(steps)
    )


def _peer_acked_below(steps: list[Step], side: Side, fin: Segment, fin_end: int, rtt: float) -> bool:
    """Did the peer, a round trip after the FIN, still send an ACK that does not cover it?"""
    after = fin.time + max(rtt, _REORDER)
    return any(
        s.segment.sender is side.peer and s.segment.has_ack and not s.segment.rst
        and s.segment.time > after and s.segment.ack < fin_end
        for s in steps
    )


def _longest_retransmission_gap(steps: list[Step], side: Side) -> float:
    """The longest time between two transmissions starting at the same sequence number by ``side``
    (a retransmission resends from the first unacknowledged byte, RFC 6298 §5.4)."""
    last_sent: dict[int, float] = {}  # first sequence number -> time of its latest transmission
    longest = 0.0
    for s in steps:
        seg = s.segment
        if seg.sender is not side or not (seg.length or seg.syn or seg.fin):
            continue  # a bare ACK occupies no sequence space
        previous = last_sent.get(seg.seq)
        if previous is not None:
            longest = max(longest, seg.time - previous)
        last_sent[seg.seq] = seg.time
    return longest
