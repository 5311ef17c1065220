"""The reference RFC 9293 state machine for one endpoint, as a capture lets us see it.

``Tcb`` is the observer's copy of the RFC's transmission control block (§3.3.1), holding only what
the captured segments reveal.  ``on_send`` applies a segment the endpoint sent, ``on_receive`` one it
received; both record what happened in an ``Outcome``.  Every state change names the RFC section
that defines it, and the tables below read like the RFC's event processing:

* sending a FIN is the CLOSE call (§3.10.4);
* the fifth check of §3.10.7.4 (the ACK field) moves the closing states once our FIN is acknowledged;
* the eighth check of §3.10.7.4 (the FIN bit) moves the states that can receive a FIN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..segments import ACK, FIN, RST, SYN, Segment
from .facts import fin_position
from .model import (
    NOTE_BEFORE_CAPTURE_KNOWLEDGE,
    NOTE_OUT_OF_WINDOW,
    NOTE_RST_EXACT,
    NOTE_RST_IN_WINDOW,
    NOTE_RST_OUT_OF_WINDOW,
    NOTE_STATE_DROPPED,
    NOTE_TIME_WAIT_RESTART,
    State,
)

RFC_OPEN = "RFC 9293 §3.10.1"
RFC_CLOSE = "RFC 9293 §3.10.4"
RFC_ABORT = "RFC 9293 §3.10.5"
RFC_CLOSED_STATE = "RFC 9293 §3.10.7.1"
RFC_LISTEN_STATE = "RFC 9293 §3.10.7.2"
RFC_SYN_SENT_STATE = "RFC 9293 §3.10.7.3"
RFC_OTHER_STATES = "RFC 9293 §3.10.7.4"
RFC_RST = "RFC 9293 §3.10.7.4; RFC 5961 §3.2"
RFC_RST_IN_TIME_WAIT = "RFC 9293 §3.10.7.4; RFC 1337"
RFC_TIME_WAIT_TIMEOUT = "RFC 9293 §3.10.8"
RFC_HALF_OPEN = "RFC 9293 §3.5.2"

S = State
SYNCHRONIZED = frozenset(
    {S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT, S.CLOSING, S.LAST_ACK, S.TIME_WAIT}
)
# CLOSE call (§3.10.4): the state an endpoint enters when it sends its FIN.
SEND_FIN = {S.ESTABLISHED: S.FIN_WAIT_1, S.SYN_RECEIVED: S.FIN_WAIT_1, S.CLOSE_WAIT: S.LAST_ACK}
# §3.10.7.4 fifth check: "if our FIN is now acknowledged".
OUR_FIN_ACKED = {S.FIN_WAIT_1: S.FIN_WAIT_2, S.CLOSING: S.TIME_WAIT, S.LAST_ACK: S.CLOSED}
# §3.10.7.4 eighth check: the peer's FIN.  FIN-WAIT-1 enters TIME-WAIT instead when our FIN has
# been ACKed "(perhaps in this segment)"; since the fifth check has then already moved it to
# FIN-WAIT-2, that case arrives here as FIN-WAIT-2.
PEER_FIN = {
    S.SYN_RECEIVED: S.CLOSE_WAIT,
    S.ESTABLISHED: S.CLOSE_WAIT,
    S.FIN_WAIT_1: S.CLOSING,
    S.FIN_WAIT_2: S.TIME_WAIT,
}

DEFAULT_WINDOW = 65535
HELD_LIMIT = 64  # out-of-order stretches remembered per endpoint


@dataclass(slots=True)
class Change:
    from_state: State
    to_state: State
    cause: str
    rfc: str


@dataclass(slots=True)
class Outcome:
    """What one segment did to one endpoint."""

    changes: list[Change] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)
    unexpected: str | None = None  # why the state machine cannot explain the segment


@dataclass(slots=True)
class Tcb:
    state: State
    passive: bool = False  # came from LISTEN: a RST in SYN-RECEIVED returns there (§3.10.7.4)
    iss: int | None = None
    snd_nxt: int | None = None
    fin_seq: int | None = None  # the sequence number our FIN occupies
    fin_acked: bool = False
    rcv_nxt: int | None = None
    rcv_wnd: int | None = None  # last window we advertised, scaled
    window_shift: int = 0  # our window scale (RFC 7323 §2.3), when both SYNs carried the option
    peer_fin: int | None = None  # the sequence number the peer's FIN occupies, once received
    fin_received: bool = False  # peer FIN processed (in order)
    held: list[tuple[int, int]] = field(default_factory=list)  # out-of-order stretches received
    synchronized: bool = False  # ever reached a synchronized state
    refused: bool = False  # our SYN was answered by an acceptable RST
    reset: bool = False  # torn down by a RST, sent or accepted

    def move(self, out: Outcome, to: State, cause: str, rfc: str) -> None:
        if to is self.state:
            return
        out.changes.append(Change(self.state, to, cause, rfc))
        self.state = to
        if to in SYNCHRONIZED:
            self.synchronized = True


# --- sending -----------------------------------------------------------------------------------


def on_send(tcb: Tcb, seg: Segment, out: Outcome, *, rst_aborts: bool = True) -> None:
    """``rst_aborts``: False for a RST after which the sender still sends other segments; it
    answered an unacceptable segment (§3.10.7.3, §3.10.7.4) and left its own state alone."""
    if tcb.state is S.UNKNOWN:
        _infer(tcb, seg, out, sent=True)
    # Flag bits read once (this runs for every captured segment): SYN, ACK, FIN, RST as in §3.1.
    flags = seg.flags
    if flags & RST:
        if rst_aborts:
            _send_rst(tcb, out)
        return
    syn, fin, has_ack = flags & SYN, flags & FIN, flags & ACK
    if has_ack:
        _learn_rcv_nxt(tcb, seg.ack, out)
    tcb.rcv_wnd = seg.window if syn else seg.window << tcb.window_shift
    if syn:
        _send_syn(tcb, seg, out)
    elif has_ack and tcb.state is S.SYN_SENT:
        # Only a SYN-SENT endpoint that got the peer's SYN acknowledges it (§3.10.7.3).
        tcb.move(out, S.ESTABLISHED, "acknowledged the peer's SYN (SYN-ACK not seen)", RFC_SYN_SENT_STATE)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    elif tcb.state is S.SYN_RECEIVED and tcb.passive and (fin or seg.length):
        # A listener hands the application only established connections, so data or a FIN from
        # it means the ACK of its SYN had arrived, whatever order the capture shows.
        tcb.move(out, S.ESTABLISHED, "sent data or FIN: the ACK of its SYN had arrived", RFC_OTHER_STATES)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    end_seq = seg.seq + seg.length + (1 if syn else 0) + (1 if fin else 0)
    if tcb.snd_nxt is None or end_seq > tcb.snd_nxt:
        tcb.snd_nxt = end_seq
    if fin:
        _send_fin(tcb, seg, out)
    elif seg.length and not syn:
        if tcb.state in (S.CLOSED, S.LISTEN, S.SYN_SENT):
            out.unexpected = f"data sent in {tcb.state}"
        elif tcb.fin_seq is not None and seg.seq >= tcb.fin_seq:
            out.unexpected = "data sent beyond the sender's own FIN"
    elif tcb.state is S.CLOSED and tcb.synchronized:
        out.unexpected = "segment sent after the connection was closed"


def _send_syn(tcb: Tcb, seg: Segment, out: Outcome) -> None:
    if tcb.iss is not None and seg.seq != tcb.iss:
        if not seg.has_ack and tcb.state in SYNCHRONIZED:
            _lost_connection(tcb, out)
        else:
            out.unexpected = "SYN with a different initial sequence number"
    tcb.iss = seg.seq
    if not seg.has_ack:
        if tcb.state is S.CLOSED:
            tcb.move(out, S.SYN_SENT, "sent SYN (active open)", RFC_OPEN)
        elif tcb.state is not S.SYN_SENT:
            out.unexpected = f"SYN sent in {tcb.state}"
        return
    if tcb.state is S.LISTEN:
        # A SYN-ACK answers a SYN: the listener received one the capture did not show arriving.
        tcb.passive = True
        tcb.move(out, S.SYN_RECEIVED, "answered a SYN not seen arriving", RFC_LISTEN_STATE)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    elif tcb.state is S.SYN_SENT:
        tcb.move(out, S.SYN_RECEIVED, "answered the peer's SYN (simultaneous open)", RFC_SYN_SENT_STATE)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    elif tcb.state in (S.CLOSED, S.UNKNOWN):
        out.unexpected = f"SYN-ACK sent in {tcb.state}"


def _lost_connection(tcb: Tcb, out: Outcome) -> None:
    """A synchronized endpoint sending a SYN with a new ISN had lost the connection (a crash or
    reboot): the half-open connection of §3.5.2 (Figure 10).  It is CLOSED and opens anew; its
    peer still holds the old connection and answers with a challenge ACK (RFC 5961 §4)."""
    tcb.move(out, S.CLOSED, "lost the connection: sent a SYN with a new ISN (half-open)", RFC_HALF_OPEN)
    tcb.snd_nxt = tcb.fin_seq = tcb.rcv_nxt = tcb.peer_fin = None
    tcb.fin_acked = tcb.fin_received = tcb.passive = False
    tcb.held.clear()


def _send_fin(tcb: Tcb, seg: Segment, out: Outcome) -> None:
    position = fin_position(seg)
    if tcb.fin_seq is None:
        tcb.fin_seq = position
        if tcb.state in SEND_FIN:
            tcb.move(out, SEND_FIN[tcb.state], "sent FIN", RFC_CLOSE)
        else:
            out.unexpected = f"FIN sent in {tcb.state}"
    elif position != tcb.fin_seq:
        out.unexpected = "FIN at a different sequence number than the first"


def send_lost_fin(tcb: Tcb, position: int, out: Outcome) -> None:
    """The peer acknowledged a FIN the capture lost (facts.lost_fins): the CLOSE call (§3.10.4)
    happened unseen."""
    if tcb.fin_seq is not None:
        return
    tcb.fin_seq = position
    tcb.snd_nxt = position + 1 if tcb.snd_nxt is None else max(tcb.snd_nxt, position + 1)
    if tcb.state in SEND_FIN:
        tcb.move(out, SEND_FIN[tcb.state], "sent FIN (not captured: the peer's ACK proves it)", RFC_CLOSE)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)


def receive_lost_fin(tcb: Tcb, position: int, out: Outcome) -> None:
    """The capture lost the peer's FIN, but this endpoint's acknowledgement of it (or its own FIN
    answering it, facts.lost_fins) proves it arrived: §3.10.7.4 eighth check."""
    if tcb.fin_received:
        return
    tcb.peer_fin = position
    tcb.rcv_nxt = position if tcb.rcv_nxt is None else max(tcb.rcv_nxt, position)
    if _take_fin(tcb, out):
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)


def receive_lost_ack(tcb: Tcb, ack: int, out: Outcome) -> None:
    """The peer's FIN the capture lost carried this ACK of our FIN (facts.lost_fins): §3.10.7.4
    fifth check."""
    if _receive_ack_moves(tcb, ack):
        _receive_ack(tcb, ack, out)
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)


def _receive_ack_moves(tcb: Tcb, ack: int) -> bool:
    return tcb.fin_seq is not None and not tcb.fin_acked and ack > tcb.fin_seq


def _send_rst(tcb: Tcb, out: Outcome) -> None:
    if tcb.state is S.TIME_WAIT:
        # TIME-WAIT answers a segment with an ACK (§3.10.7.4); only an endpoint that no longer holds
        # the connection answers with RST (§3.10.7.1).
        tcb.move(out, S.CLOSED, "answered with RST: TIME-WAIT state dropped", RFC_CLOSED_STATE)
        out.notes.add(NOTE_STATE_DROPPED)
    elif tcb.state in SYNCHRONIZED or tcb.state in (S.SYN_SENT, S.SYN_RECEIVED):
        tcb.reset = tcb.state in SYNCHRONIZED  # torn down after being established: abortive
        tcb.move(out, S.CLOSED, "sent RST (abort)", RFC_ABORT)


def _learn_rcv_nxt(tcb: Tcb, ack: int, out: Outcome) -> None:
    """The endpoint's own ACK tells what it has received, captured or not."""
    if tcb.rcv_nxt is not None and ack <= tcb.rcv_nxt:
        return
    tcb.rcv_nxt = ack
    _merge_held(tcb)
    if _take_fin(tcb, out):
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)


