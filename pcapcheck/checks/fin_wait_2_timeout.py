"""fin-wait-2-timeout: an endpoint held FIN-WAIT-2 longer than its stack's FIN-WAIT-2 timer.

RFC 9293 §3.10.7.4 sets no limit on FIN-WAIT-2, but stacks do for orphaned sockets (Linux
tcp_fin_timeout, 60 s; RFC 9293 §3.6 notes the peer may never close).  The clock starts at the ACK
of the endpoint's FIN (FIN-WAIT-1 -> FIN-WAIT-2) and restarts when the peer still sends data
(half-close in use: the socket is being read, not orphaned).  It fires only on evidence the state
was still held after ``fin_wait_2``: the endpoint sent something other than RST after that time
(typically the ACK of the peer's late FIN).  Silence proves nothing: the stack may have dropped
the state without a word, as Linux does.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import FIN, RST, Side
from .context import CheckContext, acknowledges, fin_number, seconds

RULE = "fin-wait-2-timeout"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    limit = ctx.params["fin_wait_2"]
    for holder in (Side.CLIENT, Side.SERVER):
        peer = holder.peer
        fin_at = next((k for k, s in enumerate(steps) if s.segment.sender is holder and s.segment.flags & FIN), None)
        if fin_at is None:
            continue
        if any(s.segment.sender is peer and s.segment.flags & (FIN | RST) for s in steps[:fin_at]):
            continue  # the peer closed first: the holder went to LAST-ACK, not FIN-WAIT-2
        fin_end = fin_number(steps[fin_at].segment) + 1
        entry = None
        for k in range(fin_at + 1, len(steps)):
            seg = steps[k].segment
            if seg.sender is peer and (seg.fin or seg.rst):
                break  # CLOSING / TIME-WAIT / reset, never FIN-WAIT-2
            if seg.sender is peer and acknowledges(seg, fin_end):
                entry = k
                break
        if entry is None:
            continue
        since = steps[entry].segment.time
        for later in steps[entry + 1 :]:
            seg = later.segment
            if seg.rst:
                break
            if seg.sender is peer:
                if seg.length > 0 and not seg.fin:
                    since = seg.time
                if not seg.fin:
                    continue
            if seg.sender is peer and seg.fin and seg.time - since <= limit:
                break  # the peer closed in time
            if seg.sender is holder and seg.time - since > limit:
                ack = steps[entry].segment
                yield ctx.finding(
                    ack,
                    holder,
                    f"{ctx.who(holder)} entered FIN-WAIT-2 at frame {ack.frame} (its FIN acknowledged) and "
                    f"still held it {seconds(seg.time - since)} later (frame {seg.frame}), beyond the "
                    f"{ctx.profile.name} profile's {seconds(limit)}",
                )
                break
