"""Replay one connection: both endpoints through the reference state machine, event by event.

The stages inside, each a function of its own module:

1. facts.py     plain facts per segment (retransmission, duplicate, ACK of a FIN, ACK of unseen data);
2. vantage.py   where the capture was taken, and how far each endpoint sat from it;
3. delivery.py  which captured segments never reached their receiver;
4. timeline.py  the order in which the endpoints sent and received the segments;
5. machine.py   each event applied to its endpoint's control block (RFC 9293 §3.10);

then the steps, transitions, TIME-WAIT, anomalies and the kind of close are gathered here.

Fast path: not replaying at all.  Captures of test runs hold tens of thousands of short, clean
connections of a handful of shapes, with about as many control segments as segments, so running
the machine on control segments only would save little.  Instead ``replay.shape`` gives each
eligible connection (exactly in-order sequence numbers, every ACK at the end of a segment its peer
sent, every SYN and FIN acknowledged, windows zero or larger than the peer's span, ...) a key of
everything this replay and the checks read from it but frames, times and byte counts, computed with
numpy for all connections at once; ``replay.memo`` replays and checks the first connection of each
key here, and when that found no anomaly makes the others' Replays from it, reading only their
frames and times: without steps and without checks when the first found nothing and the connection
is a first incarnation (the fast lane), else with their steps, and then only the rules that found
something in the first (all of them when one read the capture's end for it) and the rules reading
the previous incarnation run (the checked lane).
shape.py's docstring argues the key's soundness input by input; tests/test_fastlane_equivalence.py
holds the memo to this replay on every sample, the bench capture and generated conversations.

For the connections replayed here: each column is converted to a Python list once per connection
(``connections.segment_columns``) and the Segment objects, the vantage point, the unseen holes and,
for connections of up to ``timeline.SMALL_CONNECTION`` segments, the event keys are computed from
those lists; numpy's fixed cost per call dominated the short connections that make up most
captures.  tests/test_replay_equivalence.py holds each list path to its numpy reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..connections import Connection, segment_columns, segment_list
from ..profiles import Profile
from ..segments import ACK, RST, SYN, Segment, Side
from .delivery import undelivered
from .facts import (
    LostFin,
    Notes,
    add_note,
    find_controls,
    lost_fins,
    sequence_notes,
    unseen_acks,
    unseen_synack,
)
from .machine import (
    RFC_TIME_WAIT_TIMEOUT,
    Outcome,
    Tcb,
    infer_from_own_ack,
    on_receive,
    on_send,
    receive_lost_ack,
    receive_lost_fin,
    send_lost_fin,
)
from .model import (
    ANOMALY_ACK_OF_UNSENT,
    ANOMALY_ACK_UNSEEN_DATA,
    ANOMALY_MIDSTREAM_START,
    ANOMALY_ONE_DIRECTION_MISSING,
    ANOMALY_UNEXPECTED_SEGMENT,
    NOTE_RST_OUT_OF_WINDOW,
    NOTE_STATE_DROPPED,
    NOTE_TIME_WAIT_RESTART,
    Anomaly,
    Close,
    Replay,
    State,
    Step,
    TimeWait,
    Transition,
    Vantage,
)
from .timeline import SEND, event_order
from .vantage import infer_vantage

SIDES = (Side.CLIENT, Side.SERVER)
UNKNOWN_WINDOW_SHIFT = 14  # no SYN seen: the scale is unknown, so assume the largest (RFC 7323 §2.3)
_NO_NOTES: frozenset[str] = frozenset()


@dataclass(slots=True)
class TimeWaitClock:
    """One endpoint's TIME-WAIT: when it began, the 2*MSL deadline, how it ended."""

    entered_time: float
    entered_frame: int
    started_frame: int  # the segment that (re)started the timer
    deadline: float
    restarts: list[float] = field(default_factory=list)
    ended_time: float | None = None
    ended_by: str = "running"


def replay(
    connection: Connection,
    profile: Profile,
    capture_end: float | None = None,
    order: list[tuple[int, int]] | None = None,
) -> Replay:
    """Replay ``connection``; ``capture_end`` (default: its last segment) bounds TIME-WAIT expiry.

    ``order``: the connection's ``timeline.event_order`` when the caller already computed it
    (replay.memo does on a key miss); it must be exactly that order."""
    return _Replayer(connection, profile, capture_end, order).run()