def infer_from_own_ack(tcb: Tcb, ack: int, advanced: bool, peer_fin: int | None, out: Outcome) -> None:
    """Only this endpoint's segments were captured: its ACKs are all we know of what the peer sent.

    An ACK that moved forward after our FIN answers something the peer sent after getting our
    FIN, which (as every stack does) acknowledged it.  ``peer_fin`` is where the peer's FIN sat,
    when our ACKs show one (see engine); an ACK beyond it means we received it.
    """
    if advanced and tcb.fin_seq is not None and not tcb.fin_acked and tcb.snd_nxt is not None:
        tcb.fin_acked = True
        if tcb.state in OUR_FIN_ACKED:
            tcb.move(out, OUR_FIN_ACKED[tcb.state], "inferred: the peer answered after our FIN", RFC_OTHER_STATES)
            out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    if peer_fin is not None and ack > peer_fin and tcb.peer_fin is None:
        tcb.peer_fin = peer_fin
        tcb.rcv_nxt = peer_fin if tcb.rcv_nxt is None else max(tcb.rcv_nxt, peer_fin)
        if _take_fin(tcb, out):
            out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)


# --- receiving ---------------------------------------------------------------------------------


def on_receive(tcb: Tcb, seg: Segment, out: Outcome, *, ack_of_unsent: bool = False) -> None:
    """``ack_of_unsent``: the capture proves the ACK covers what this endpoint never sent (its own
    answer said so); an ACK merely beyond what the capture saw of it is taken as genuine."""
    if tcb.state is S.UNKNOWN:
        _infer(tcb, seg, out, sent=False)
    flags = seg.flags
    if flags & RST:
        _receive_rst(tcb, seg, out)
        return
    state = tcb.state
    if state is S.CLOSED:
        return  # §3.10.7.1: answered with RST, nothing changes
    syn = flags & SYN
    if state is S.LISTEN:
        if syn and not flags & ACK:
            tcb.passive = True
            tcb.rcv_nxt = seg.seq + 1
            tcb.move(out, S.SYN_RECEIVED, "received SYN", RFC_LISTEN_STATE)
        return  # §3.10.7.2: an ACK here is answered with RST
    if state is S.SYN_SENT:
        _receive_in_syn_sent(tcb, seg, out)
        return
    # SYN-RECEIVED and the synchronized states: §3.10.7.4.
    if syn:
        if tcb.rcv_nxt is None or seg.seq + 1 > tcb.rcv_nxt:
            out.unexpected = f"SYN received in {state}"  # RFC 5961 §4: challenge ACK
            return
        # An old duplicate of the peer's SYN (a retransmission, or the SYN-ACK of a simultaneous
        # open): its ACK still counts.
    _note_window(tcb, seg, out)
    if ack_of_unsent:
        return  # §3.10.7.4 fifth check: "acks something not yet sent": ACK it and drop the segment
    if flags & ACK and (tcb.state is S.SYN_RECEIVED or (tcb.fin_seq is not None and not tcb.fin_acked)):
        _receive_ack(tcb, seg.ack, out)  # otherwise the fifth check has nothing to move
    start = seg.seq + (1 if syn else 0)
    _accept(tcb, start, start + seg.length)
    if flags & FIN:
        position = start + seg.length  # fin_position: after the SYN and the payload (§3.4)
        if tcb.fin_received:
            if position == tcb.peer_fin and tcb.state is S.TIME_WAIT:
                # "Acknowledge it, and restart the 2 MSL timeout" (§3.10.7.4, TIME-WAIT).
                out.notes.add(NOTE_TIME_WAIT_RESTART)
        else:
            tcb.peer_fin = position
    if tcb.peer_fin is not None and not tcb.fin_received:
        _take_fin(tcb, out)


