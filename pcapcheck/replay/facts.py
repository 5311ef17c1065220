"""Facts about segments that need no endpoint state, read from the capture as a whole.

Retransmission, duplicate, acknowledgement of a FIN, acknowledgement of sequence space the capture
never saw: each is a plain property of the segments, so it is computed once here, before the state
machine runs, and merged into the steps' notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..connections import Connection, SegmentColumns
from ..segments import ACK, FIN, RST, SYN, Segment, Side
from .model import (
    ANOMALY_ACK_OF_UNSENT,
    ANOMALY_ACK_UNSEEN_DATA,
    NOTE_ACKS_FIN,
    NOTE_ACKS_UNSEEN,
    NOTE_DUPLICATE,
    NOTE_NEW_INCARNATION_SYN,
    NOTE_RETRANSMISSION,
    Anomaly,
)

Notes = dict[int, set[str]]  # segment index -> notes; most segments have none


def add_note(notes: Notes, index: int, note: str) -> None:
    notes.setdefault(index, set()).add(note)


@dataclass(frozen=True, slots=True)
class Controls:
    """Where each side's SYN and FIN sit in its sequence space (first transmission), by side index."""

    syn: tuple[int | None, int | None]
    fin: tuple[int | None, int | None]  # the sequence number the FIN occupies


def fin_position(seg: Segment) -> int:
    """The sequence number a FIN occupies: after the SYN and the payload (RFC 9293 §3.4)."""
    return seg.seq + seg.length + (1 if seg.syn else 0)


def find_controls(segments: list[Segment]) -> Controls:
    syn: list[int | None] = [None, None]
    fin: list[int | None] = [None, None]
    for seg in segments:
        if seg.flags & (SYN | FIN) and not seg.rst:
            side = 0 if seg.sender is Side.CLIENT else 1
            if seg.syn and syn[side] is None:
                syn[side] = seg.seq
            if seg.fin and fin[side] is None:
                fin[side] = fin_position(seg)
    return Controls(tuple(syn), tuple(fin))


def sequence_notes(segments: list[Segment], conn: Connection, controls: Controls, notes: Notes) -> None:
    """NOTE_RETRANSMISSION, NOTE_DUPLICATE, NOTE_ACKS_FIN and NOTE_NEW_INCARNATION_SYN."""
    highest_end: list[int | None] = [None, None]
    seen: set[tuple] = set()
    first_syn = True
    client_fin, server_fin = controls.fin
    # Bit tests on the flags word, not the Segment properties: this runs once per segment.
    for seg in segments:
        flags = seg.flags
        side = 0 if seg.sender is Side.CLIENT else 1
        key = (side, seg.seq, seg.ack, flags, seg.length)
        if key in seen:
            add_note(notes, seg.index, NOTE_DUPLICATE)
        else:
            seen.add(key)
        seg_len = seg.length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)
        if seg_len and not flags & RST:
            top = highest_end[side]
            end_seq = seg.seq + seg_len
            if top is not None and seg.seq < top:
                add_note(notes, seg.index, NOTE_RETRANSMISSION)
            if top is None or end_seq > top:
                highest_end[side] = end_seq
        peer_fin = server_fin if side == 0 else client_fin
        if flags & ACK and not flags & RST and peer_fin is not None and seg.ack == peer_fin + 1:
            add_note(notes, seg.index, NOTE_ACKS_FIN)
        if first_syn and flags & SYN and not flags & ACK and side == 0:
            first_syn = False
            if conn.incarnation > 1:
                add_note(notes, seg.index, NOTE_NEW_INCARNATION_SYN)