def capture_end_parameters(profile: Profile) -> tuple[float, ...]:
    """How long after one of its segments' times the replay compares the capture's end with: only
    the TIME-WAIT deadline (``_expire``).  The replay memo keys connections by these alone."""
    return (profile.time_wait,)


class _Replayer:
    def __init__(
        self, conn: Connection, profile: Profile, capture_end: float | None, order: list[tuple[int, int]] | None = None
    ):
        self.conn = conn
        self.order = order
        self.profile = profile
        self.columns = segment_columns(conn)
        self.segments: list[Segment] = segment_list(conn, self.columns)
        last = conn.end if self.segments else 0.0
        self.capture_end = last if capture_end is None else max(capture_end, last)
        self.transitions: list[Transition] = []
        self.anomalies: list[Anomaly] = []
        self.notes: Notes = {}
        self.clocks: list[TimeWaitClock | None] = [None, None]
        self.time_waits: list[tuple[int, TimeWaitClock]] = []
        self.lost_fins: list[LostFin] = []

    def run(self) -> Replay:
        conn, segments = self.conn, self.segments
        n = len(segments)
        if n == 0:
            return Replay(conn.id, [], [], [], {s: State.CLOSED for s in SIDES}, Close.INCOMPLETE, Vantage.UNKNOWN)
        controls = find_controls(segments)
        vantage, legs = infer_vantage(conn, self.columns)
        sequence_notes(segments, conn, controls, self.notes)
        self.anomalies.extend(self._capture_anomalies())
        synack = unseen_synack(segments, controls)
        if synack is not None:
            self.anomalies.append(synack)
        self.anomalies.extend(unseen_acks(segments, conn, self.notes, self.columns))
        lost = undelivered(segments, controls, legs)
        silent = self._silent_side()
        tcbs = self._initial_tcbs(silent)
        rst_aborts = _rst_aborts(segments, self.columns.sender)
        one_way = _OneWay(segments, silent) if silent is not None else None
        if silent is not None:
            for i in _rst_beyond_any_window(segments):
                # Out of window, the receiver ignored it (§3.10.7.4 first check): not an abort.
                add_note(self.notes, i, NOTE_RST_OUT_OF_WINDOW)
                rst_aborts[i] = False
        unsent = {a.frame for a in self.anomalies if a.kind == ANOMALY_ACK_OF_UNSENT}
        self.lost_fins = lost_fins(segments, controls)
        self.anomalies.extend(_rst_proven_fins(segments, self.lost_fins))
        fins_lost: dict[int, list[LostFin]] = {}
        # One segment can prove both FINs (a RST carrying SND.NXT past its own and acking the
        # peer's): the one answering the other's FIN goes second.
        for lost_fin in sorted(self.lost_fins, key=lambda f: f.acks_peer_fin is not None):
            fins_lost.setdefault(lost_fin.proof, []).append(lost_fin)

        # What each segment's sender went through (two lists: one tuple per event costs more).
        sender_before: list[State | None] = [None] * n
        sender_after: list[State | None] = [None] * n
        receiver_states: list[tuple[State, State] | None] = [None] * n
        last_received: list[tuple[int, int] | None] = [None, None]  # (segment, transitions position)
        sender_of = self.columns.sender
        clocks = self.clocks
        out = Outcome()
        order = self.order if self.order is not None else event_order(conn, controls, legs, self.columns)
        for kind, i in order:
            seg = segments[i]
            if fins_lost and i in fins_lost:
                for lost_fin in fins_lost.pop(i):
                    self._lost_fin(lost_fin, tcbs, seg, silent)
            side = sender_of[i] if kind == SEND else 1 - sender_of[i]
            tcb = tcbs[side]
            if clocks[side] is not None:
                self._expire(side, tcb, seg.time)
            before = tcb.state
            if side == silent:
                pass  # nothing it sent was captured: what it went through is unknown
            elif kind == SEND:
                if one_way is not None:
                    one_way.before_send(tcb, seg, out)
                on_send(tcb, seg, out, rst_aborts=rst_aborts[i])
            elif i not in lost:
                on_receive(tcb, seg, out, ack_of_unsent=seg.frame in unsent)
            if out.changes or out.notes:
                if out.changes and NOTE_STATE_DROPPED in out.notes and kind == SEND:
                    before = self._drop_at_trigger(side, seg, out, last_received[side], receiver_states)
                else:
                    self._record(side, seg, out, i)
            if kind == SEND:
                sender_before[i], sender_after[i] = before, tcb.state
            else:
                if i not in lost:
                    last_received[side] = (i, len(self.transitions))
                receiver_states[i] = (before, tcb.state)
            if out.unexpected:
                self._unexpected(seg, out.unexpected, tcbs, kind == SEND)
            if out.changes or out.notes or out.unexpected:
                out = Outcome()  # most events change nothing: their Outcome is reused
        for side, tcb in enumerate(tcbs):
            self._expire(side, tcb, self.capture_end)

        notes = self.notes
        steps = [
            Step(
                seg,
                sender_before[i],
                sender_after[i],
                receiver_states[i][0],
                receiver_states[i][1],
                frozenset(notes[i]) if i in notes else _NO_NOTES,
                i not in lost,
            )
            for i, seg in enumerate(segments)
        ]
        if any(a.capture_quality for a in self.anomalies):
            # What the machine could not explain may be what the capture did not show.
            self.anomalies = [
                replace(a, capture_quality=True) if a.kind == ANOMALY_UNEXPECTED_SEGMENT else a for a in self.anomalies
            ]
        time_waits = [self._time_wait(side, clock) for side, clock in self.time_waits]
        return Replay(
            connection_id=conn.id,
            steps=steps,
            transitions=self.transitions,
            anomalies=self.anomalies,
            final_state={SIDES[s]: tcbs[s].state for s in (0, 1)},
            close=_close(tcbs, self._fins_acked(controls, tcbs, silent)),
            vantage=vantage,
            time_wait=time_waits[0] if time_waits else None,
            time_waits=time_waits,
        )

    # --- set-up ---------------------------------------------------------------------------------

    def _silent_side(self) -> int | None:
        """The side none of whose segments were captured, while the other side's ACKs show it talked."""
        sender = self.columns.sender
        for side in (0, 1):
            if side not in sender and any(f & ACK and not f & RST for f in self.columns.flags):
                return side
        return None

    def _fins_acked(self, controls, tcbs: list[Tcb], silent: int | None) -> tuple[bool, bool]:
        acked = list(controls_acked(self.segments, controls, self.columns.sender))
        for lost in self.lost_fins:
            if lost.acked:
                acked[lost.side] = True  # the ACK that proves the FIN acknowledges it
            if lost.acks_peer_fin is not None:
                acked[1 - lost.side] = True  # the lost FIN carried that ACK
        if silent is not None:
            # Only the seen side's own ACKs and FIN tell: its inferences are all there is.
            seen = 1 - silent
            acked[seen] = tcbs[seen].fin_acked
            acked[silent] = tcbs[seen].fin_received
        return acked[0], acked[1]

    def _initial_tcbs(self, silent: int | None) -> list[Tcb]:
        sides, flags = self.columns.sender, self.columns.flags
        client_syn = any(side == 0 and f & SYN and not f & ACK for side, f in zip(sides, flags))
        server_first = next((f for side, f in zip(sides, flags) if side == 1), None)
        server_synack = server_first is not None and bool(server_first & SYN) and bool(server_first & ACK)
        client_acks = any(side == 0 and f & ACK and not f & RST for side, f in zip(sides, flags))
        if client_syn:
            client = State.CLOSED
            # A listener answers a SYN with SYN-ACK; a closed port with RST (§3.10.7.1).  A client
            # ACK proves a SYN-ACK (facts.unseen_synack) even when the capture lost it.
            # (A server whose first segment is a bare SYN opened simultaneously: §3.5 Figure 8.)
            listening = server_synack or (client_acks and (server_first is None or not server_first & (RST | SYN)))
            server = State.LISTEN if listening else State.CLOSED
        else:
            client = State.UNKNOWN
            server = State.LISTEN if server_synack else State.UNKNOWN
        tcbs = [Tcb(client), Tcb(server)]
        if silent is not None:
            tcbs[silent].state = State.UNKNOWN
        shifts = self._window_shifts()
        for tcb, shift in zip(tcbs, shifts):
            tcb.window_shift = shift
        return tcbs

    def _window_shifts(self) -> tuple[int, int]:
        """RFC 7323 §2.2: scaling applies only when both SYNs carried the option."""
        offered: list[int | None] = [None, None]
        saw_syn = [False, False]
        for seg in self.segments:
            if seg.flags & SYN:
                side = _index(seg.sender)
                saw_syn[side] = True
                if seg.wscale is not None:
                    offered[side] = min(seg.wscale, 14)
        if not any(saw_syn):
            return UNKNOWN_WINDOW_SHIFT, UNKNOWN_WINDOW_SHIFT
        if offered[0] is None or offered[1] is None:
            return 0, 0
        return offered[0], offered[1]

    def _capture_anomalies(self) -> list[Anomaly]:
        segments = self.segments
        found = []
        first = segments[0]
        if not (first.syn and not first.has_ack):
            found.append(
                Anomaly(
                    kind=ANOMALY_MIDSTREAM_START,
                    frame=first.frame,
                    time=first.time,
                    endpoint=None,
                    capture_quality=True,
                    detail={"first_flags": first.flag_text, "first_sender": first.sender.value},
                )
            )
        silent = self._silent_side()
        if silent is not None:
            found.append(
                Anomaly(
                    kind=ANOMALY_ONE_DIRECTION_MISSING,
                    frame=first.frame,
                    time=first.time,
                    endpoint=SIDES[silent],  # whose segments are missing
                    capture_quality=True,
                    detail={"missing": SIDES[silent].value, "seen": len(segments)},
                )
            )
        return found

    # --- per event ------------------------------------------------------------------------------

    def _record(self, side: int, seg: Segment, out: Outcome, i: int) -> None:
        for note in out.notes:
            add_note(self.notes, i, note)
        for change in out.changes:
            self.transitions.append(
                Transition(
                    seg.time, seg.frame, SIDES[side], change.from_state, change.to_state, change.cause, change.rfc
                )
            )
            if change.to_state is State.TIME_WAIT:
                clock = TimeWaitClock(seg.time, seg.frame, seg.frame, seg.time + self.profile.time_wait)
                self.clocks[side] = clock
                self.time_waits.append((side, clock))
            elif change.from_state is State.TIME_WAIT and self.clocks[side] is not None:
                clock = self.clocks[side]
                clock.ended_time = seg.time
                clock.ended_by = "rst"
                self.clocks[side] = None
        clock = self.clocks[side]
        if NOTE_TIME_WAIT_RESTART in out.notes and clock is not None:
            clock.restarts.append(seg.time)
            clock.started_frame = seg.frame
            clock.deadline = seg.time + self.profile.time_wait

    def _lost_fin(self, lost: LostFin, tcbs: list[Tcb], proof: Segment, silent: int | None) -> None:
        """Before the segment proving a FIN the capture lost: the FIN was sent and is on its way.

        A FIN that answered the peer's FIN (``acks_peer_fin``) came after its sender took that FIN,
        and its ACK took the peer's FIN out of FIN-WAIT-1 before the peer took this one.
        """
        acker = 1 - lost.side
        if lost.side != silent:
            out = Outcome()
            if lost.acks_peer_fin is not None:
                receive_lost_fin(tcbs[lost.side], lost.acks_peer_fin, out)
            send_lost_fin(tcbs[lost.side], lost.position, out)
            self._record(lost.side, proof, out, proof.index)
        if acker == silent or not lost.acked:
            return
        out = Outcome()
        if lost.acks_peer_fin is not None:
            receive_lost_ack(tcbs[acker], lost.acks_peer_fin + 1, out)
        if proof.rst:
            # A RST's ACK field says what arrived, but the machine reads no ACK from a RST it sends.
            receive_lost_fin(tcbs[acker], lost.position, out)
        elif tcbs[acker].peer_fin is None:
            tcbs[acker].peer_fin = lost.position
        if out.changes or out.notes:
            self._record(acker, proof, out, proof.index)

    def _drop_at_trigger(
        self,
        side: int,
        rst: Segment,
        out: Outcome,
        trigger: tuple[int, int] | None,
        receiver_states: list[tuple[State, State] | None],
    ) -> State:
        """A RST from TIME-WAIT: the endpoint had dropped the connection by the segment it answers.

        Returns the state before the RST was sent.
        """
        change = out.changes[0]
        clock = self.clocks[side]
        self.clocks[side] = None
        at, position = rst, len(self.transitions)
        if trigger is not None and receiver_states[trigger[0]] is not None:
            j, position = trigger
            if receiver_states[j][1] is State.TIME_WAIT:
                at = self.segments[j]
                receiver_states[j] = (receiver_states[j][0], State.CLOSED)
                add_note(self.notes, j, NOTE_STATE_DROPPED)
                if NOTE_TIME_WAIT_RESTART in self.notes.get(j, ()):
                    self.notes[j].discard(NOTE_TIME_WAIT_RESTART)
                    if clock is not None and clock.restarts and clock.restarts[-1] == at.time:
                        clock.restarts.pop()
            else:
                position = len(self.transitions)
        self.transitions.insert(
            position,
            Transition(at.time, at.frame, SIDES[side], change.from_state, change.to_state, change.cause, change.rfc),
        )
        for note in out.notes - {NOTE_STATE_DROPPED}:
            add_note(self.notes, rst.index, note)
        if at is rst:
            add_note(self.notes, rst.index, NOTE_STATE_DROPPED)
        if clock is not None:
            clock.ended_time = at.time
            clock.ended_by = "dropped"
        return State.CLOSED if at is not rst else change.from_state

    def _expire(self, side: int, tcb: Tcb, now: float) -> None:
        """§3.10.8: "If the time-wait timeout expires on a connection, delete the TCB"."""
        clock = self.clocks[side]
        if clock is None or tcb.state is not State.TIME_WAIT or now < clock.deadline:
            return
        self.transitions.append(
            Transition(
                clock.deadline,
                clock.started_frame,
                SIDES[side],
                State.TIME_WAIT,
                State.CLOSED,
                "2*MSL expired",
                RFC_TIME_WAIT_TIMEOUT,
            )
        )
        tcb.state = State.CLOSED
        clock.ended_time = clock.deadline
        clock.ended_by = "expired"
        self.clocks[side] = None

    def _unexpected(self, seg: Segment, reason: str, tcbs: list[Tcb], sent: bool) -> None:
        receiver = tcbs[1 - _index(seg.sender)]
        self.anomalies.append(
            Anomaly.sent_in(
                seg,
                ANOMALY_UNEXPECTED_SEGMENT,
                capture_quality=False,
                detail={
                    "reason": reason,
                    "at": "sender" if sent else "receiver",
                    "flags": seg.flag_text,
                    "client_state": tcbs[0].state.value,
                    "server_state": tcbs[1].state.value,
                    "seq": seg.rel_seq,
                    "ack": seg.rel_ack,
                    "expected_seq": None if receiver.rcv_nxt is None else receiver.rcv_nxt - self.conn.base(seg.sender),
                    "expected_ack": _expected_ack(receiver, self.conn, seg),
                },
            )
        )

    def _time_wait(self, side: int, clock: TimeWaitClock) -> TimeWait:
        return TimeWait(
            endpoint=SIDES[side],
            entered_time=clock.entered_time,
            entered_frame=clock.entered_frame,
            duration=self.profile.time_wait,
            ended_time=clock.ended_time,
            ended_by=clock.ended_by,
            restarted_time=clock.restarts[-1] if clock.restarts else None,
        )


