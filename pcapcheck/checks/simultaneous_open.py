"""simultaneous-open: both endpoints sent a SYN before receiving the other's (RFC 9293 §3.5, figure 7).

Legal and rare; noted because the endpoints' roles are then a matter of convention.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import ACK, SYN
from .context import CheckContext

RULE = "simultaneous-open"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    syns = [s.segment for s in ctx.steps if s.segment.flags & (SYN | ACK) == SYN]
    if not syns:
        return
    second = next((syn for syn in syns if syn.sender is not syns[0].sender), None)
    if second is None:
        return
    yield ctx.finding(
        second,
        None,
        f"simultaneous open: both endpoints sent SYN (frames {syns[0].frame} and {second.frame})",
    )
