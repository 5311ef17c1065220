"""syn-retransmit-too-early: a SYN retransmitted before the retransmission timer could expire.

RFC 6298 §2.1: "Until a round-trip time (RTT) measurement has been made ... the sender SHOULD set
RTO <- 1 second".  So a retransmitted SYN comes at least ``rto_initial`` after the one before,
less ``tolerance`` for timer and timestamp granularity.  The doubling of §5.5 is not required:
Linux (tcp_syn_linear_timeouts, default 4) deliberately spaces its first SYN retries linearly.

Not a timer-driven retransmission, so never reported: a SYN resent right after the peer answered
(Linux re-sends at once after an unacceptable SYN-ACK it reset, RFC 9293 §3.10.7.3), or after the
opener itself sent a RST (which proves it answered a SYN-ACK the capture may have missed); copies
less than 1 ms apart, or any distance apart with the same TSval, sequence number and options (one
packet captured twice, e.g. by two taps merged: a retransmission carries a fresh TSval, RFC 7323
§4.1); a SYN with a new ISN (a new attempt).
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import SYN, Segment
from .context import CheckContext, seconds

RULE = "syn-retransmit-too-early"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN

_CAPTURE_DUPLICATE = 0.001


def check(ctx: CheckContext) -> Iterator[Finding]:
    opener = None
    previous = None
    peer_spoke = False
    for step in ctx.steps:
        seg = step.segment
        if opener is None:
            if not (seg.syn and not seg.has_ack):
                continue
            opener = seg.sender
        if seg.sender is not opener or seg.rst:
            peer_spoke = True  # an answer, or the opener's own RST to an answer: a new attempt follows
            continue
        if not seg.syn or seg.has_ack:
            continue
        if previous is None or seg.seq != previous.seq or peer_spoke:
            previous, peer_spoke = seg, False
            continue
        gap = seg.time - previous.time
        if gap < _CAPTURE_DUPLICATE or _same_packet(seg, previous):
            continue
        minimum = ctx.params["rto_initial"]
        if gap < minimum - ctx.params["tolerance"]:
            yield ctx.finding(
                seg,
                opener,
                f"{ctx.who(opener)} retransmitted its SYN (frame {seg.frame}) {seconds(gap)} after the previous "
                f"one (frame {previous.frame}); the initial retransmission timeout is {seconds(minimum)}",
            )
            return
        previous = seg


def _same_packet(a: Segment, b: Segment) -> bool:
    """The same SYN captured twice: a timestamp clock ticks between real transmissions (RFC 7323 §4.1)."""
    return (
        a.ts_val is not None
        and a.ts_val == b.ts_val
        and a.seq == b.seq
        and (a.mss, a.wscale, a.sack_permitted, a.window) == (b.mss, b.wscale, b.sack_permitted, b.window)
    )