def _index(side: Side) -> int:
    return 0 if side is Side.CLIENT else 1


def _rst_beyond_any_window(segments: list[Segment]) -> list[int]:
    """One-direction capture: RSTs no receiver could accept, judged from their sender's side alone.

    The receiver's RCV.NXT is at most the sender's SND.NXT (it cannot have received more than was
    sent) and its window at most 65535 << 14 (RFC 7323 §2.3), or 65535 when the sender's SYN offered
    no scaling (§2.2: both SYNs must carry it).  A RST at or past SND.NXT plus that window fails
    the acceptability test (RFC 9293 §3.10.7.4) whatever the unseen receiver's state.
    """
    shift = 0 if any(s.flags & SYN and s.wscale is None for s in segments) else 14
    beyond = 65535 << shift
    found = []
    snd_nxt: int | None = None
    for seg in segments:
        if seg.flags & RST:
            if snd_nxt is not None and seg.seq >= snd_nxt + beyond:
                found.append(seg.index)
        elif seg.seg_len:
            end = seg.seq + seg.seg_len
            snd_nxt = end if snd_nxt is None else max(snd_nxt, end)
    return found


def _rst_proven_fins(segments: list[Segment], found: list[LostFin]) -> list[Anomaly]:
    """A capture gap for each lost FIN only a RST proves (facts.unseen_acks reads no RST)."""
    anomalies = []
    proofs = set()
    for lost in found:
        proof = segments[lost.proof]
        if proof.rst and lost.proof not in proofs:
            proofs.add(lost.proof)
            anomalies.append(
                Anomaly.sent_in(
                    proof,
                    ANOMALY_ACK_UNSEEN_DATA,
                    capture_quality=True,
                    detail={"unseen": "FIN", "proved_by": "RST"},
                )
            )
    return anomalies


