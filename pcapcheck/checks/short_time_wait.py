"""short-time-wait: TIME-WAIT cut shorter than the profile's 2·MSL without a safeguard.

RFC 9293 §3.6.1: an endpoint stays in TIME-WAIT for 2·MSL so that old duplicates of the closed
incarnation die before a new one reuses the 4-tuple; RFC 1122 §4.2.2.13 and RFC 6191 allow early
reuse only with an ISN above the old sequence space, or a newer timestamp (or, RFC 6191 §2, an
equal timestamp and a higher ISN).  The check compares the new incarnation's SYN with the previous
incarnation's TIME-WAIT (see reuse.py).  Silent when the snap length cut the options that would
tell: a timestamp the capture did not keep is not a missing one.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..segments import SYN
from .context import CheckContext, seconds
from .reuse import UNSAFE, Said, reuse_check

RULE = "short-time-wait"
READS_PREVIOUS = True  # compares this incarnation with the one before (checks/__init__.py)
# It can only find something in a connection with a SYN: run_checks skips the others.
NEEDS = SYN


# The verdicts (checks.reuse) this rule reports: no safeguard, and the capture could tell (when the
# snap length cut the options, time-wait-reuse notes it).
VERDICTS = UNSAFE


def check(ctx: CheckContext) -> Iterator[Finding]:
    return reuse_check(ctx, VERDICTS, words)


def words(said: Said, time_wait: float) -> tuple[str, bool]:
    """The message of a reuse the rule reports, and whether it is a capture-quality note (also read
    by the column lane of reopened tuples, pcapcheck.reopened)."""
    role = "opened" if said.opened else "accepted"
    return (
        f"{said.holder} entered TIME-WAIT at frame {said.entered_frame} and {role} a new "
        f"incarnation of the same 4-tuple with {said.opening} {seconds(said.elapsed)} later, "
        f"before TIME-WAIT of {seconds(time_wait)}, without the RFC 6191 safeguard: {said.unsafe}",
        False,
    )
