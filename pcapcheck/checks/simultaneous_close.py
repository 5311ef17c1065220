"""simultaneous-close: each endpoint sent FIN before receiving the other's (RFC 9293 §3.6, figure 13).

Both go through CLOSING to TIME-WAIT.  Seen from the capture: the second FIN does not acknowledge
the first one.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import FIN
from .context import CheckContext, fin_number

RULE = "simultaneous-close"
# It can only find something in a connection with a FIN: run_checks skips the others.
NEEDS = FIN


def check(ctx: CheckContext) -> Iterator[Finding]:
    fins = [s.segment for s in ctx.steps if s.segment.fin and not s.segment.rst]
    if not fins:
        return
    first = fins[0]
    second = next((fin for fin in fins if fin.sender is not first.sender), None)
    if second is None:
        return
    if second.has_ack and second.ack >= fin_number(first) + 1:
        return  # it had received the first FIN: an ordinary close
    yield ctx.finding(
        second,
        None,
        f"simultaneous close: both endpoints sent FIN (frames {first.frame} and {second.frame}) "
        f"before receiving the other's",
    )
