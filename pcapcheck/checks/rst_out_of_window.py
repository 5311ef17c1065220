"""rst-out-of-window: a RST whose sequence number is outside the receiver's window.

RFC 9293 §3.10.7.4 / RFC 5961 §3.2: such a RST must be silently dropped; it does not close the
connection, and it is typical of a stale stack or of an off-path injection attempt.  Relies on the
replay's acceptability test (NOTE_RST_OUT_OF_WINDOW); silent where the receiver's window cannot be
known (mid-stream capture, SYN-SENT where only the ACK field counts, closed receivers).  In a
capture of one direction only, the unseen receiver's state stays unknown; the replay then marks only
a RST beyond any window that receiver could have had, and that is reported too.
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
        if not rst.rst or NOTE_RST_OUT_OF_WINDOW not in step.notes:
            continue
        receiver = rst.sender.peer
        if step.receiver_before in _WINDOWED:
            where = f"the {receiver.value}'s receive window ({step.receiver_before})"
        elif step.receiver_before is State.UNKNOWN and not ctx.seen_from_side(receiver):
            # One-direction capture: the receiver's state is unknown, but the replay judged the RST
            # beyond any window it could have had (RCV.NXT at most our SND.NXT, window at most
            # 65535 << 14, RFC 7323 §2.3), so it fails §3.10.7.4's test in every state.
            where = f"any receive window the {receiver.value} could have had (its direction was not captured)"
        else:
            continue
        yield ctx.finding(
            rst,
            rst.sender,
            f"{ctx.who(rst.sender)} sent RST (frame {rst.frame}) with sequence number {rst.rel_seq} "
            f"outside {where}: it is ignored",
        )
        return
