"""data-after-rst: data sent on a connection a RST had already closed.

RFC 9293 §3.10.7.4 (second, "check the RST bit"): an acceptable RST moves the receiver to CLOSED;
RFC 9293 §3.10.4 ABORT: the sender of a RST has deleted its TCB.  Data after that is answered by
RST again and lost.  For the peer's RST, data sent within ``grace`` (or two handshake RTTs, if
longer) may have crossed the RST in flight and is not counted.  A RST the receiver would not accept
(out of window, RFC 5961 §3.2 in-window-but-not-exact) closes nothing and is ignored, and so does
a RST from SYN-SENT answering a bad SYN-ACK, after which the handshake goes on, and a RST after
which data is still acknowledged (the receiver's ACK of data sent after the RST proves it did not
accept the RST: typical of a capture picked up mid-stream, where the window is unknown).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import NOTE_RST_IN_WINDOW, NOTE_RST_OUT_OF_WINDOW, State, Step
from ..segments import RST
from .context import CheckContext, handshake_rtt

RULE = "data-after-rst"
# It can only find something in a connection with a RST: run_checks skips the others.
NEEDS = RST


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    rst_at = next((k for k, s in enumerate(steps) if _closing_rst(steps, k)), None)
    if rst_at is None:
        return
    rst = steps[rst_at].segment
    crossing = max(ctx.params["grace"], 2 * (handshake_rtt(steps) or 0.0))
    for later in steps[rst_at + 1 :]:
        seg = later.segment
        if seg.length == 0 or seg.rst:
            continue
        if seg.sender is rst.sender.peer and seg.time - rst.time <= crossing:
            continue  # may have been sent before the RST arrived
        whose = "its own" if seg.sender is rst.sender else "the peer's"
        yield ctx.finding(
            seg,
            seg.sender,
            f"{ctx.who(seg.sender)} sent {seg.length} bytes (frame {seg.frame}) after {whose} RST "
            f"(frame {rst.frame}) had closed the connection",
        )
        return


def _closing_rst(steps: list[Step], k: int) -> bool:
    step = steps[k]
    if not step.segment.rst or not step.delivered or step.notes & {NOTE_RST_OUT_OF_WINDOW, NOTE_RST_IN_WINDOW}:
        return False
    if step.sender_before is State.SYN_SENT:
        return False  # answers an unacceptable SYN-ACK; the opener stays in SYN-SENT (RFC 9293 §3.10.7.3)
    # A handshake going on after it shows the RST closed nothing.
    if any(s.segment.syn for s in steps[k + 1 :]):
        return False
    return not _data_acknowledged_after(steps, k)


def _data_acknowledged_after(steps: list[Step], k: int) -> bool:
    """Was data sent after the RST at steps[k] acknowledged by the other side?  A closed endpoint
    answers data with RST (RFC 9293 §3.10.7.1), so an ACK of it proves both ends still had the
    connection: the RST was not accepted (e.g. out of window in a capture picked up mid-stream,
    where the replay cannot see the window)."""
    ends: dict = {}  # sender -> smallest end of its data sent after the RST, not yet acknowledged
    for s in steps[k + 1 :]:
        seg = s.segment
        if seg.rst:
            continue
        peer_end = ends.get(seg.sender.peer)
        if peer_end is not None and seg.has_ack and seg.ack >= peer_end:
            return True
        if seg.length and seg.sender not in ends:
            ends[seg.sender] = seg.seq + seg.length
    return False