def _rst_aborts(segments: list[Segment], sender: list[int] | None = None) -> list[bool]:
    """A RST aborts its sender's connection unless the sender goes on sending other segments."""
    aborts = [True] * len(segments)
    still_talking = [False, False]
    for seg in reversed(segments):
        side = _index(seg.sender) if sender is None else sender[seg.index]
        if seg.flags & RST:
            aborts[seg.index] = not still_talking[side]
        else:
            still_talking[side] = True
    return aborts


class _OneWay:
    """Inference for a capture holding one side's segments only: that side's ACKs show the rest.

    The peer's FIN shows as the last forward step of our ACK being exactly one, with no data
    from the peer in between (none is visible): a FIN occupies one sequence number.
    """

    def __init__(self, segments: list[Segment], silent: int):
        acks = [s.ack for s in segments if _index(s.sender) != silent and s.has_ack and not s.rst and not s.syn]
        self.peer_fin: int | None = None
        if len(acks) >= 2:
            top = max(acks)
            first = acks.index(top)
            if first > 0 and acks[first - 1] == top - 1:
                self.peer_fin = top - 1
        self.last_ack: int | None = None

    def before_send(self, tcb: Tcb, seg: Segment, out: Outcome) -> None:
        if not seg.has_ack or seg.rst or seg.syn:
            return
        advanced = self.last_ack is not None and seg.ack > self.last_ack
        self.last_ack = seg.ack if self.last_ack is None else max(self.last_ack, seg.ack)
        infer_from_own_ack(tcb, seg.ack, advanced, self.peer_fin, out)


