"""missing-fin-retransmit: a FIN nobody acknowledged, never retransmitted.

A FIN occupies sequence space and is retransmitted like data until acknowledged (RFC 9293 §3.4,
§3.10.4 CLOSE "queue this until all preceding SENDs have been segmentized, then form a FIN
segment"; retransmission timeout per RFC 6298 §2: initial RTO 1 s, §5.5 backing off).  The check
waits ``margin`` × max(``rto_initial``, 3 × handshake RTT) after the FIN (RTO = SRTT + 4·RTTVAR is
3·RTT after the first sample, RFC 6298 §2.2) and fires only when, within that time, the sender
sent nothing at or below its FIN's sequence number, no acknowledgement or RST came back, and the
capture went on past that time.  It stays silent when the capture was taken at the peer's host
(the retransmissions may have been lost before reaching it) or the peer's direction is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import FIN, Side
from .context import CheckContext, acknowledges, fin_number, handshake_rtt, seconds

RULE = "missing-fin-retransmit"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    for side in (Side.CLIENT, Side.SERVER):
        at = next((k for k, s in enumerate(steps) if s.segment.sender is side and s.segment.fin), None)
        if at is None:
            continue
        fin = steps[at].segment
        fin_end = fin_number(fin) + 1
        later = steps[at + 1 :]
        if any(s.segment.sender is side.peer and (s.segment.rst or acknowledges(s.segment, fin_end)) for s in later):
            continue  # acknowledged (or reset) at some point: the usual case, decided cheaply
        if ctx.captured_at(side.peer) or not ctx.seen_from_side(side.peer):
            continue
        wait = ctx.params["margin"] * max(ctx.params["rto_initial"], 3 * (handshake_rtt(steps) or 0.0))
        deadline = fin.time + wait
        if not ctx.captured_until(deadline):
            continue
        if any(
            s.segment.sender is side and s.segment.time <= deadline and (s.segment.rst or s.segment.seq < fin_end)
            for s in later
        ):
            continue  # retransmitted (the FIN or data before it) or reset in time
        yield ctx.finding(
            fin,
            side,
            f"{ctx.who(side)} sent FIN (frame {fin.frame}) that was never acknowledged and did not "
            f"retransmit it within {seconds(wait)} while the capture went on",
        )
