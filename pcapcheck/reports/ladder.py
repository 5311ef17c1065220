"""Ladder (sequence) diagram geometry for one connection: pure data the HTML template draws as SVG.

Segments are arrows between the client's and the server's lifelines, sloped to show time in
flight.  Each lifeline is coloured by that endpoint's state (from the replay's transitions) and
labelled where the state changes.  The segment a finding points at is highlighted.  A long
connection is elided around the interesting parts: the handshake, every SYN/FIN/RST, every
state change, the last few segments and +-N segments around each finding stay, the rest become
a "... 1234 segments ..." marker.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..replay.model import State, Step, Transition
from ..segments import Side

HEAD = 3  # the three-way handshake
TAIL = 3
CONTEXT = 3  # segments kept on each side of a finding
MIN_GAP = 3  # eliding fewer segments than this saves nothing

# Geometry (SVG user units = CSS px).
WIDTH = 1060
CLIENT_X = 270
SERVER_X = 750
TOP = 78  # first row, below the endpoint boxes
ROW = 30
NOTES_ROW = 12  # extra room under an arrow that carries a line of replay notes
NOTES_MAX = 72  # characters of notes that fit between the lifelines; the tooltip has them all
SLOPE = 14  # how much lower an arrow ends than it starts: time in flight
GAP_ROW = 34
BOTTOM = 40

STATE_CLASS = {
    State.CLOSED: "closed",
    State.LISTEN: "closed",
    State.SYN_SENT: "opening",
    State.SYN_RECEIVED: "opening",
    State.ESTABLISHED: "established",
    State.FIN_WAIT_1: "closing",
    State.FIN_WAIT_2: "closing",
    State.CLOSE_WAIT: "closing",
    State.CLOSING: "closing",
    State.LAST_ACK: "closing",
    State.TIME_WAIT: "timewait",
    State.UNKNOWN: "unknown",
}


@dataclass(frozen=True, slots=True)
class Arrow:
    y1: float
    y2: float
    x1: float
    x2: float
    frame: int
    offset: str  # time since the connection's first segment, e.g. "+0.004213 s"
    label: str  # tcpdump-like: "F. seq=101 ack=201 len=0"
    notes: str  # replay facts, e.g. "retransmission" (shortened to fit)
    all_notes: str
    lost: bool  # the replay proved it never reached the receiver
    highlight: bool
    severity: str  # worst severity of the findings pointing at this segment, "" when none
    rules: str  # ids of the findings pointing at this segment
    anchor: str  # element id, e.g. "c3-f812"


@dataclass(frozen=True, slots=True)
class Gap:
    y: float
    hidden: int


@dataclass(frozen=True, slots=True)
class Band:
    """A stretch of one lifeline spent in one state."""

    x: float
    y1: float
    y2: float
    state: str
    css: str


@dataclass(frozen=True, slots=True)
class StateLabel:
    x: float
    y: float
    text: str
    anchor: str  # SVG text-anchor: "end" left of the client lifeline, "start" right of the server's
    css: str


@dataclass(frozen=True, slots=True)
class Ladder:
    width: int
    height: int
    client_x: int
    server_x: int
    client: str
    server: str
    arrows: tuple[Arrow, ...]
    gaps: tuple[Gap, ...]
    bands: tuple[Band, ...]
    labels: tuple[StateLabel, ...]
    shown: int
    total: int


def kept_indices(steps: Sequence[Step], focus_frames: Iterable[int], context: int = CONTEXT) -> list[int]:
    """Indices of the steps worth drawing (see the module docstring), in order."""
    n = len(steps)
    keep: set[int] = set(range(min(HEAD, n))) | set(range(max(0, n - TAIL), n))
    frames = [s.segment.frame for s in steps]
    order = sorted(range(n), key=lambda i: frames[i])
    sorted_frames = [frames[i] for i in order]
    for i, step in enumerate(steps):
        seg = step.segment
        changed = step.sender_before != step.sender_after or step.receiver_before != step.receiver_after
        if seg.syn or seg.fin or seg.rst or changed:
            keep.update(range(max(0, i - 1), min(n, i + 2)))
    for frame in focus_frames:
        # The finding's frame, or the nearest segment after it (a finding may point at a frame
        # of another connection, e.g. the new SYN that cut a TIME-WAIT short).
        j = bisect.bisect_left(sorted_frames, frame)
        if n:
            i = order[min(j, n - 1)]
            keep.update(range(max(0, i - context), min(n, i + context + 1)))
    kept = sorted(keep)
    # Fill gaps too small to be worth a marker.
    filled: list[int] = []
    for i in kept:
        if filled and 1 < i - filled[-1] <= MIN_GAP:
            filled.extend(range(filled[-1] + 1, i))
        filled.append(i)
    return filled


def segment_label(step: Step) -> str:
    seg = step.segment
    parts = [seg.flag_text, f"seq={seg.rel_seq}"]
    if seg.has_ack:
        parts.append(f"ack={seg.rel_ack}")
    parts.append(f"len={seg.length}")
    if seg.syn:
        options = []
        if seg.mss is not None:
            options.append(f"mss={seg.mss}")
        if seg.wscale is not None:
            options.append(f"ws={seg.wscale}")
        if seg.sack_permitted:
            options.append("sackOK")
        if seg.ts_val is not None:
            options.append("TS")
        parts.extend(options)
    elif seg.window is not None and not seg.rst:
        parts.append(f"win={seg.window}")
    return " ".join(parts)


def _initial_states(steps: Sequence[Step], transitions: Sequence[Transition]) -> dict[Side, State]:
    states: dict[Side, State] = {}
    for t in transitions:
        states.setdefault(t.endpoint, t.from_state)
    if steps:
        first = steps[0]
        sender = first.segment.sender
        states.setdefault(sender, first.sender_before)
        states.setdefault(sender.peer, first.receiver_before)
    states.setdefault(Side.CLIENT, State.UNKNOWN)
    states.setdefault(Side.SERVER, State.UNKNOWN)
    return states


def build_ladder(
    client: str,
    server: str,
    steps: Sequence[Step],
    transitions: Sequence[Transition],
    findings_by_frame: dict[int, list[str]],
    context: int = CONTEXT,
    anchor_prefix: str = "",
    severity_by_frame: dict[int, str] | None = None,
) -> Ladder:
    """Lay out the diagram.  ``findings_by_frame`` maps a frame to the rule ids that point at it;
    each arrow gets the element id ``{anchor_prefix}f{frame}`` for links from the findings table."""
    kept = kept_indices(steps, findings_by_frame, context)
    x_of = {Side.CLIENT: CLIENT_X, Side.SERVER: SERVER_X}
    start_time = steps[0].segment.time if steps else 0.0

    arrows: list[Arrow] = []
    gaps: list[Gap] = []
    # Where every step (drawn or elided) sits vertically: elided ones at their gap marker.
    y_of_step: list[float] = [0.0] * len(steps)
    y = float(TOP)
    previous = -1
    for i in kept:
        hidden = i - previous - 1
        if hidden > 0:
            gap_y = y + GAP_ROW / 2 - 6
            gaps.append(Gap(y=gap_y, hidden=hidden))
            for j in range(previous + 1, i):
                y_of_step[j] = gap_y
            y += GAP_ROW
        step = steps[i]
        seg = step.segment
        rules = findings_by_frame.get(seg.frame, [])
        y_of_step[i] = y
        notes = all_notes = ", ".join(sorted(step.notes))
        if len(notes) > NOTES_MAX:
            notes = notes[: NOTES_MAX - 1] + "…"
        arrows.append(
            Arrow(
                y1=y,
                y2=y + SLOPE,
                x1=x_of[seg.sender],
                x2=x_of[seg.sender.peer],
                frame=seg.frame,
                offset=f"+{seg.time - start_time:.6f} s",
                label=segment_label(step),
                notes=notes,
                all_notes=all_notes,
                lost=not step.delivered,
                highlight=bool(rules),
                severity=(severity_by_frame or {}).get(seg.frame, "error" if rules else ""),
                rules=", ".join(rules),
                anchor=f"{anchor_prefix}f{seg.frame}",
            )
        )
        y += ROW + (NOTES_ROW if notes or not step.delivered else 0)
        previous = i
    if steps and previous < len(steps) - 1:  # only when the tail is elided, which kept_indices prevents
        gaps.append(Gap(y=y + GAP_ROW / 2 - 6, hidden=len(steps) - 1 - previous))
        y += GAP_ROW
    end_y = y + ROW / 2

    frame_index = {s.segment.frame: i for i, s in enumerate(steps)}
    frames_sorted = sorted(frame_index)
    last_time = steps[-1].segment.time if steps else 0.0

    def y_of_transition(t: Transition) -> float:
        i = frame_index.get(t.frame)
        if i is None:
            if not steps or t.time > last_time or t.frame > frames_sorted[-1]:
                return end_y - 6  # a timer (2*MSL, FIN-WAIT-2) fired after the last segment
            j = bisect.bisect_left(frames_sorted, t.frame)
            i = frame_index[frames_sorted[min(j, len(frames_sorted) - 1)]]
        base = y_of_step[i]
        if t.time > last_time and i == len(steps) - 1:
            return end_y - 6
        # The sender changes state as it sends, the receiver as the segment arrives.
        return base + (SLOPE if steps[i].segment.sender is not t.endpoint else 0)

    bands: list[Band] = []
    labels: list[StateLabel] = []
    initial = _initial_states(steps, transitions)
    for side in (Side.CLIENT, Side.SERVER):
        x = x_of[side]
        label_x = x - 10 if side is Side.CLIENT else x + 10
        anchor = "end" if side is Side.CLIENT else "start"
        state, since = initial[side], TOP - 20.0
        labels.append(StateLabel(x=label_x, y=since + 4, text=state.value, anchor=anchor, css=STATE_CLASS[state]))
        for t in sorted((t for t in transitions if t.endpoint is side), key=lambda t: (y_of_transition(t), t.time)):
            ty = y_of_transition(t)
            bands.append(Band(x=x, y1=since, y2=ty, state=state.value, css=STATE_CLASS[state]))
            state, since = t.to_state, ty
            labels.append(
                StateLabel(x=label_x, y=ty + 4, text=t.to_state.value, anchor=anchor, css=STATE_CLASS[state])
            )
        bands.append(Band(x=x, y1=since, y2=end_y, state=state.value, css=STATE_CLASS[state]))

    return Ladder(
        width=WIDTH,
        height=int(end_y + BOTTOM),
        client_x=CLIENT_X,
        server_x=SERVER_X,
        client=client,
        server=server,
        arrows=tuple(arrows),
        gaps=tuple(gaps),
        bands=tuple(bands),
        labels=tuple(_spread(labels)),
        shown=len(kept),
        total=len(steps),
    )


def _spread(labels: list[StateLabel], min_gap: float = 12.0) -> list[StateLabel]:
    """Push down state labels on the same lifeline that would overprint each other."""
    out: list[StateLabel] = []
    last_y: dict[float, float] = {}
    for label in sorted(labels, key=lambda l: (l.x, l.y)):
        y = max(label.y, last_y.get(label.x, -1e9) + min_gap)
        last_y[label.x] = y
        out.append(StateLabel(x=label.x, y=y, text=label.text, anchor=label.anchor, css=label.css))
    return out
