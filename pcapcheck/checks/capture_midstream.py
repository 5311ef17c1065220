"""capture-midstream: the capture starts after the connection did (no SYN seen).

A capture-quality note, never a fault: states before the first frame are unknown, so the rules
that need the handshake stay silent on this connection.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from .context import CheckContext, started_midstream

RULE = "capture-midstream"


def check(ctx: CheckContext) -> Iterator[Finding]:
    if not ctx.steps or not started_midstream(ctx.connection, ctx.replay):
        return
    first = ctx.steps[0].segment
    later_syn = next((s.segment for s in ctx.steps if s.segment.syn and not s.segment.has_ack), None)
    if first.syn and first.has_ack:
        seen = f"its first captured segment is the SYN-ACK (frame {first.frame})"
        syn = "the SYN it answers was not captured"
    else:
        seen = f"first frame {first.frame}, {first.flag_text}"
        syn = "no SYN seen"
    if later_syn is not None:
        syn = f"the first SYN captured is frame {later_syn.frame}, later"
    yield ctx.finding(
        first,
        None,
        f"the capture starts in the middle of this connection ({seen}; {syn}): its opening is unknown",
        capture_quality=True,
    )
