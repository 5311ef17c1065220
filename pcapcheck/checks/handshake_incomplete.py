"""handshake-incomplete: a SYN that never became a connection, and was not refused either.

RFC 9293 §3.5: the three-way handshake completes when the SYN-ACK is acknowledged.  No reply at
all (filtered port, dead host) or a SYN-ACK never acknowledged is worth a warning; a RST is
connection-refused instead.  Not when the capture ended within ``rto_initial`` of the first
SYN (the handshake may still have been under way), nor for a connection
picked up mid-stream.
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
    syn = steps[0].segment
    if syn.has_ack:
        return  # began with a SYN-ACK: the client's SYN was not captured
    if ctx.replay.close is not Close.INCOMPLETE and ctx.replay.close is not Close.OPEN:
        return
    if any(s.segment.rst for s in steps):
        return
    if any(t.to_state is State.ESTABLISHED for t in ctx.replay.transitions):
        return
    if any(s.segment.sender is syn.sender and not s.segment.syn and s.segment.has_ack for s in steps):
        return  # the SYN's sender acknowledged something: it got past SYN-SENT
    if ctx.capture_end is None or ctx.capture_end - syn.time <= ctx.params["rto_initial"]:
        return
    answered = any(s.segment.syn and s.segment.has_ack for s in steps)
    what = "its SYN-ACK was never acknowledged" if answered else "no SYN-ACK or RST came back"
    yield ctx.finding(
        syn,
        None,
        f"{ctx.who(syn.sender)} sent SYN (frame {syn.frame}) but the handshake never completed: {what}",
    )
