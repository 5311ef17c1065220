"""What one check sees: a connection, its replay, the incarnation before, and its own parameters.

Also the small facts several checks ask of a replay (who sent the first FIN, was it acknowledged,
was the capture whole).  They only read steps; no check re-runs the state machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..catalogue import RuleSpec
from ..connections import Connection
from ..findings import Finding, Severity
from ..profiles import Profile
from ..replay.model import ANOMALY_MIDSTREAM_START, ANOMALY_ONE_DIRECTION_MISSING, Replay, State, Step, Vantage
from ..segments import Segment, Side

# Anomaly kinds that say the capture is missing the connection's beginning or one direction
# (Anomaly.endpoint of the latter: the side whose segments are missing).
MIDSTREAM_KINDS = frozenset({ANOMALY_MIDSTREAM_START})
ONE_DIRECTION_KINDS = frozenset({ANOMALY_ONE_DIRECTION_MISSING})


class Located(Protocol):
    """Where a finding is: a Segment, or what a rule keeps of one (reuse.SynAt)."""

    @property
    def frame(self) -> int: ...

    @property
    def time(self) -> float: ...


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and a run builds a
# context per rule per connection (1.7 µs frozen, 0.6 µs not; hundreds of thousands on a large
# capture).  Checks only read it.
@dataclass(slots=True)
class CheckContext:
    connection: Connection
    replay: Replay
    previous: tuple[Connection, Replay] | None  # the incarnation before on the same tuple
    _capture_end: float | None  # read as ``capture_end``, which notes the reading
    params: Mapping[str, Any]  # effective parameter values ("profile" already resolved)
    profile: Profile
    spec: RuleSpec
    severity: Severity  # after configuration overrides
    # Effective parameters of every rule (rule id -> name -> value), for a rule that must agree with
    # another's setting; empty when built without a configuration.
    rule_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Shared by every rule's context on one connection: what several rules derive alike (e.g.
    # reuse.find_reuse for short-time-wait and time-wait-reuse) is worked out once.
    shared: dict[str, Any] = field(default_factory=dict)
    # Whether the check read ``capture_end``: the replay memo (pcapcheck.replay.memo) keys
    # connections by the capture's end only for what the replay compares with it, so when a rule
    # read it on a template's first connection the rules run again on every member.
    read_capture_end: bool = False

    @property
    def capture_end(self) -> float | None:
        """Time of the capture's last packet (any connection); the only way a check sees it."""
        self.read_capture_end = True
        return self._capture_end

    def param_of(self, rule_id: str, name: str) -> Any:
        """Another rule's effective parameter; the profile's value when that rule is not catalogued."""
        value = self.rule_params.get(rule_id, {}).get(name)
        return getattr(self.profile, name) if value is None else value

    @property
    def steps(self) -> list[Step]:
        return self.replay.steps

    def steps_with(self, flag: int) -> list[int]:
        """Positions of the steps whose segment carries ``flag`` (segments.SYN, FIN or RST), in
        order.  Read from the connection's columns when the steps are its segments in order (a
        templated replay makes a Step only when it is read), else from the steps."""
        steps = self.steps
        if len(steps) == self.connection.packets:
            return np.flatnonzero(self.connection.rows["flags"] & flag).tolist()
        return [i for i, step in enumerate(steps) if step.segment.flags & flag]

    def finding(
        self,
        segment: "Located",
        endpoint: Side | None,
        message: str,
        *,
        capture_quality: bool = False,
        rfc: str | None = None,
    ) -> Finding:
        """A finding of this rule at ``segment``; ``rfc`` narrows the rule's first reference for this case."""
        return Finding(
            rule=self.spec.id,
            severity=self.severity,
            connection=self.connection.id,
            endpoint=endpoint,
            frame=segment.frame,
            time=segment.time,
            message=message,
            rfc=rfc or self.spec.rfc_text,
            capture_quality=capture_quality,
        )

    def who(self, side: Side) -> str:
        """'client 198.18.0.1:40000' for messages."""
        return f"{side.value} {self.connection.endpoint(side)}"

    def captured_until(self, time: float) -> bool:
        """Did the capture go on at least until ``time``?  Unknown capture end counts as no."""
        return self.capture_end is not None and self.capture_end >= time

    def seen_from_side(self, side: Side) -> bool:
        """Did the capture see that side's direction at all (and the replay not call it missing)?"""
        if any(a.kind in ONE_DIRECTION_KINDS and a.endpoint is side for a in self.replay.anomalies):
            return False
        return any(step.segment.sender is side for step in self.steps)

    def captured_at(self, side: Side) -> bool:
        """Was the capture taken at ``side``'s host (so what it sent later may be lost unseen)?"""
        return self.replay.vantage is (Vantage.CLIENT if side is Side.CLIENT else Vantage.SERVER)




def fin_number(segment: Segment) -> int:
    """The sequence number the FIN occupies (after any payload; RFC 9293 §3.4)."""
    return segment.seq + segment.length + (1 if segment.syn else 0)