def _receive_in_syn_sent(tcb: Tcb, seg: Segment, out: Outcome) -> None:
    """§3.10.7.3: first the ACK, then the SYN."""
    if seg.has_ack and tcb.iss is not None and seg.ack != tcb.iss + 1:
        out.unexpected = "ACK does not acknowledge our SYN"  # answered with RST
        return
    if not seg.syn:
        return  # "drop the segment and return"
    tcb.rcv_nxt = seg.seq + 1
    if seg.has_ack:
        tcb.move(out, S.ESTABLISHED, "received SYN-ACK", RFC_SYN_SENT_STATE)
    else:
        tcb.move(out, S.SYN_RECEIVED, "received SYN (simultaneous open)", RFC_SYN_SENT_STATE)


def _receive_ack(tcb: Tcb, ack: int, out: Outcome) -> None:
    """§3.10.7.4 fifth check.  It comes before the FIN (eighth check): a FIN-ACK that acknowledges
    our FIN takes FIN-WAIT-1 to FIN-WAIT-2 first, then its FIN to TIME-WAIT."""
    if tcb.state is S.SYN_RECEIVED and (tcb.iss is None or ack > tcb.iss):
        tcb.move(out, S.ESTABLISHED, "received ACK of our SYN", RFC_OTHER_STATES)
    if tcb.fin_seq is None or tcb.fin_acked or ack <= tcb.fin_seq:
        return
    tcb.fin_acked = True
    if tcb.state in OUR_FIN_ACKED:
        tcb.move(out, OUR_FIN_ACKED[tcb.state], "received ACK of our FIN", RFC_OTHER_STATES)


