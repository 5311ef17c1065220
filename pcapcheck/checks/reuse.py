"""A new incarnation of a 4-tuple that began while the previous one's TIME-WAIT could still run.

Shared by short-time-wait (no safeguard) and time-wait-reuse (with one).  RFC 9293 §3.6.1 and
RFC 1122 §4.2.2.13: a SYN received in TIME-WAIT may reopen the connection only if its ISN is
above the largest sequence number used in the old incarnation; RFC 6191 §2: when both carry
timestamps, a TSval newer than the old connection's last one decides instead.  An endpoint that
reopens the tuple itself from TIME-WAIT (Linux tcp_tw_reuse) has only the timestamp safeguard.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..connections import Connection
from ..findings import Finding
from ..replay.model import Replay, State, Step
from ..segments import FIN, SYN, Side
from .context import CheckContext

_HALF = 1 << 31
_MASK = 0xFFFFFFFF


class SynAt(NamedTuple):
    """Where the new incarnation opened: the SYN, or the SYN-ACK when the capture lost the SYN."""

    sender: Side  # of that segment
    frame: int
    time: float


@dataclass(frozen=True, slots=True)
class Reuse:
    holder: Side  # the endpoint that held TIME-WAIT, as a side of the *new* connection
    syn: SynAt  # the new incarnation's first SYN; its SYN-ACK when the capture lost the SYN
    entered_time: float
    entered_frame: int
    elapsed: float  # from entering TIME-WAIT to the new SYN (to its SYN-ACK when the SYN was lost)
    safeguard: str | None  # which RFC safeguard made the reuse safe, or None
    # Why no safeguard holds (when safeguard is None and not unknown), e.g. "its TSval 5 is older than ...".
    unsafe: str
    # The capture cannot tell: the SYN's (or the old connection's) options were cut by the snap length.
    unknown: bool
    # The capture lost the SYN; ``syn`` is the SYN-ACK answering it, which tells the SYN's ISN (its
    # ACK - 1, RFC 9293 §3.4) and TSval (its TSecr, RFC 7323 §4.3).
    syn_lost: bool
    # ``verdict_code``, which the three fields before syn_lost word (``verdict``): the rules select on it.
    verdict: int

    @property
    def opener(self) -> Side:
        """The side that sent the new SYN (captured or not)."""
        return self.syn.sender.peer if self.syn_lost else self.syn.sender

    @property
    def opening(self) -> str:
        """'the new SYN (frame 12)' or, when the capture lost it, how it is known, for messages."""
        return opening_text(self.syn_lost, self.syn.frame)


def opening_text(syn_lost: bool, frame: int) -> str:
    """Reuse.opening of a reuse opened at ``frame`` (the SYN-ACK's when the capture lost the SYN)."""
    if syn_lost:
        return f"a new SYN the capture lost (answered by the SYN-ACK, frame {frame})"
    return f"the new SYN (frame {frame})"


@dataclass(frozen=True, slots=True)
class Opening:
    """What the safeguards read of the new incarnation's SYN."""

    sender: Side
    isn: int
    ts_val: int | None
    truncated: bool


# The new incarnation's opening: where, what the safeguards read of it, whether the SYN was lost.
Opened = tuple[SynAt, Opening, bool]


def _opening(steps: list[Step]) -> Opened | None:
    """The new incarnation's SYN, or the SYN-ACK that opens it when the capture lost the SYN.

    A SYN-ACK acknowledges exactly the SYN's ISN + 1 (RFC 9293 §3.4; + its data under RFC 7413 Fast
    Open, which this reading does not recover) and echoes its TSval in TSecr (RFC 7323 §4.3).
    """
    syn = next((s.segment for s in steps if s.segment.syn and not s.segment.has_ack), None)
    if syn is not None:
        return SynAt(syn.sender, syn.frame, syn.time), Opening(syn.sender, syn.seq & _MASK, syn.ts_val, syn.truncated), False
    first = steps[0].segment if steps else None
    if first is None or not (first.syn and first.has_ack):
        return None
    at = SynAt(first.sender, first.frame, first.time)
    return at, Opening(first.sender.peer, (first.ack - 1) & _MASK, first.ts_ecr, first.truncated), True


class Said(NamedTuple):
    """What a reuse rule's message reads of a reuse it reports (the rule module's ``words``), as the
    column lane of reopened tuples (pcapcheck.reopened) has it without making the Reuse."""

    holder: str  # who held TIME-WAIT, for messages: 'client 198.18.0.1:40000'
    opened: bool  # the holder sent the new SYN (else it accepted it)
    entered_frame: int
    opening: str  # Reuse.opening
    elapsed: float
    verdict: int
    safeguard: str | None
    unsafe: str


# A reuse rule's message of a reuse it reports, and whether it is a capture-quality note (the rule
# module's ``words(said, time_wait)``).
Words = Callable[[Said, float], "tuple[str, bool]"]


def reuse_check(ctx: CheckContext, verdicts: frozenset[int], words: Words) -> Iterator[Finding]:
    """The check of a rule that reads only the connection's Reuse (short-time-wait, time-wait-reuse):
    a reuse with one of the rule's ``verdicts`` that came before TIME-WAIT could end, worded by the
    rule's ``words``, at the new SYN, by the holder (pcapcheck.reopened.lane_findings selects and
    words the same over columns)."""
    reuse = find_reuse(ctx)
    time_wait = ctx.params["time_wait"]
    if reuse is None or reuse.verdict not in verdicts or reuse.elapsed >= time_wait:
        return
    said = Said(
        ctx.who(reuse.holder), reuse.opener is reuse.holder, reuse.entered_frame, reuse.opening, reuse.elapsed,
        reuse.verdict, reuse.safeguard, reuse.unsafe,
    )  # fmt: skip
    message, capture_quality = words(said, time_wait)
    yield ctx.finding(reuse.syn, reuse.holder, message, capture_quality=capture_quality)


def find_reuse(ctx: CheckContext) -> Reuse | None:
    """short-time-wait and time-wait-reuse both ask about the same connection: the answer depends on
    the connection, its replay and the previous incarnation only (not on params), so it is worked
    out once per connection (``ctx.shared``)."""
    shared = ctx.shared
    if "reuse" not in shared:
        shared["reuse"] = None if ctx.previous is None else _find_reuse(ctx)
    return shared["reuse"]


def _find_reuse(ctx: CheckContext) -> Reuse | None:
    old_conn, old_replay = ctx.previous  # type: ignore[misc]
    conn = ctx.connection
    opened = _opening(ctx.steps)
    if opened is None:
        return None

    def holders() -> Iterator[tuple[Side, float, int]]:
        for old_side, entered_time, entered_frame in _time_waits(old_replay):
            holder_endpoint = old_conn.endpoint(old_side)
            if holder_endpoint == conn.client:
                yield Side.CLIENT, entered_time, entered_frame
            elif holder_endpoint == conn.server:
                yield Side.SERVER, entered_time, entered_frame

    def sent_by(sender: Side) -> Sent:
        return _sent(old_conn, 0 if old_conn.client == conn.endpoint(sender) else 1)

    return reuse_from(holders(), opened, lambda holder: _accepted(ctx, holder), sent_by)


def reuse_from(
    holders: Iterable[tuple[Side, float, int]],
    opened: Opened,
    accepted: Callable[[Side], bool],
    sent_by: Callable[[Side], "Sent"],
) -> Reuse | None:
    """The reuse, given the old incarnation's TIME-WAITs in order (each as its holder's side in the
    new connection, when it entered, at which frame), the new opening, whether a holder accepted
    the SYN, and what the SYN's sender sent in the old incarnation (by its side in the new one)."""
    syn, opening, syn_lost = opened
    # After a simultaneous close both ends held TIME-WAIT: the one taking part in the new incarnation counts.
    for holder, entered_time, entered_frame in holders:
        if opening.sender is not holder and not accepted(holder):
            continue
        elapsed = syn.time - entered_time
        sent = sent_by(opening.sender)
        received = opening.sender is not holder  # RFC 6191 and the ISN rule are the receiver's (TIME-WAIT) test
        code = verdict_code(opening.truncated, opening.ts_val, sent.last_ts, sent.truncated, received, opening.isn, sent.end)
        said = verdict(code, opening.ts_val, sent.last_ts, received, opening.isn, sent.end)
        return Reuse(
            holder, syn, entered_time, entered_frame, elapsed, said.safeguard, said.unsafe, said.unknown, syn_lost, code
        )
    return None


def _accepted(ctx: CheckContext, holder: Side) -> bool:
    """Did ``holder`` accept the SYN (rather than reject it from TIME-WAIT)?  Its SYN-ACK says so, or,
    when the capture lost that, the replay taking it from SYN-RECEIVED into the new connection."""
    if any(s.segment.sender is holder and s.segment.syn and s.segment.has_ack for s in ctx.steps):
        return True
    return any(
        t.endpoint is holder
        and t.from_state is State.SYN_RECEIVED
        and t.to_state in (State.ESTABLISHED, State.FIN_WAIT_1, State.CLOSE_WAIT)
        for t in ctx.replay.transitions
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """A reopening's verdict in words (``verdict``), as a Reuse carries it."""

    safeguard: str | None = None
    unsafe: str = ""
    unknown: bool = False


def _time_waits(replay: Replay) -> list[tuple[Side, float, int]]:
    """Every TIME-WAIT of the old incarnation, except those a RST ended (time-wait-assassination)."""
    # Hand-built replays may set only ``time_wait``; the replay engine fills both.
    held = replay.time_waits or ([replay.time_wait] if replay.time_wait else [])
    if held:
        return [(tw.endpoint, tw.entered_time, tw.entered_frame) for tw in held if tw.ended_by != "rst"]
    return [(t.endpoint, t.time, t.frame) for t in replay.transitions if t.to_state is State.TIME_WAIT]


# What the safeguards make of a reopening (``verdict_code``): the first three are safe, the last
# three unsafe.
TS_NEWER, TS_EQUAL_ISN_ABOVE, ISN_ABOVE = 1, 2, 3  # RFC 6191 §2, RFC 6191 §2, RFC 9293 §3.6.1
TS_NOT_NEWER, ISN_NOT_ABOVE, NO_NEWER_TS = 4, 5, 6
UNKNOWN = 7  # the snap length cut the options that would tell
SAFE = frozenset({TS_NEWER, TS_EQUAL_ISN_ABOVE, ISN_ABOVE})
UNSAFE = frozenset({TS_NOT_NEWER, ISN_NOT_ABOVE, NO_NEWER_TS})


def verdict_code(
    syn_cut: bool, ts_val: int | None, last_ts: int | None, old_cut: bool, received: bool, isn: int, old_end: int | None
) -> int:
    """Which safeguard holds, if any.  ``received``: the SYN's receiver held TIME-WAIT (RFC 6191 and
    the ISN rule are its test); ``ts_val``, ``isn``, ``syn_cut``: the SYN's TSval, ISN, whether the
    snap length cut it; ``last_ts``, ``old_end``, ``old_cut``: what the SYN's sender sent in the old
    incarnation, its last TSval, the largest sequence number it used, whether one was cut.
    reopened.verdict_codes is this over columns."""
    # Options cut by the snap length read as "no timestamp": the capture cannot tell which branch of
    # RFC 6191 applies, so neither a safeguard nor its absence is proven.
    if (syn_cut and ts_val is None) or (last_ts is None and old_cut):
        return UNKNOWN
    isn_above = _isn_above(isn, old_end)
    if ts_val is not None and last_ts is not None:
        if _after(ts_val, last_ts):
            return TS_NEWER
        if ts_val == last_ts and received and isn_above:
            # RFC 6191 §2: equal timestamp and a higher sequence number: "honor the connection request".
            return TS_EQUAL_ISN_ABOVE
        return TS_NOT_NEWER
    if received and old_end is not None:
        return ISN_ABOVE if isn_above else ISN_NOT_ABOVE
    return NO_NEWER_TS


def verdict(code: int, ts_val: int | None, last_ts: int | None, received: bool, isn: int, old_end: int | None) -> Verdict:
    """The verdict ``code`` in words, with the numbers it rests on."""
    if code == UNKNOWN:
        return Verdict(unknown=True)
    if code == TS_NEWER:
        return Verdict(f"its TSval {ts_val} is newer than the old connection's {last_ts} (RFC 6191)")
    if code == NO_NEWER_TS:
        return Verdict(unsafe="it carried no newer timestamp, the only safeguard for an endpoint reopening the tuple itself")
    isn_above = _isn_above(isn, old_end)
    isn_text = f"its ISN {isn} is {'' if isn_above else 'not '}above the old connection's last sequence number {old_end}"
    if code == TS_EQUAL_ISN_ABOVE:
        return Verdict(f"its TSval equals the old connection's last ({last_ts}) and {isn_text} (RFC 6191 §2)")
    if code == TS_NOT_NEWER:
        relation = "equal to" if ts_val == last_ts else "older than"
        reason = f"its TSval {ts_val} is {relation} the old connection's last {last_ts}"
        return Verdict(unsafe=reason + (f" and {isn_text}" if ts_val == last_ts and received else ""))
    if code == ISN_ABOVE:
        return Verdict(f"{isn_text} (RFC 9293 §3.6.1)")
    if code == ISN_NOT_ABOVE:
        return Verdict(unsafe=f"it carried no timestamp to compare and {isn_text}")
    raise ValueError(f"not a verdict code: {code}")


def _isn_above(isn: int, old_end: int | None) -> bool:
    return old_end is not None and (_after(isn, old_end) or isn == old_end)


@dataclass(frozen=True, slots=True)
class Sent:
    """What the safeguards read of what one side sent in the old incarnation."""

    end: int | None  # the largest sequence number it used (None: it sent nothing)
    last_ts: int | None  # the TSval of its last segment with a timestamp (None: none had one)
    truncated: bool  # the snap length cut one of its segments


def _sent(old: Connection, side: int) -> Sent:
    # Lists, not numpy: an old incarnation has a handful of rows, where each numpy call costs more
    # than the whole loop.
    rows = old.rows
    end = last_ts = None
    truncated = False
    for sender, seq, length, flags, has_ts, ts_val, cut in zip(
        old.sender.tolist(), old.seq.tolist(), rows["payload_len"].tolist(), rows["flags"].tolist(),
        rows["has_ts"].tolist(), rows["ts_val"].tolist(), rows["truncated"].tolist(),
    ):  # fmt: skip
        if sender != side:
            continue
        top = seq + length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        end = top if end is None or top > end else end
        if has_ts:
            last_ts = ts_val
        truncated = truncated or cut
    return Sent(None if end is None else end & _MASK, last_ts, truncated)


def _after(a: int, b: int) -> bool:
    """a later than b in 32-bit sequence (or timestamp) arithmetic (RFC 9293 §3.4, RFC 7323 §5.2)."""
    return 0 < ((a - b) & _MASK) < _HALF
