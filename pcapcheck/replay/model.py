"""What a replay produces: the seam between the state machine and the checks.

The replay walks one connection's segments and infers the state of *both* endpoints over time.
For every segment it records a ``Step`` (the states around it and plain facts about it, the
``notes``); every state change is a ``Transition``; what the state machine cannot explain is an
``Anomaly``.  Checks (pcapcheck.checks) read only these and the connection; they never re-run the
state machine.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableSequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, overload

from ..segments import Segment, Side


class State(str, Enum):
    """RFC 9293 §3.3.2 connection states, named as the RFC writes them."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"
    UNKNOWN = "UNKNOWN"  # mid-stream pickup before anything tells the state

    def __str__(self) -> str:
        return self.value


class Vantage(str, Enum):
    """Where the capture was taken, inferred from handshake timing (as tcptrace/Wireshark do)."""

    CLIENT = "client"  # SYN -> SYN-ACK gap large, SYN-ACK -> ACK gap tiny
    SERVER = "server"  # the reverse
    MIDDLE = "middle"  # both legs long and comparable, or both sides' TTLs forwarded
    UNKNOWN = "unknown"  # legs within timer noise (one host, loopback), unmeasured, or contradicted by TTL


class Close(str, Enum):
    """How a connection ended, for summaries."""

    GRACEFUL = "graceful"  # FIN both ways, both FINs acknowledged
    ABORTIVE = "abortive"  # torn down by RST after being established
    REFUSED = "refused"  # SYN answered by RST
    INCOMPLETE = "incomplete"  # handshake never completed
    OPEN = "open"  # still open (or half-closed) when the capture ended


# Facts a Step may carry in ``notes``.  The replay emits them; checks read them.
NOTE_RETRANSMISSION = "retransmission"  # sequence space already sent by this side (SYN, FIN or data)
NOTE_DUPLICATE = "duplicate"  # exact duplicate of an earlier segment (same seq, ack, flags, len)
NOTE_OUT_OF_WINDOW = "out-of-window"  # fails the receiver's acceptability test (RFC 9293 §3.10.7.4)
NOTE_ACKS_FIN = "acks-fin"  # ack == peer's FIN seq + 1: acknowledges the peer's FIN
NOTE_ACKS_UNSEEN = "acks-unseen"  # acknowledges sequence space never seen from the peer (capture loss)
NOTE_RST_EXACT = "rst-exact"  # RST with seq == RCV.NXT (RFC 5961 §3.2)
NOTE_RST_IN_WINDOW = "rst-in-window"  # RST in window but not exact (RFC 5961 challenge ACK case)
NOTE_RST_OUT_OF_WINDOW = "rst-out-of-window"
NOTE_BEFORE_CAPTURE_KNOWLEDGE = "unexplained-by-capture"  # explained only by packets the capture missed
NOTE_NEW_INCARNATION_SYN = "new-incarnation-syn"  # SYN that started this incarnation on a reused tuple
NOTE_STATE_DROPPED = "state-dropped"  # the receiver no longer held the connection: it answered with RST
NOTE_TIME_WAIT_RESTART = "time-wait-restart"  # retransmitted FIN re-ACKed in TIME-WAIT, 2*MSL restarted

# Anomaly kinds the replay records (Anomaly.kind).
ANOMALY_MIDSTREAM_START = "midstream-start"
ANOMALY_ACK_UNSEEN_DATA = "ack-unseen-data"
ANOMALY_ONE_DIRECTION_MISSING = "one-direction-missing"
ANOMALY_UNEXPECTED_SEGMENT = "unexpected-segment"
# The acked side's RST (seq = that ACK) says it never sent it; only before that side was
# synchronized (§3.10.7.3): a synchronized endpoint's RST carries SND.NXT.
ANOMALY_ACK_OF_UNSENT = "ack-of-unsent"


class Transition(NamedTuple):
    """One endpoint moved from one state to another.

    A NamedTuple, not a frozen dataclass: a capture of a test run makes millions of them (replay,
    the memoised replay, the partitioned store reading reports back), and a tuple is built four
    times faster.
    """

    time: float
    frame: int
    endpoint: Side
    from_state: State
    to_state: State
    cause: str  # e.g. "sent FIN", "received ACK of FIN", "2*MSL expired", "received RST"
    rfc: str = ""  # section that defines this transition, e.g. "RFC 9293 §3.10.7.4"


class PatternMove(NamedTuple):
    """A transition of a template (pcapcheck.replay.memo) with its time and frame left out: where in
    a connection's ``TemplatedTransitions.values`` they are."""

    time_at: int
    frame_at: int
    endpoint: Side
    from_state: State
    to_state: State
    cause: str
    rfc: str


class TransitionPattern:
    """The transitions every connection of one template goes through, shared by all of them.

    Equal by value (the store reads patterns back from other processes' files and merges equal
    ones); the hash is computed once.  Writers key their per-pattern text by identity.
    """

    __slots__ = ("moves", "_hash")

    def __init__(self, moves: tuple[PatternMove, ...]):
        self.moves = moves
        self._hash: int | None = None

    def __len__(self) -> int:
        return len(self.moves)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, TransitionPattern) and self.moves == other.moves

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(self.moves)
        return self._hash

    def __reduce__(self):
        return TransitionPattern, (self.moves,)