def unseen_holes(conn: Connection, side_index: int, columns: SegmentColumns | None = None) -> list[int]:
    """Starts of the stretches of ``side``'s sequence space no captured segment covers.

    The last entry is where the captured space ends: everything above it is unseen too.  A side's
    space begins at its SYN (RFC 9293 §3.4): what it sent before that SYN (a challenge ACK from
    the TCB of an earlier incarnation, RFC 5961 §4, §3.5.2 Figure 10) lies in another space.
    """
    if columns is not None:
        return _unseen_holes_of(columns, side_index)
    mask = conn.sender == side_index
    syns = np.flatnonzero(mask & ((conn.rows["flags"] & SYN) != 0) & ((conn.rows["flags"] & RST) == 0))
    if len(syns):
        # Nor does anything of it lie below the ISN: a RST answering such an ACK from SYN-SENT
        # carries that ACK's number (<SEQ=SEG.ACK><CTL=RST>, §3.10.7.3), not the sender's.
        mask &= (np.arange(len(mask)) >= syns[0]) & (conn.seq >= conn.seq[syns[0]])
    if not mask.any():
        return []
    flags = conn.rows["flags"][mask]
    start = conn.seq[mask]
    length = (
        conn.rows["payload_len"][mask].astype(np.int64)
        + ((flags & SYN) != 0).astype(np.int64)
        + ((flags & FIN) != 0).astype(np.int64)
    )
    length[(flags & RST) != 0] = 0
    order = np.argsort(start, kind="stable")
    start, end = start[order], (start + length)[order]
    covered = np.maximum.accumulate(end)
    # A hole opens where a segment starts above everything before it reached.
    gaps = np.flatnonzero(start[1:] > covered[:-1])
    return [int(covered[g]) for g in gaps] + [int(covered[-1])]


def _unseen_holes_of(cols: SegmentColumns, side_index: int) -> list[int]:
    """``unseen_holes`` over Python lists: the same stable sort by start and running maximum of ends."""
    spans = []
    own_syn = next(
        (i for i, (s, f) in enumerate(zip(cols.sender, cols.flags)) if s == side_index and f & SYN and not f & RST),
        None,
    )
    first, isn = (0, None) if own_syn is None else (own_syn, cols.seq[own_syn])
    for i, (side, start, length, flags) in enumerate(zip(cols.sender, cols.seq, cols.length, cols.flags)):
        if side != side_index or i < first or (isn is not None and start < isn):
            continue
        if flags & RST:
            spans.append((start, start))
        else:
            spans.append((start, start + length + (1 if flags & SYN else 0) + (1 if flags & FIN else 0)))
    if not spans:
        return []
    spans.sort(key=lambda span: span[0])  # stable, like argsort(kind="stable")
    holes = []
    covered = spans[0][1]
    for start, end in spans[1:]:
        # A hole opens where a segment starts above everything before it reached.
        if start > covered:
            holes.append(covered)
        if end > covered:
            covered = end
    return holes + [covered]


def unseen_acks(
    segments: list[Segment], conn: Connection, notes: Notes, columns: SegmentColumns | None = None
) -> list[Anomaly]:
    """NOTE_ACKS_UNSEEN on the first ACK that covers each stretch the capture never saw.

    An ACK can only cover what its receiver got; if the capture never saw that sequence space the
    capture lost it (or started late), which is not the endpoints' fault: an "ack-unseen-data"
    anomaly.  Unless the acked side's own answer shows it never sent it: "ack-of-unsent".
    """
    holes = [unseen_holes(conn, 0, columns), unseen_holes(conn, 1, columns)]
    position = [0, 0]
    anomalies: list[Anomaly] = []
    synchronized_at: tuple[int | None, int | None] | None = None  # computed at the first need
    for seg in segments:
        if not seg.flags & ACK or seg.flags & RST:
            continue
        side = 0 if seg.sender is Side.CLIENT else 1
        peer_holes = holes[1 - side]
        k = position[side]
        if k >= len(peer_holes) or seg.ack <= peer_holes[k]:
            continue
        first_hole = peer_holes[k]
        base = conn.base(seg.sender.peer)
        if synchronized_at is None:
            synchronized_at = _first_synchronized(segments)
        if _refuted(segments, seg, synchronized_at):
            # RFC 9293 §3.10.7.3/§3.10.7.4: an ACK of something not yet sent is answered by
            # <SEQ=SEG.ACK><CTL=RST> (SYN-SENT) or by an ACK carrying SND.NXT.  The acked side
            # saying so is no capture loss.
            anomalies.append(
                Anomaly.sent_in(
                    seg,
                    ANOMALY_ACK_OF_UNSENT,
                    capture_quality=False,
                    detail={"acked_up_to": seg.rel_ack, "sent_up_to": first_hole - base},
                )
            )
            continue
        add_note(notes, seg.index, NOTE_ACKS_UNSEEN)
        while k < len(peer_holes) and seg.ack > peer_holes[k]:
            k += 1
        position[side] = k
        anomalies.append(
            Anomaly.sent_in(
                seg,
                ANOMALY_ACK_UNSEEN_DATA,
                capture_quality=True,
                detail={
                    "acked_up_to": seg.rel_ack,
                    "seen_up_to": first_hole - base,
                    "unseen_bytes": seg.ack - first_hole,
                },
            )
        )
    return anomalies


