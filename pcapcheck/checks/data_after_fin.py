"""data-after-fin: new data sent after the sender's own FIN.

RFC 9293 §3.10.2 (SEND in FIN-WAIT-1/2, CLOSING, LAST-ACK, TIME-WAIT): "return error:
connection closing and do not service request"; the FIN is the last sequence number (§3.4).  New
data is payload reaching past the FIN's sequence number.  A one-byte segment at exactly the FIN's
number is a keep-alive probe (RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT-1, with or without one garbage
byte), not data.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import FIN, Side
from .context import CheckContext, fin_number, first_fin_index

RULE = "data-after-fin"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    steps = ctx.steps
    for side in (Side.CLIENT, Side.SERVER):
        fin_at = first_fin_index(steps, side)
        if fin_at is None:
            continue
        fin = steps[fin_at].segment
        last = fin_number(fin)
        for later in steps[fin_at + 1 :]:
            seg = later.segment
            if seg.sender is not side or seg.length == 0 or seg.rst:
                continue
            if seg.length == 1 and seg.seq == last and not seg.fin:
                continue  # keep-alive probe
            if seg.seq + seg.length > last:
                yield ctx.finding(
                    seg,
                    side,
                    f"{ctx.who(side)} sent {seg.length} bytes of new data (frame {seg.frame}) after its FIN "
                    f"(frame {fin.frame})",
                )
                break
