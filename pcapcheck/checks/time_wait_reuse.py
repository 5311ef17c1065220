"""time-wait-reuse: a 4-tuple reused during TIME-WAIT with the RFC 6191 / RFC 9293 §3.6.1 safeguard.

Legal, but worth knowing: it relies on timestamps (RFC 6191) or on the new ISN lying above the old
sequence space (RFC 1122 §4.2.2.13).  Without either it is short-time-wait instead.  When the snap
length cut the options that would tell, it is reported here as a capture-quality note.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import SYN
from .context import CheckContext, seconds
from .reuse import find_reuse

RULE = "time-wait-reuse"
READS_PREVIOUS = True  # compares this incarnation with the one before (checks/__init__.py)
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


def check(ctx: CheckContext) -> Iterator[Finding]:
    reuse = find_reuse(ctx)
    if reuse is None or (reuse.safeguard is None and not reuse.unknown):
        return
    if reuse.elapsed >= ctx.params["time_wait"]:
        return
    if reuse.unknown:
        yield ctx.finding(
            reuse.syn,
            reuse.holder,
            f"{ctx.who(reuse.holder)} reused the 4-tuple {seconds(reuse.elapsed)} after entering TIME-WAIT "
            f"(frame {reuse.entered_frame}) with {reuse.opening}; the capture's snap "
            f"length cut the TCP options, so whether it had the RFC 6191 safeguard cannot be told",
            capture_quality=True,
        )
        return
    yield ctx.finding(
        reuse.syn,
        reuse.holder,
        f"{ctx.who(reuse.holder)} reused the 4-tuple {seconds(reuse.elapsed)} after entering TIME-WAIT "
        f"(frame {reuse.entered_frame}) with {reuse.opening}: {reuse.safeguard}",
    )