def unseen_synack(segments: list[Segment], controls: Controls) -> Anomaly | None:
    """The client's ACK of a SYN-ACK the capture lost, while the server's other segments were captured.

    Only a SYN-SENT endpoint that received the peer's SYN acknowledges it (RFC 9293 §3.10.7.3):
    the client's first ACK after its SYN proves the SYN-ACK, and the server's later segments
    prove it went on from there.  A capture-quality gap, not a fault of the endpoints.
    """
    if controls.syn[0] is None or controls.syn[1] is not None:
        return None
    if not any(seg.sender is Side.SERVER for seg in segments):
        return None  # a one-direction capture: "one-direction-missing" says it already
    for seg in segments:
        if seg.sender is Side.CLIENT and seg.flags & ACK and not seg.flags & (SYN | RST):
            return Anomaly.sent_in(
                seg,
                ANOMALY_ACK_UNSEEN_DATA,
                capture_quality=True,
                detail={"unseen": "SYN-ACK", "acked_up_to": seg.rel_ack},
            )
    return None


@dataclass(frozen=True, slots=True)
class LostFin:
    """A FIN the capture lost but the peer's ACK (or the sender's own RST) proves was sent."""

    side: int  # whose FIN it was
    position: int  # the sequence number it occupies
    proof: int  # index of the first segment proving it: the peer's ACK covering it, or the side's RST
    # The proof is the peer's acknowledgement (its ACK field, RST or not): the peer received the FIN.
    acked: bool = True
    # Where the peer's FIN sat when this FIN acknowledged it: in a normal close the FIN answers the
    # peer's FIN and its ACK field covers it (see ``lost_fins``).  None when nothing says so.
    acks_peer_fin: int | None = None


def lost_fins(segments: list[Segment], controls: Controls) -> list[LostFin]:
    """FINs the capture lost, while that side sent no captured FIN.

    A FIN occupies one sequence number (RFC 9293 §3.4) and nothing follows it.  The FIN sits at
    E - 1, where E is the side's SND.NXT once it closed, when E is shown by:

    * the peer acknowledging exactly E = top + 1 (top: the end of the side's captured space), and
      never more: the peer can only acknowledge what arrived;
    * the peer's ACKs stepping from E - 1 to E, with the side's own later bare ACK or RST carrying
      E as its sequence number (SND.NXT, §3.10.7.4; a RST from a synchronized endpoint, §3.10.4
      ABORT): what the capture lost before the FIN the peer acknowledged separately;
    * the side's own RST, sent once synchronized, with seq = top + 1: it carries SND.NXT, which is
      one past its FIN.

    (A lone lost byte of data at the very end, after which its sender never sends again, is the one
    reading this takes for a FIN.)  When the FIN came after the peer's FIN (captured or proven
    before this proof) and the capture never shows this side acknowledging the peer's FIN, the FIN
    acknowledged it: a closing endpoint's FIN carries its RCV.NXT, past the peer's FIN once it took
    that FIN, and otherwise its later ACK of the peer's FIN would show.
    """
    # End of the sequence space each side's captured segments occupy; a bare ACK or a RST carries
    # SND.NXT, which after an unseen FIN is one past it, so neither counts.
    tops: list[int | None] = [None, None]
    for seg in segments:
        if seg.seg_len and not seg.flags & RST:
            side = 0 if seg.sender is Side.CLIENT else 1
            end = seg.seq + seg.seg_len
            tops[side] = end if tops[side] is None else max(tops[side], end)
    synchronized_at = _first_synchronized(segments)
    found: list[LostFin] = []
    for side in (0, 1):
        top = tops[side]
        if controls.fin[side] is not None or top is None:
            continue  # nothing of this side captured: the one-direction inference handles it
        lost = _lost_fin_of(segments, side, top, synchronized_at[side])
        if lost is not None:
            found.append(lost)
    return _acknowledging_peer_fins(segments, controls, found)