def _take_fin(tcb: Tcb, out: Outcome) -> bool:
    """§3.10.7.4 eighth check, once the peer's FIN is next in sequence."""
    if tcb.peer_fin is None or tcb.fin_received or tcb.rcv_nxt is None or tcb.rcv_nxt < tcb.peer_fin:
        return False
    if tcb.state in (S.CLOSED, S.LISTEN, S.SYN_SENT):
        return False  # "Do not process the FIN if the state is CLOSED, LISTEN, or SYN-SENT"
    tcb.fin_received = True
    tcb.rcv_nxt = max(tcb.rcv_nxt, tcb.peer_fin + 1)
    if tcb.state is S.FIN_WAIT_1 and tcb.fin_acked:
        tcb.move(out, S.TIME_WAIT, "received FIN and ACK of our FIN", RFC_OTHER_STATES)
    elif tcb.state in PEER_FIN:
        tcb.move(out, PEER_FIN[tcb.state], "received FIN", RFC_OTHER_STATES)
    return True


def _receive_rst(tcb: Tcb, seg: Segment, out: Outcome) -> None:
    state = tcb.state
    if state in (S.CLOSED, S.LISTEN):
        return  # §3.10.7.1 and §3.10.7.2: a RST is ignored
    if state is S.SYN_SENT:
        # §3.10.7.3: acceptable only if its ACK acknowledges our SYN.
        if seg.has_ack and (tcb.iss is None or seg.ack == tcb.iss + 1):
            out.notes.add(NOTE_RST_EXACT)
            tcb.refused = True
            tcb.move(out, S.CLOSED, "received RST: connection refused", RFC_SYN_SENT_STATE)
        else:
            out.notes.add(NOTE_RST_OUT_OF_WINDOW)
        return
    # RFC 5961 §3.2: reset only on an exact match of RCV.NXT; in window, a challenge ACK.
    window = max(tcb.rcv_wnd if tcb.rcv_wnd is not None else DEFAULT_WINDOW, 1)
    if tcb.rcv_nxt is None:
        out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
    elif seg.seq == tcb.rcv_nxt:
        out.notes.add(NOTE_RST_EXACT)
    elif tcb.rcv_nxt < seg.seq < tcb.rcv_nxt + window:
        out.notes.add(NOTE_RST_IN_WINDOW)
        return
    else:
        out.notes.add(NOTE_RST_OUT_OF_WINDOW)
        return
    if state is S.TIME_WAIT:
        tcb.move(out, S.CLOSED, "received RST in TIME-WAIT (assassination)", RFC_RST_IN_TIME_WAIT)
        return
    tcb.reset = state in SYNCHRONIZED
    if state is S.SYN_RECEIVED and tcb.passive:
        tcb.move(out, S.LISTEN, "received RST: back to LISTEN", RFC_RST)
    else:
        tcb.move(out, S.CLOSED, "received RST", RFC_RST)


