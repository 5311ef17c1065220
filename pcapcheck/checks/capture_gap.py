"""capture-gap: an ACK acknowledges data the capture never saw: the capture lost packets.

The replay marks such ACKs (NOTE_ACKS_UNSEEN) or records an "ack-unseen-data" anomaly.  One note
per connection, at the first such ACK; a capture-quality note, never a fault of the endpoints.
An ACK beyond the peer's FIN is not capture loss (nothing follows a FIN): fin-ack-mismatch; nor is
a SYN-ACK acknowledging more than the SYN (no data precedes the SYN's answer): synack-bad-ack.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..findings import Finding
from ..replay.model import ANOMALY_ACK_UNSEEN_DATA, NOTE_ACKS_UNSEEN
from ..segments import Segment
from .context import CheckContext, fin_number, first_fin

RULE = "capture-gap"


def check(ctx: CheckContext) -> Iterator[Finding]:
    frames = {a.frame for a in ctx.replay.anomalies if a.kind == ANOMALY_ACK_UNSEEN_DATA and a.capture_quality}
    marked = [
        s.segment
        for s in ctx.steps
        if (NOTE_ACKS_UNSEEN in s.notes or s.segment.frame in frames)
        and not s.segment.syn
        and not _beyond_peer_fin(ctx, s.segment)
    ]
    if not marked:
        return
    first = marked[0]
    more = f" ({len(marked) - 1} more such ACKs)" if len(marked) > 1 else ""
    yield ctx.finding(
        first,
        None,
        f"frame {first.frame} acknowledges {first.sender.peer.value} data the capture never saw: "
        f"packets were lost by the capture, not the network{more}",
        capture_quality=True,
    )


def _beyond_peer_fin(ctx: CheckContext, ack: Segment) -> bool:
    """Nothing follows a FIN: an ACK past it claims data never sent (fin-ack-mismatch), not capture loss."""
    fin = first_fin((s for s in ctx.steps if s.segment.time <= ack.time), ack.sender.peer)
    return fin is not None and ack.ack > fin_number(fin.segment) + 1