class TemplatedTransitions(MutableSequence[Transition]):
    """A templated connection's transitions: the shared pattern and the connection's own values.

    ``values`` holds, in the order the pattern's moves index them, the times of the segments the
    template reads (floats made from the capture's integer nanoseconds, so finite), their frames,
    then TIME-WAIT deadlines (a segment's time plus 2*MSL).  Transition objects are made only when
    read; tens of thousands of connections of a capture hold only this.  Reads behave as the
    ``list`` a replay makes; a write (end_time_wait_by_new_incarnation rewrites the previous
    incarnation's list) turns it into that list for good, and ``compact`` becomes False.
    """

    __slots__ = ("pattern", "values", "_list")

    def __init__(self, pattern: TransitionPattern, values: tuple):
        self.pattern = pattern
        self.values = values
        self._list: list[Transition] | None = None

    @property
    def compact(self) -> bool:
        """Still pattern and values (what the report writers format in one go)."""
        return self._list is None

    def _made(self) -> list[Transition]:
        values = self.values
        make = Transition._make
        return [make((values[m[0]], values[m[1]], *m[2:])) for m in self.pattern.moves]

    def _as_list(self) -> list[Transition]:
        if self._list is None:
            self._list = self._made()
        return self._list

    def __len__(self) -> int:
        return len(self.pattern.moves) if self._list is None else len(self._list)

    @overload
    def __getitem__(self, index: int) -> Transition: ...
    @overload
    def __getitem__(self, index: slice) -> list[Transition]: ...
    def __getitem__(self, index):
        if self._list is not None:
            return self._list[index]
        if isinstance(index, slice):
            return self._made()[index]
        m = self.pattern.moves[index]
        return Transition(self.values[m[0]], self.values[m[1]], *m[2:])

    def __iter__(self) -> Iterator[Transition]:
        return iter(self._list if self._list is not None else self._made())

    def __reversed__(self) -> Iterator[Transition]:
        return reversed(self._list if self._list is not None else self._made())

    def __setitem__(self, index, value) -> None:
        self._as_list()[index] = value

    def __delitem__(self, index) -> None:
        del self._as_list()[index]

    def insert(self, index: int, value: Transition) -> None:
        self._as_list().insert(index, value)

    def copy(self) -> "TemplatedTransitions | list[Transition]":
        if self._list is not None:
            return list(self._list)
        return TemplatedTransitions(self.pattern, self.values)

    def __eq__(self, other: object) -> bool:
        # As a list compares: with lists (and these), element by element; with nothing else.
        if isinstance(other, (list, TemplatedTransitions)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as the list it stands for

    def __repr__(self) -> str:
        return repr(list(self))

    def __reduce__(self):
        if self._list is not None:
            return list, (self._list,)
        return TemplatedTransitions, (self.pattern, self.values)


@dataclass(frozen=True, slots=True)
class Step:
    """The replay's view of one segment."""

    segment: Segment
    sender_before: State
    sender_after: State
    receiver_before: State
    receiver_after: State
    notes: frozenset[str] = frozenset()
    # Did the receiver (as inferred from the vantage point) get this segment?  False when a later
    # retransmission, or the peer's behaviour, proves it was lost after the capture point.
    delivered: bool = True


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A segment (or absence) the state machine cannot explain."""

    kind: str  # e.g. "midstream-start", "ack-unseen-data", "one-direction-missing", "unexpected-segment"
    frame: int
    time: float
    endpoint: Side | None  # who sent the unexplained thing, if anyone
    capture_quality: bool  # True: an artefact of the capture, not the endpoints' fault
    detail: dict = field(default_factory=dict)  # states of both sides, expected vs seen seq/ack, ...

    @classmethod
    def sent_in(cls, seg: Segment, kind: str, *, capture_quality: bool, detail: dict) -> "Anomaly":
        """An anomaly evidenced by ``seg``, sent by its sender."""
        return cls(kind, seg.frame, seg.time, seg.sender, capture_quality, detail)


@dataclass(frozen=True, slots=True)
class TimeWait:
    """TIME-WAIT held by one endpoint."""

    endpoint: Side
    entered_time: float
    entered_frame: int
    duration: float  # 2*MSL of the active profile
    ended_time: float | None  # when it ended (expiry or early end), None if still running at capture end
    ended_by: str  # "expired", "new-syn", "rst", "running", "would-have-expired", "dropped"
    # Last restart of the 2*MSL timer by a retransmitted FIN (RFC 9293 §3.10.7.4), None if never.
    restarted_time: float | None = None


@dataclass(slots=True)
class Replay:
    connection_id: int
    steps: list[Step]
    transitions: list[Transition]  # or, from a template (replay.memo), TemplatedTransitions
    anomalies: list[Anomaly]
    final_state: dict[Side, State]
    close: Close
    vantage: Vantage
    time_wait: TimeWait | None = None  # the first endpoint to enter TIME-WAIT
    # Every endpoint that entered TIME-WAIT (both after a simultaneous close), in order of entry.
    time_waits: list[TimeWait] = field(default_factory=list)
