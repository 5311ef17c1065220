"""option-not-negotiated: an option used that the SYNs did not negotiate.

RFC 7323 §1.3: an extended option may appear in a SYN-ACK only if the SYN carried it;
RFC 7323 §3.2: timestamps are sent on later segments only when both SYNs carried them;
RFC 2018 §2: SACK blocks may be sent only to a peer whose SYN carried SACK-permitted.
Needs both SYNs in the capture, not cut by the snap length (otherwise what was negotiated is
unknown); one finding per sender.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import SYN, Segment, Side
from .context import CheckContext

RULE = "option-not-negotiated"
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    syn = next((s.segment for s in ctx.steps if s.segment.syn and not s.segment.has_ack), None)
    if syn is None:
        return
    synack = next(
        (s.segment for s in ctx.steps if s.segment.syn and s.segment.has_ack and s.segment.sender is not syn.sender),
        None,
    )
    if synack is None or syn.truncated or synack.truncated:
        return  # a SYN cut by the snap length may have lost its options: negotiation unknown
    syn_of = {syn.sender: syn, synack.sender: synack}
    reported: set[Side] = set()
    extra = _synack_extras(syn, synack)
    if extra:
        reported.add(synack.sender)
        yield ctx.finding(
            synack,
            synack.sender,
            f"{ctx.who(synack.sender)} put {extra} in its SYN-ACK (frame {synack.frame}) although the SYN "
            f"(frame {syn.frame}) did not offer it",
        )
    timestamps = syn.ts_val is not None and synack.ts_val is not None
    for step in ctx.steps:
        seg = step.segment
        if seg.flags & SYN or seg.sender in reported:
            continue
        if seg.sack_blocks and not syn_of[seg.sender.peer].sack_permitted:
            used, rfc = "SACK blocks", "RFC 2018 §2"
        elif seg.ts_val is not None and not timestamps:
            used, rfc = "timestamps", "RFC 7323 §3.2"
        else:
            continue
        reported.add(seg.sender)
        yield ctx.finding(
            seg,
            seg.sender,
            f"{ctx.who(seg.sender)} used {used} (frame {seg.frame}) that the SYNs (frames {syn.frame}, "
            f"{synack.frame}) did not negotiate",
            rfc=rfc,
        )


def _synack_extras(syn: Segment, synack: Segment) -> str:
    extras = []
    if synack.wscale is not None and syn.wscale is None:
        extras.append("window scaling")
    if synack.ts_val is not None and syn.ts_val is None:
        extras.append("timestamps")
    if synack.sack_permitted and not syn.sack_permitted:
        extras.append("SACK-permitted")
    return " and ".join(extras)
