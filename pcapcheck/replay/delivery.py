"""Which captured segments never reached their receiver.

A segment seen by the capture may still be lost between the capture point and the receiver.  Only
what the endpoints do afterwards can prove it, and only segments that change a state (SYN, FIN, and
ACKs of a SYN or FIN) are worth the question:

* a SYN or FIN the sender had to transmit again, with no acknowledgement of it from the receiver in
  between, was lost (the retransmission timer fired for want of that acknowledgement) - unless the
  receiver answered it with a RST (it got it, and refused its ACK);
* a SYN or FIN the receiver never acknowledged, while it went on sending acknowledgements below
  it after it could have arrived, was lost;
* an ACK of the peer's SYN or FIN, followed by the peer retransmitting that SYN or FIN later than
  the ACK could have reached it, was lost: the peer acted as if it never got it.

A copy of the same packet captured twice within ``CAPTURE_DUPLICATE_GAP`` is one packet, not a
retransmission (no stack's retransmission timer is that short).
"""

from __future__ import annotations

from ..segments import ACK, FIN, RST, SYN, Segment, Side
from .facts import Controls, fin_position
from .vantage import Legs

CAPTURE_DUPLICATE_GAP = 50e-6  # seconds
# Each distinct SYN/FIN position costs a pass over the connection; a SYN flood with random ISNs on
# one tuple is judged only this far (the rest counts as delivered).
MAX_CONTROL_GROUPS = 64


def _side(seg: Segment) -> int:
    return 0 if seg.sender is Side.CLIENT else 1


def _is_capture_copy(a: Segment, b: Segment) -> bool:
    return (
        (a.seq, a.ack, a.flags, a.length) == (b.seq, b.ack, b.flags, b.length)
        and abs(b.time - a.time) < CAPTURE_DUPLICATE_GAP
    )


def _acks_beyond(seg: Segment, position: int) -> bool:
    return seg.has_ack and not seg.rst and seg.ack > position


def control_transmissions(segments: list[Segment]) -> dict[tuple[int, str, int], list[int]]:
    """(side, "syn"|"syn-ack"|"fin", position) -> indices of every transmission, copies folded."""
    sent: dict[tuple[int, str, int], list[int]] = {}
    for seg in segments:
        if not seg.flags & (SYN | FIN) or seg.flags & RST:
            continue
        keys = []
        if seg.syn:
            # In a simultaneous open the SYN-ACK answers the peer's SYN; it does not say our SYN
            # went unanswered, so only a SYN of the same kind counts as its retransmission.
            keys.append((_side(seg), "syn-ack" if seg.has_ack else "syn", seg.seq))
        if seg.fin:
            keys.append((_side(seg), "fin", fin_position(seg)))
        for key in keys:
            indices = sent.setdefault(key, [])
            if indices and _is_capture_copy(segments[indices[-1]], seg):
                continue
            indices.append(seg.index)
    return sent


def undelivered(segments: list[Segment], controls: Controls, legs: Legs) -> set[int]:
    lost: set[int] = set()
    sent = control_transmissions(segments)
    # (index, side, ack) of every segment carrying an acknowledgement: the candidates of each pass.
    acking = [(s.index, _side(s), s.ack) for s in segments if s.flags & ACK and not s.flags & RST]
    for (side, _kind, position), indices in list(sent.items())[:MAX_CONTROL_GROUPS]:
        acks = [i for i, s_side, ack in acking if s_side != side and ack > position]
        # A retransmission with no acknowledgement (nor RST answering it) in between: the earlier
        # one was lost.
        for earlier, later in zip(indices, indices[1:]):
            if not any(earlier < a < later for a in acks) and not _reset_answers(segments, earlier, later):
                lost.add(earlier)
        # Never acknowledged, while the receiver kept acknowledging below it: lost too.
        if not acks and _receiver_acked_below(segments, indices[-1], position, legs):
            lost.add(indices[-1])
    for side in (0, 1):
        positions = (("syn", controls.syn[side]), ("syn-ack", controls.syn[side]), ("fin", controls.fin[side]))
        for kind, position in positions:
            if position is None:
                continue
            _lost_acks_of(segments, side, sent.get((side, kind, position), []), position, legs, lost)
    return lost


def _reset_answers(segments: list[Segment], index: int, before: int) -> bool:
    """A RST with SEQ = this segment's ACK (RFC 9293 §3.10.7.3 reply to a bad ACK) answered it."""
    seg = segments[index]
    return seg.has_ack and any(
        s.rst and s.sender is not seg.sender and s.seq == seg.ack for s in segments[index + 1 : before]
    )


def _receiver_acked_below(segments: list[Segment], index: int, position: int, legs: Legs) -> bool:
    seg = segments[index]
    receiver = 1 - _side(seg)
    arrival = seg.time + legs.of(receiver) / 1e9
    return any(
        _side(s) == receiver and s.has_ack and not s.rst and not s.syn and s.ack <= position and s.time >= arrival
        for s in segments[index + 1 :]
    )


def _lost_acks_of(
    segments: list[Segment], side: int, transmissions: list[int], position: int, legs: Legs, lost: set[int]
) -> None:
    """ACKs of ``side``'s SYN/FIN at ``position`` after which ``side`` still retransmitted it."""
    if len(transmissions) < 2:
        return
    leg = legs.of(side) / 1e9
    # Later than a round trip from the capture point, with room for jitter: sent after the ACK
    # arrived.  A retransmission crossing the ACK in flight proves nothing.
    needed = leg + max(leg / 10, CAPTURE_DUPLICATE_GAP)
    for seg in segments:
        if _side(seg) == side or not _acks_beyond(seg, position):
            continue
        later = next((i for i in transmissions if i > seg.index), None)
        if later is None or segments[later].time - seg.time <= needed:
            continue
        if not _reset_answers(segments, seg.index, later):
            lost.add(seg.index)