def first_fin(steps: Iterable[Step], side: Side) -> Step | None:
    return next((s for s in steps if s.segment.sender is side and s.segment.fin), None)


def first_fin_index(steps: list[Step], side: Side, end: int | None = None) -> int | None:
    """Position of the first FIN ``side`` sent, among the steps before ``end`` (all by default)."""
    for k in range(len(steps) if end is None else end):
        seg = steps[k].segment
        if seg.sender is side and seg.fin:
            return k
    return None


def earlier_fin_transmission(steps: list[Step], at: int) -> int | None:
    """Index of the first captured transmission of the FIN at steps[at], if steps[at] retransmits a
    FIN the capture already holds (same sender, same FIN sequence number), else None.

    Such a FIN is a retransmission: whatever the capture shows next, the receiver was sent that FIN
    before, so a final ACK for it may have been sent and lost (or not captured) in between.
    """
    fin = steps[at].segment
    if not fin.fin:
        return None
    number = fin_number(fin)
    return next(
        (
            k
            for k in range(at)
            if steps[k].segment.sender is fin.sender and steps[k].segment.fin and fin_number(steps[k].segment) == number
        ),
        None,
    )




def data_after_close(steps: list[Step], closer: Side, fin_at: int, end: int) -> Step | None:
    """The first delivered peer segment among steps[fin_at+1:end] carrying data the peer had not sent
    before ``closer``'s FIN (at steps[fin_at]) and ``closer`` never acknowledged, or None.

    RFC 1122 §4.2.2.13: "if new data is received after CLOSE is called, its TCP SHOULD send a RST to
    show that data was lost" — a RST after such data answers the data, not any FIN that came with it.
    Data the closer acknowledged was read (a half-close, RFC 9293 §3.6): no abort on that.
    """
    peer = closer.peer
    sent_before = max(
        (s.segment.seq + s.segment.length for s in steps[:fin_at] if s.segment.sender is peer and s.segment.length),
        default=None,
    )
    acked = max(
        (
            s.segment.ack
            for s in steps[fin_at:end]
            if s.segment.sender is closer and s.segment.has_ack and not s.segment.rst
        ),
        default=None,
    )
    for s in steps[fin_at + 1 : end]:
        seg = s.segment
        if seg.sender is not peer or not seg.length or not s.delivered:
            continue
        data_end = seg.seq + seg.length
        if (sent_before is None or data_end > sent_before) and (acked is None or data_end > acked):
            return s
    return None


def acknowledges(segment: Segment, upto: int) -> bool:
    """Does ``segment`` acknowledge the peer's sequence space up to (not including) ``upto``?"""
    return segment.has_ack and not segment.rst and segment.ack >= upto


def handshake_rtt(steps: list[Step]) -> float | None:
    """Round trip seen over the handshake: first SYN to the ACK completing it (as tcptrace does)."""
    syn = next((s.segment for s in steps if s.segment.syn and not s.segment.has_ack), None)
    if syn is None:
        return None
    synack = next(
        (s.segment for s in steps if s.segment.syn and s.segment.has_ack and s.segment.sender is not syn.sender), None
    )
    if synack is None:
        return None
    ack = next(
        (
            s.segment
            for s in steps
            if s.segment.sender is syn.sender
            and not s.segment.syn
            and s.segment.has_ack
            and s.segment.time >= synack.time
        ),
        None,
    )
    return (ack or synack).time - syn.time


def has_capture_quality_anomaly(replay: Replay, kinds: frozenset[str] | None = None) -> bool:
    return any(a.capture_quality and (kinds is None or a.kind in kinds) for a in replay.anomalies)


def started_midstream(conn: Connection, replay: Replay) -> bool:
    """No SYN at the start: the capture began after the connection did."""
    if opened_in_capture(replay):
        return False
    if has_capture_quality_anomaly(replay, MIDSTREAM_KINDS):
        return True
    return bool(replay.steps) and not replay.steps[0].segment.syn


def opened_in_capture(replay: Replay) -> bool:
    """Did the replay begin the connection with a captured SYN sent from CLOSED (RFC 9293 §3.10.1)?

    True even when capture order puts the SYN-ACK first: two taps merged with a clock offset, or two
    CPUs, capture the SYN a few µs after its answer, and the replay orders them causally (within
    its reorder window).  That is the connection's opening, seen, not a mid-stream pickup.
    """
    if not replay.transitions:
        return False
    first = replay.transitions[0]
    if first.from_state is not State.CLOSED or first.to_state is not State.SYN_SENT:
        return False
    return any(
        s.segment.frame == first.frame
        and s.segment.syn
        and not s.segment.has_ack
        and s.segment.sender is first.endpoint
        for s in replay.steps
    )


def sent_data_before(steps: list[Step], side: Side, end: int) -> bool:
    """Did ``side`` send payload among steps[:end]?  Proves it had not closed before the capture began."""
    return any(s.segment.sender is side and s.segment.length > 0 for s in steps[:end])




def seconds(value: float) -> str:
    """'1.5 s', '240 s', '12 ms' for messages."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
