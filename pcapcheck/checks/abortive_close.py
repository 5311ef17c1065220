"""abortive-close: an established connection torn down by RST from a side that never sent FIN.

RFC 9293 §3.10.4 (ABORT) allows it, but it discards data in flight both ways; usually the cause is
SO_LINGER {on, 0} or closing a socket with unread received data (RFC 1122 §4.2.2.13).
Not on a refused or never-established connection, nor for a RST the receiver would not accept
(out of window), nor when the sender's state is unknown: in a mid-stream capture only if the
sender sent data in it, which proves it had not sent FIN before the capture began.

Also a RST from a side that had sent FIN when the peer's new data arrived after that FIN: RFC 1122
§4.2.2.13 "abort on data" ("if new data is received after CLOSE is called, its TCP SHOULD send a
RST to show that data was lost").  Correct TCP, so not rst-instead-of-final-ack, but the peer's data
was thrown away: the same warning as any other abort.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RST_OUT_OF_WINDOW, State
from ..segments import FIN, RST
from .context import CheckContext, data_after_close, sent_data_before, started_midstream

RULE = "abortive-close"
# It can only find something in a connection with a RST: run_checks skips the others.
NEEDS = RST

_OPEN_STATES = (State.ESTABLISHED, State.CLOSE_WAIT)


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    fins = ctx.steps_with(FIN)
    midstream = None
    for i in ctx.steps_with(RST):
        step = steps[i]
        rst = step.segment
        if NOTE_RST_OUT_OF_WINDOW in step.notes:
            continue
        fin_at = next((k for k in fins if k < i and steps[k].segment.sender is rst.sender), None)
        if fin_at is not None:
            data = data_after_close(ctx.steps, rst.sender, fin_at, i)
            if data is not None:
                yield ctx.finding(
                    rst,
                    rst.sender,
                    f"{ctx.who(rst.sender)} had closed (FIN, frame {ctx.steps[fin_at].segment.frame}) and reset the "
                    f"connection (RST, frame {rst.frame}) when the peer's data arrived after it (frame "
                    f"{data.segment.frame}): abort on data, that data was discarded",
                    rfc="RFC 1122 §4.2.2.13",
                )
                return
            continue
        if step.sender_before not in _OPEN_STATES:
            continue
        if midstream is None:
            midstream = started_midstream(ctx.connection, ctx.replay)
        if midstream and not sent_data_before(ctx.steps, rst.sender, i):
            continue  # it may have sent its FIN before the capture began
        state = "CLOSE-WAIT" if step.sender_before is State.CLOSE_WAIT else "ESTABLISHED"
        yield ctx.finding(
            rst,
            rst.sender,
            f"{ctx.who(rst.sender)} aborted the connection with RST (frame {rst.frame}) in {state} "
            f"without sending FIN",
        )
        return
