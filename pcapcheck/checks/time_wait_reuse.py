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
from .reuse import SAFE, UNKNOWN, Said, reuse_check

RULE = "time-wait-reuse"
READS_PREVIOUS = True  # compares this incarnation with the one before (checks/__init__.py)
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


# The verdicts (checks.reuse) this rule reports.
VERDICTS = SAFE | {UNKNOWN}


def check(ctx: CheckContext) -> Iterator[Finding]:
    return reuse_check(ctx, VERDICTS, words)


def words(said: Said, time_wait: float) -> tuple[str, bool]:
    """The message of a reuse the rule reports, and whether it is a capture-quality note (also read
    by the column lane of reopened tuples, pcapcheck.reopened)."""
    head = (
        f"{said.holder} reused the 4-tuple {seconds(said.elapsed)} after entering TIME-WAIT "
        f"(frame {said.entered_frame}) with {said.opening}"
    )
    if said.verdict == UNKNOWN:
        return head + "; the capture's snap length cut the TCP options, so whether it had the RFC 6191 safeguard cannot be told", True
    return f"{head}: {said.safeguard}", False
