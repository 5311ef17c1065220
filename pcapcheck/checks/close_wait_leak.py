"""close-wait-leak: an endpoint got the peer's FIN and then neither closed nor reset for too long.

RFC 9293 §3.10.7.4: a FIN received in ESTABLISHED moves the endpoint to CLOSE-WAIT, where it stays
until its application calls CLOSE (§3.10.4) and a FIN goes out.  An application that never closes
leaks the socket.  The clock starts at the peer's FIN and restarts whenever the endpoint still
sends data (half-close in use, RFC 9293 §3.6: "a TCP can continue to send data"); it fires when
the endpoint stays silent for longer than ``threshold`` — until its late FIN/RST, or until the
capture ended.  Not when the peer reset the connection, not when the endpoint's own direction
is missing from the capture, and not in a mid-stream capture unless the endpoint sent data before
the FIN (else it may have closed before the capture began).  It reads the replay's transitions:
an endpoint the replay moved out of CLOSE-WAIT on a FIN the capture lost (the peer's ACK of
seq FIN + 1 proves it was sent) closed then, whatever the capture missed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import State
from ..segments import FIN, RST, Side
from .context import CheckContext, seconds, sent_data_before, started_midstream

RULE = "close-wait-leak"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    threshold = ctx.params["threshold"]
    midstream = started_midstream(ctx.connection, ctx.replay)
    for holder in (Side.CLIENT, Side.SERVER):
        peer = holder.peer
        fin_at = next(
            (k for k, s in enumerate(steps) if s.segment.sender is peer and s.segment.flags & FIN and s.delivered),
            None,
        )
        if fin_at is None or not ctx.seen_from_side(holder):
            continue
        fin = steps[fin_at].segment
        if any(s.segment.sender is holder and s.segment.flags & (FIN | RST) for s in steps[:fin_at]):
            continue  # it had closed first: not CLOSE-WAIT
        if midstream and not sent_data_before(steps, holder, fin_at):
            continue  # it may have sent its FIN before the capture began
        idle_since = fin.time
        end: float | None = None
        ended_by = ""
        for later in steps[fin_at + 1 :]:
            seg = later.segment
            if seg.sender is holder and (seg.fin or seg.rst):
                end, ended_by = seg.time, f"{'FIN' if seg.fin else 'RST'} frame {seg.frame}"
                break
            if seg.sender is peer and seg.rst:
                end, ended_by = None, "peer-rst"
                break
            if seg.sender is holder and seg.length > 0:
                idle_since = seg.time  # the application is alive and still writing: not leaked (yet)
        if ended_by == "peer-rst":
            continue
        # The replay may know it left CLOSE-WAIT earlier than the capture shows: a FIN the capture
        # lost, proved by the peer's ACK of it (seq FIN + 1).
        left = next(
            (
                t
                for t in ctx.replay.transitions
                if t.endpoint is holder and t.from_state is State.CLOSE_WAIT and t.time >= fin.time
            ),
            None,
        )
        if left is not None and (end is None or left.time < end):
            end, ended_by = left.time, f"its FIN the capture lost, acknowledged in frame {left.frame}"
        if end is not None:
            idle = max(0.0, end - idle_since)
            if idle <= threshold:
                continue
            tail = f"until {ended_by}"
        else:
            if ctx.capture_end is None or ctx.capture_end - idle_since <= threshold:
                continue
            idle = ctx.capture_end - idle_since
            tail = "until the capture ended"
        yield ctx.finding(
            fin,
            holder,
            f"{ctx.who(holder)} received the peer's FIN (frame {fin.frame}) and stayed in CLOSE-WAIT "
            f"without sending FIN or RST for {seconds(idle)} ({tail}), longer than {seconds(threshold)}",
        )
