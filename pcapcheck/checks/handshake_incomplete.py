"""handshake-incomplete: a SYN that never became a connection, and was not refused either.

RFC 9293 §3.5: the three-way handshake completes when the SYN-ACK is acknowledged.  No reply at
all (filtered port, dead host) or a SYN-ACK never acknowledged is worth a warning; a RST is
connection-refused instead.  Not when the capture ended within one retransmission timeout of the
last SYN or SYN-ACK sent (the handshake may still have been under way: that transmission could
still be answered before the next one, as a retransmission after one lost SYN usually is), the
timeout being ``rto_initial`` or, once the sender has retransmitted, its last retransmission
interval (RFC 6298 §5.5 never shortens it).  Once two timeouts in a row expired unanswered (the
last transmission is the second retransmission or later) the handshake has failed whatever that
last try brings.  Not for a connection picked up mid-stream either.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import Close, State
from ..segments import SYN
from .context import CheckContext, started_midstream

RULE = "handshake-incomplete"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    if not steps or started_midstream(ctx.connection, ctx.replay):
        return
    # The opening SYN; merged taps may capture its SYN-ACK first (context.opened_in_capture).
    syn = next((s.segment for s in steps if s.segment.syn and not s.segment.has_ack), None)
    if syn is None:
        return  # began with a SYN-ACK: the client's SYN was not captured
    if ctx.replay.close is not Close.INCOMPLETE and ctx.replay.close is not Close.OPEN:
        return
    if any(s.segment.rst for s in steps):
        return
    if any(t.to_state is State.ESTABLISHED for t in ctx.replay.transitions):
        return
    if any(s.segment.sender is syn.sender and not s.segment.syn and s.segment.has_ack for s in steps):
        return  # the SYN's sender acknowledged something: it got past SYN-SENT
    if ctx.capture_end is None:
        return
    under_way_until = _still_under_way_until(steps, ctx.params["rto_initial"])
    if under_way_until is not None and ctx.capture_end <= under_way_until:
        return
    answered = any(s.segment.syn and s.segment.has_ack for s in steps)
    what = "its SYN-ACK was never acknowledged" if answered else "no SYN-ACK or RST came back"
    yield ctx.finding(
        syn,
        None,
        f"{ctx.who(syn.sender)} sent SYN (frame {syn.frame}) but the handshake never completed: {what}",
    )


def _still_under_way_until(steps, rto_initial: float) -> float | None:
    """The last SYN or SYN-ACK transmission plus the timeout its sender would wait before the next;
    None when two timeouts had already expired in a row without an answer."""
    sent = [s.segment for s in steps if s.segment.syn]
    last = sent[-1]
    before = [seg.time for seg in sent[:-1] if seg.sender is last.sender and seg.has_ack == last.has_ack]
    if len(before) >= 2:
        return None
    rto = max(rto_initial, last.time - before[-1]) if before else rto_initial
    return last.time + rto