def _expected_ack(receiver: Tcb, conn: Connection, seg: Segment) -> int | None:
    """What an acceptable ACK from the sender would carry: the receiver's SND.NXT, relative."""
    if receiver.snd_nxt is None:
        return None
    return receiver.snd_nxt - conn.base(seg.sender.peer)


def controls_acked(segments: list[Segment], controls, sender: list[int] | None = None) -> tuple[bool, bool]:
    """Was each side's FIN acknowledged by the peer (ACK >= FIN + 1), delivered or not?"""
    acked = [False, False]
    if controls.fin == (None, None):
        return False, False
    sides = sender if sender is not None else [_index(s.sender) for s in segments]
    # The highest ACK each side sent (RSTs aside): a FIN is acknowledged when the peer's top is past it.
    top: list[int | None] = [None, None]
    for seg, side in zip(segments, sides):
        if seg.flags & ACK and not seg.flags & RST and (top[side] is None or seg.ack > top[side]):
            top[side] = seg.ack
    for side in (0, 1):
        fin, peer_top = controls.fin[side], top[1 - side]
        acked[side] = fin is not None and peer_top is not None and peer_top > fin
    return acked[0], acked[1]


def _close(tcbs: list[Tcb], fins_acked: tuple[bool, bool]) -> Close:
    """The close categories of model.Close, in order of precedence."""
    if any(t.refused for t in tcbs):
        return Close.REFUSED
    if not any(t.synchronized for t in tcbs):
        return Close.INCOMPLETE
    # A RST that tore down an endpoint still closing makes the close abortive even after both
    # FINs were acknowledged (the final ACK lost, the retransmitted FIN answered by RST).
    if any(t.reset for t in tcbs):
        return Close.ABORTIVE
    if all(fins_acked):
        return Close.GRACEFUL
    return Close.OPEN
