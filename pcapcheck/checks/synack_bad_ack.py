"""synack-bad-ack: a SYN-ACK that does not acknowledge the client's SYN (ack ≠ ISN + 1).

RFC 9293 §3.5 (figure 6): the SYN-ACK carries ACK = client ISN + 1.  Compared against every SYN
the client sent before it (an old duplicate SYN answered correctly is not the server's fault,
RFC 9293 §3.5 figure 9); silent when the client's SYN was not captured.

A SYN carrying data (TCP Fast Open, RFC 7413 §4.2) may be acknowledged either way: ISN + 1 when the
server declined the data, ISN + 1 + payload length when it accepted it (RFC 9293 §3.10.7.3 lets a
listener queue SYN data too).  Both are correct acknowledgements of that SYN.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import SYN, Side
from .context import CheckContext

RULE = "synack-bad-ack"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN

_MASK = 0xFFFFFFFF


def check(ctx: CheckContext) -> Iterator[Finding]:
    syn_ends: dict[Side, set[int]] = {Side.CLIENT: set(), Side.SERVER: set()}
    syn_isns: dict[Side, set[int]] = {Side.CLIENT: set(), Side.SERVER: set()}
    for step in ctx.steps:
        seg = step.segment
        if not seg.flags & SYN:
            continue  # only SYNs and SYN-ACKs matter here
        if not seg.has_ack:
            syn_isns[seg.sender].add(seg.seq & _MASK)
            syn_ends[seg.sender].add((seg.seq + 1) & _MASK)
            if seg.length:  # data on the SYN: accepting it is as correct as declining it
                syn_ends[seg.sender].add((seg.seq + 1 + seg.length) & _MASK)
            continue
        answered = syn_ends[seg.sender.peer]
        if answered and (seg.ack & _MASK) not in answered:
            isns = ", ".join(str(isn) for isn in sorted(syn_isns[seg.sender.peer]))
            yield ctx.finding(
                seg,
                seg.sender,
                f"{ctx.who(seg.sender)} sent a SYN-ACK (frame {seg.frame}) with ack {seg.ack & _MASK}, "
                f"which is not the {seg.sender.peer.value}'s ISN + 1 (ISN {isns})",
            )
            return
