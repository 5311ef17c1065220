"""fin-ack-mismatch: an ACK claiming more than the peer ever sent, past the peer's FIN.

The FIN is the last sequence number of its sender (RFC 9293 §3.4), so no acknowledgement can
exceed FIN + 1 (RFC 9293 §3.10.7.4: "If the ACK acks something not yet sent (SEG.ACK > SND.NXT)
then send an ACK, drop the segment").  Compared with the highest sequence number the peer had
sent so far (which covers data sent after a FIN, another rule's business).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_DUPLICATE
from ..segments import ACK, FIN, RST, SYN, Side
from .context import CheckContext, fin_number

RULE = "fin-ack-mismatch"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    fin_of: dict[Side, int] = {}
    sent_end: dict[Side, int] = {}
    for step in ctx.steps:
        seg = step.segment
        side = seg.sender
        flags = seg.flags  # bit tests, not properties: this loop runs over every segment
        if not flags & RST:
            end = seg.end_seq
            sent_end[side] = max(sent_end.get(side, end), end)
        if flags & FIN and side not in fin_of:
            fin_of[side] = fin_number(seg)
        if not fin_of or not flags & ACK or flags & RST:
            continue
        # A SYN-ACK's ack answers the SYN (synack-bad-ack's business), and a copy of an earlier
        # segment (a second tap's) was judged where it was first seen.
        if flags & SYN or NOTE_DUPLICATE in step.notes:
            continue
        peer = side.peer
        if peer in fin_of and seg.ack > max(fin_of[peer] + 1, sent_end[peer]):
            yield ctx.finding(
                seg,
                side,
                f"{ctx.who(side)} acknowledged {seg.rel_ack} (frame {seg.frame}), beyond the peer's FIN at "
                f"{fin_of[peer] - (seg.ack - seg.rel_ack)}: it claims data that was never sent",
            )
            return