def _lost_fin_of(segments: list[Segment], side: int, top: int, synchronized_at: int | None) -> LostFin | None:
    acks: list[tuple[int, int]] = []  # (index, ack) of the peer's ACKs, RSTs with an ACK included
    own_rst: list[Segment] = []
    own_snd_nxt: list[tuple[int, int]] = []  # (index, seq) of the side's bare ACKs and RSTs
    for seg in segments:
        flags = seg.flags
        if (0 if seg.sender is Side.CLIENT else 1) == side:
            if flags & RST and synchronized_at is not None and seg.index > synchronized_at:
                own_rst.append(seg)
            if (flags & RST or not seg.seg_len) and not flags & SYN:
                own_snd_nxt.append((seg.index, seg.seq))
        elif flags & ACK and not flags & SYN:
            acks.append((seg.index, seg.ack))
    highest = max((ack for _, ack in acks), default=None)
    if highest is not None and highest > top:
        proof = next(i for i, ack in acks if ack == highest)
        stepped = any(ack == highest - 1 for i, ack in acks if i < proof)
        confirmed = any(seq == highest for i, seq in own_snd_nxt if i > proof)
        if highest == top + 1 or (stepped and confirmed):
            return LostFin(side, highest - 1, proof)
        return None
    for rst in own_rst:
        if rst.seq == top + 1:
            return LostFin(side, top, rst.index, acked=False)
    return None


def _acknowledging_peer_fins(segments: list[Segment], controls: Controls, found: list[LostFin]) -> list[LostFin]:
    if not found:
        return found
    fins = list(controls.fin)
    proofs: list[int | None] = [None, None]
    for lost in found:
        fins[lost.side], proofs[lost.side] = lost.position, lost.proof
    result = []
    for lost in found:
        peer = 1 - lost.side
        peer_fin = fins[peer]
        if peer_fin is None:
            result.append(lost)
            continue
        if proofs[peer] is not None:
            came_first = proofs[peer] <= lost.proof
        else:
            came_first = any(
                seg.fin and (0 if seg.sender is Side.CLIENT else 1) == peer for seg in segments[: lost.proof]
            )
        acked_in_capture = any(
            (0 if seg.sender is Side.CLIENT else 1) == lost.side and seg.flags & ACK and seg.ack > peer_fin
            for seg in segments
            if not seg.flags & SYN
        )
        if came_first and not acked_in_capture:
            lost = LostFin(lost.side, lost.position, lost.proof, lost.acked, peer_fin)
        result.append(lost)
    return result


def _refuted(segments: list[Segment], ack: Segment, synchronized_at: tuple[int | None, int | None]) -> bool:
    """Did the acked side's answer show it never sent what this ACK acknowledges?"""
    for later in segments[ack.index + 1 : ack.index + 1 + REPLY_HORIZON]:
        if later.sender is ack.sender.peer:
            if later.rst:
                # <SEQ=SEG.ACK><CTL=RST> answers an unacceptable ACK only before synchronization
                # (§3.10.7.3, SYN-RECEIVED in §3.10.7.4).  A synchronized endpoint answers with an
                # ACK; its RST carries SND.NXT, which equals this ACK exactly when it did send all.
                since = synchronized_at[0 if later.sender is Side.CLIENT else 1]
                return later.seq == ack.ack and (since is None or since >= ack.index)
            # A bare ACK carries SND.NXT as its sequence number.
            return not later.seg_len and later.seq < ack.ack
    return False


def _first_synchronized(segments: list[Segment]) -> tuple[int | None, int | None]:
    """Per side, the index of its first segment only a synchronized endpoint sends (ACK, no SYN or RST)."""
    first: list[int | None] = [None, None]
    for seg in segments:
        if seg.flags & ACK and not seg.flags & (SYN | RST):
            side = 0 if seg.sender is Side.CLIENT else 1
            if first[side] is None:
                first[side] = seg.index
                if first[1 - side] is not None:
                    break
    return first[0], first[1]


REPLY_HORIZON = 8  # segments to look ahead for the answer to an ACK
