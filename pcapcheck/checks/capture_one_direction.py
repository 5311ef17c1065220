"""capture-one-direction: only one direction of the connection is in the capture.

Typical of asymmetric routing or a capture filter on one direction.  Without the other direction
no state of that endpoint can be known, so this is a capture-quality note, never a fault.  A side
that only ever sent SYNs proves nothing (the peer may be silent); the note needs the captured
side to acknowledge something, or the replay to report the direction missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import Side
from .context import ONE_DIRECTION_KINDS, CheckContext, has_capture_quality_anomaly

RULE = "capture-one-direction"


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    if not steps:
        return
    first = steps[0].segment
    flagged = has_capture_quality_anomaly(ctx.replay, ONE_DIRECTION_KINDS)
    for silent in (Side.CLIENT, Side.SERVER):
        talker = silent.peer
        if any(s.segment.sender is silent for s in steps):
            continue
        if flagged or any(s.segment.has_ack for s in steps if s.segment.sender is talker):
            yield ctx.finding(
                first,
                None,
                f"only the {talker.value}'s direction was captured (first frame {first.frame}); "
                f"nothing the {silent.value} sent is in the capture",
                capture_quality=True,
            )
        return
