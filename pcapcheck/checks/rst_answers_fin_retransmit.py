"""rst-answers-fin-retransmit: the active closer answers the peer's retransmitted FIN with RST.

The closer acknowledged the peer's FIN and entered TIME-WAIT; that final ACK was lost, so the peer
retransmitted its FIN.  RFC 9293 §3.10.7.4: in TIME-WAIT "the only thing that can arrive in this
state is a retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
A RST instead proves the endpoint no longer held TIME-WAIT (RFC 9293 §3.6.1): the peer's close
fails.  Not when the answer came after ``time_wait`` (TIME-WAIT had legitimately expired).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RETRANSMISSION
from ..segments import FIN, RST
from .context import CheckContext, acknowledges, fin_number, seconds

RULE = "rst-answers-fin-retransmit"
# It can only find something in a connection with a FIN and a RST: run_checks skips the others.
NEEDS = FIN | RST


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    for i, step in enumerate(steps):
        rst = step.segment
        if not rst.rst:
            continue
        closer = rst.sender
        answered = next((s for s in reversed(steps[:i]) if s.segment.sender is closer.peer), None)
        if answered is None or not answered.segment.fin or not answered.delivered:
            continue
        fin = answered.segment
        if NOTE_RETRANSMISSION not in answered.notes:
            continue
        final_ack = next(
            (
                s.segment
                for s in steps[:i]
                if s.segment.sender is closer and acknowledges(s.segment, fin_number(fin) + 1)
            ),
            None,
        )
        if final_ack is None:
            continue  # never acknowledged: rst-instead-of-final-ack
        held = rst.time - final_ack.time
        if held >= ctx.params["time_wait"]:
            continue
        yield ctx.finding(
            rst,
            closer,
            f"{ctx.who(closer)} answered the peer's retransmitted FIN (frame {fin.frame}) with RST "
            f"(frame {rst.frame}) {seconds(held)} after its final ACK (frame {final_ack.frame}): "
            f"it no longer held TIME-WAIT state",
        )
        return
