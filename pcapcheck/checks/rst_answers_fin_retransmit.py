"""rst-answers-fin-retransmit: the active closer answers the peer's retransmitted FIN with RST.

The closer acknowledged the peer's FIN and entered TIME-WAIT; that final ACK was lost, so the peer
retransmitted its FIN.  RFC 9293 §3.10.7.4: in TIME-WAIT "the only thing that can arrive in this
state is a retransmission of the remote FIN. Acknowledge it, and restart the 2 MSL timeout."
A RST instead proves the endpoint no longer held TIME-WAIT (RFC 9293 §3.6.1): the peer's close
fails.  Not when the answer came after ``time_wait`` (TIME-WAIT had legitimately expired).

The final ACK need not be in the capture: a retransmitted FIN whose first transmission the capture
holds, sent after the closer's own FIN, is reported too (the RST then answers no *first* FIN, so
rst-instead-of-final-ack stands down), timed from that first transmission.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RETRANSMISSION, State
from ..segments import FIN, RST, Side
from .context import CheckContext, acknowledges, earlier_fin_transmission, fin_number, seconds

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
        answered_at = next((k for k in range(i - 1, -1, -1) if steps[k].segment.sender is closer.peer), None)
        if answered_at is None:
            continue
        answered = steps[answered_at]
        if not answered.segment.fin or not answered.delivered:
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
        if final_ack is not None:
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
        # No final ACK captured, but the capture holds an earlier transmission of this FIN: the
        # closer was sent it before, so its final ACK may have gone out unseen (a capture that lost
        # it, or taken where it was lost); the retransmission proves the peer never got one.  Only
        # when our own FIN preceded that first transmission (we were the active closer, bound for
        # TIME-WAIT) - otherwise neither close rule applies.
        first = earlier_fin_transmission(steps, answered_at)
        if first is None or not _closed_before(ctx, closer, first):
            continue  # a first FIN answered by RST: rst-instead-of-final-ack
        # The final ACK, if any, followed the first transmission: TIME-WAIT lasted at most this long.
        held_at_most = rst.time - steps[first].segment.time
        if held_at_most >= ctx.params["time_wait"]:
            continue  # TIME-WAIT may have legitimately expired
        yield ctx.finding(
            rst,
            closer,
            f"{ctx.who(closer)} answered the peer's retransmitted FIN (frame {fin.frame}, first sent in "
            f"frame {steps[first].segment.frame}) with RST (frame {rst.frame}) "
            f"{seconds(held_at_most)} after that first FIN; its final ACK was not captured: "
            f"it no longer held TIME-WAIT state",
        )
        return


def _closed_before(ctx: CheckContext, closer: Side, end: int) -> bool:
    """Had ``closer`` sent its FIN before steps[end]?  A captured FIN, or the replay's move into
    FIN-WAIT-1 (sending FIN is the only way in, RFC 9293 §3.10.4), which also covers a FIN the
    capture lost but the peer acknowledged."""
    steps = ctx.steps
    if any(s.segment.sender is closer and s.segment.fin for s in steps[:end]):
        return True
    frames = {s.segment.frame for s in steps[:end]}
    return any(
        t.endpoint is closer and t.to_state is State.FIN_WAIT_1 and t.frame in frames
        for t in ctx.replay.transitions
    )
