"""time-wait-assassination: a RST that ended the peer's TIME-WAIT early (RFC 1337).

RFC 1337 §2 describes the hazard ("TIME-WAIT Assassination"): an accepted RST cuts TIME-WAIT short
and old duplicates may then corrupt a new incarnation; RFC 1337 §3 suggests ignoring RST in
TIME-WAIT.  Informational: the RST sender is named; only a RST the replay says reached an endpoint
in TIME-WAIT (or that the replay says ended it) counts.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RST_OUT_OF_WINDOW, State
from ..segments import RST
from .context import CheckContext

RULE = "time-wait-assassination"
# It can only find something in a connection with a RST: run_checks skips the others.
NEEDS = RST


def check(ctx: CheckContext) -> Iterator[Finding]:
    tw = ctx.replay.time_wait
    for step in ctx.steps:
        rst = step.segment
        if not rst.rst or not step.delivered or NOTE_RST_OUT_OF_WINDOW in step.notes:
            continue
        in_time_wait = step.receiver_before is State.TIME_WAIT
        ended_it = (
            tw is not None
            and tw.ended_by == "rst"
            and rst.sender is tw.endpoint.peer
            and rst.time >= tw.entered_time
            and (tw.ended_time is None or abs(rst.time - tw.ended_time) < 1e-6)
        )
        if in_time_wait or ended_it:
            yield ctx.finding(
                rst,
                rst.sender,
                f"{ctx.who(rst.sender)} sent RST (frame {rst.frame}) that ended the "
                f"{rst.sender.peer.value}'s TIME-WAIT early (RFC 1337 hazard)",
            )
            return
