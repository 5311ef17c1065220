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
    yield ctx.finding(
        first,
        None,
        f"the capture starts in the middle of this connection (first frame {first.frame}, {first.flag_text}, "
        f"no SYN seen): its opening is unknown",
        capture_quality=True,
    )
