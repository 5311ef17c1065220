"""rst-out-of-window: a RST whose sequence number is outside the receiver's window.

RFC 9293 §3.10.7.4 / RFC 5961 §3.2: such a RST must be silently dropped; it does not close the
connection, and it is typical of a stale stack or of an off-path injection attempt.  Relies on the
replay's acceptability test (NOTE_RST_OUT_OF_WINDOW); silent where the receiver's window cannot be
known (mid-stream capture, SYN-SENT where only the ACK field counts, closed receivers).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RST_OUT_OF_WINDOW, State
from ..segments import RST
from .context import CheckContext, started_midstream

RULE = "rst-out-of-window"
# It can only find something in a connection with a RST: run_checks skips the others.
NEEDS = RST

_WINDOWED = (
    State.SYN_RECEIVED,
    State.ESTABLISHED,
    State.FIN_WAIT_1,
    State.FIN_WAIT_2,
    State.CLOSE_WAIT,
    State.CLOSING,
    State.LAST_ACK,
    State.TIME_WAIT,
)


def check(ctx: CheckContext) -> Iterator[Finding]:
    if started_midstream(ctx.connection, ctx.replay):
        return
    for step in ctx.steps:
        rst = step.segment
        if rst.rst and NOTE_RST_OUT_OF_WINDOW in step.notes and step.receiver_before in _WINDOWED:
            yield ctx.finding(
                rst,
                rst.sender,
                f"{ctx.who(rst.sender)} sent RST (frame {rst.frame}) with sequence number {rst.rel_seq} "
                f"outside the {rst.sender.peer.value}'s receive window ({step.receiver_before}): it is ignored",
            )
            return
