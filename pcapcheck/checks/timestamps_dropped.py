"""timestamps-dropped: a segment without timestamps after both SYNs negotiated them.

RFC 7323 §3.2: "Once TSopt has been successfully negotiated, that is both <SYN> and <SYN,ACK>
contain TSopt, the TSopt MUST be sent in every non-<RST> segment for the duration of the
connection."  Truncated segments are skipped (the options may have been cut by the snap length).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import RST, SYN, Side
from .context import CheckContext

RULE = "timestamps-dropped"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    syn = next((s.segment for s in ctx.steps if s.segment.syn and not s.segment.has_ack), None)
    synack = next((s.segment for s in ctx.steps if s.segment.syn and s.segment.has_ack), None)
    if syn is None or synack is None or syn.ts_val is None or synack.ts_val is None:
        return
    reported: set[Side] = set()
    for step in ctx.steps:
        seg = step.segment
        if seg.flags & (SYN | RST) or seg.truncated or seg.ts_val is not None or seg.sender in reported:
            continue
        reported.add(seg.sender)
        yield ctx.finding(
            seg,
            seg.sender,
            f"{ctx.who(seg.sender)} sent frame {seg.frame} without timestamps although both SYNs "
            f"(frames {syn.frame}, {synack.frame}) negotiated them",
        )
