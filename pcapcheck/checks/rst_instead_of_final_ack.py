"""rst-instead-of-final-ack: the endpoint that closed first answers the peer's FIN with RST.

RFC 9293 §3.10.7.4 (eighth, "check the FIN bit"): in FIN-WAIT-2 a FIN is acknowledged and the
endpoint enters TIME-WAIT; in FIN-WAIT-1 it enters CLOSING and still acknowledges it.  Sending RST
instead throws away the peer's last data and leaves the peer without a graceful close.

Not this rule: the FIN was a retransmission of one the capture holds, whether or not the final ACK
for it was captured (rst-answers-fin-retransmit);
FIN-WAIT-2 lasted longer than fin-wait-2-timeout's fin_wait_2 timer, after which the socket is
legitimately gone and RST is the right answer for a closed port (fin-wait-2-timeout covers that); a
FIN the replay says never reached the endpoint; new data from the peer after our FIN, on the FIN
or before it: RFC 1122 §4.2.2.13 says a closed socket SHOULD answer data with RST, so the RST
answers the data (abortive-close reports it as a warning).

"Had closed" is the replay's transition into FIN-WAIT-1/LAST-ACK, so a FIN the capture lost but
the peer acknowledged still counts (the finding then names the acknowledging frame).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import State
from ..segments import FIN, RST
from .context import (
    CheckContext,
    acknowledges,
    data_after_close,
    earlier_fin_transmission,
    fin_number,
    first_fin_index,
)

RULE = "rst-instead-of-final-ack"
# It can only find something in a connection with a FIN and a RST: run_checks skips the others.
NEEDS = FIN | RST


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    at = {step.segment.frame: k for k, step in enumerate(steps)}
    # The replay's own account of each side's close, so a FIN the capture lost but the peer's ACK
    # proves (replay.facts.lost_fins) counts as sent: its transition sits at that ACK's frame.
    # Sending FIN is the only way into FIN-WAIT-1 and LAST-ACK (RFC 9293 §3.10.4 CLOSE).
    sent_fin = {
        t.endpoint: t for t in reversed(ctx.replay.transitions) if t.to_state in (State.FIN_WAIT_1, State.LAST_ACK)
    }
    fin_wait_2_at = {
        t.endpoint: t.time for t in reversed(ctx.replay.transitions) if t.to_state is State.FIN_WAIT_2
    }
    for i, step in enumerate(steps):
        rst = step.segment
        if not rst.rst:
            continue
        closer = rst.sender
        own = sent_fin.get(closer)
        # A captured FIN the replay could not place (sent from UNKNOWN after a mid-stream start)
        # still shows the close; the earlier of the two is when the closer had closed.
        captured = first_fin_index(steps, closer, end=i)
        candidates = [k for k in (None if own is None else at.get(own.frame), captured) if k is not None and k < i]
        if not candidates:
            continue
        own_at = min(candidates)
        # Captured FIN: steps[own_at] is it.  Capture-lost FIN: steps[own_at] is the peer's ACK
        # proving it, which may itself carry the peer's FIN, so the search below includes own_at.
        fin_captured = steps[own_at].segment.sender is closer
        # The peer's FIN this RST answers: the latest one delivered before it, after our own FIN.
        answered = next(
            (
                s
                for s in reversed(steps[own_at:i])
                if s.segment.sender is closer.peer and s.segment.fin and s.delivered
            ),
            None,
        )
        if answered is None:
            continue
        # A retransmission of a FIN the capture already holds: the final ACK may have been sent for
        # the first one and not captured, and the RST answers a FIN the closer had been sent before
        # (rst-answers-fin-retransmit reports it); this rule is about a first FIN.
        if earlier_fin_transmission(steps, at[answered.segment.frame]) is not None:
            continue
        peer_fin_end = fin_number(answered.segment) + 1
        between = steps[own_at:i]
        if any(s.segment.sender is closer and acknowledges(s.segment, peer_fin_end) for s in between):
            continue  # the final ACK was sent: a later RST is another rule's business
        fin_wait_2_entry = fin_wait_2_at.get(closer)
        if fin_wait_2_entry is None and fin_captured:
            # No replay state to go by (a mid-stream start): the peer's ACK of our FIN is the entry.
            fin_wait_2_entry = next(
                (
                    s.segment.time
                    for s in between
                    if s.segment.sender is closer.peer
                    and acknowledges(s.segment, fin_number(steps[own_at].segment) + 1)
                ),
                None,
            )
        # The same timer fin-wait-2-timeout judges by (a user's override of it holds here too).
        fin_wait_2 = ctx.param_of("fin-wait-2-timeout", "fin_wait_2")
        if fin_wait_2_entry is not None and answered.segment.time - fin_wait_2_entry > fin_wait_2:
            continue  # the FIN-WAIT-2 timer had run out: the socket was gone, RST is correct
        # A capture-lost FIN went out at an unknown moment before its proof: peer data in the proof
        # segment may have followed it, so data_after_close looks from there on.
        fin_at = own_at if fin_captured else max(own_at - 1, 0)
        proof = steps[own_at].segment.frame
        own_fin = f"FIN, frame {proof}" if fin_captured else f"FIN not captured, acknowledged in frame {proof}"
        if data_after_close(steps, closer, fin_at, i) is not None:
            continue  # RFC 1122 §4.2.2.13 abort on data: the RST answers the data (abortive-close)
        yield ctx.finding(
            rst,
            closer,
            f"{ctx.who(closer)} had closed ({own_fin}) and answered the peer's FIN "
            f"(frame {answered.segment.frame}) with RST (frame {rst.frame}) instead of the final ACK",
        )
        return