def _note_window(tcb: Tcb, seg: Segment, out: Outcome) -> None:
    """§3.10.7.4 first check, for what it says about the segment; processing goes on regardless."""
    if tcb.rcv_nxt is None or tcb.rcv_wnd is None:
        return
    beyond = seg.seq >= tcb.rcv_nxt + max(tcb.rcv_wnd, 1)
    flags = seg.flags
    seg_len = seg.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
    old = seg_len > 0 and seg.seq + seg_len <= tcb.rcv_nxt
    if beyond or old:
        out.notes.add(NOTE_OUT_OF_WINDOW)


def _accept(tcb: Tcb, start: int, end: int) -> None:
    """Advance RCV.NXT over in-order data; hold what arrives beyond a gap."""
    if tcb.rcv_nxt is None:
        tcb.rcv_nxt = start
    if start <= tcb.rcv_nxt:
        if end > tcb.rcv_nxt:
            tcb.rcv_nxt = end
            _merge_held(tcb)
    elif len(tcb.held) < HELD_LIMIT:
        tcb.held.append((start, end))


def _merge_held(tcb: Tcb) -> None:
    moved = True
    while moved and tcb.held:
        moved = False
        for stretch in list(tcb.held):
            if stretch[0] <= tcb.rcv_nxt:
                tcb.held.remove(stretch)
                tcb.rcv_nxt = max(tcb.rcv_nxt, stretch[1])
                moved = True


# --- mid-stream pickup -------------------------------------------------------------------------


def _infer(tcb: Tcb, seg: Segment, out: Outcome, sent: bool) -> None:
    """The first segment an endpoint of a mid-stream capture sends or receives tells its state."""
    if sent:
        if seg.syn and not seg.has_ack:
            inferred = S.CLOSED
        elif seg.syn:
            inferred = S.LISTEN
        else:
            inferred = S.ESTABLISHED
            tcb.rcv_nxt = seg.ack if seg.has_ack else None
            tcb.iss = None
    else:
        if seg.syn and seg.has_ack:
            inferred = S.SYN_SENT
        elif seg.syn:
            inferred = S.LISTEN
        else:
            inferred = S.ESTABLISHED
            tcb.rcv_nxt = seg.seq
    tcb.move(out, inferred, f"mid-stream pickup: inferred from the first segment {'sent' if sent else 'received'}", "")
    out.notes.add(NOTE_BEFORE_CAPTURE_KNOWLEDGE)
