"""connection-refused: the SYN was answered by RST (RFC 9293 §3.10.7.1, "If the state is CLOSED ...
a reset is sent in response to any incoming segment except another reset"; §3.5 figure 8)."""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import RST, SYN
from .context import CheckContext

RULE = "connection-refused"
# It can only find something in a connection with a RST and a SYN: run_checks skips the others.
NEEDS = RST | SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    syn_at = next((k for k, s in enumerate(steps) if s.segment.syn and not s.segment.has_ack), None)
    if syn_at is None:
        return
    opener = steps[syn_at].segment.sender
    for step in steps[syn_at + 1 :]:
        seg = step.segment
        if seg.sender is opener:
            continue
        if seg.syn:
            return  # the listener answered with a SYN-ACK: not refused
        if seg.rst:
            yield ctx.finding(
                seg,
                seg.sender,
                f"{ctx.who(seg.sender)} refused the connection: its RST (frame {seg.frame}) answered the "
                f"SYN (frame {steps[syn_at].segment.frame})",
            )
            return
