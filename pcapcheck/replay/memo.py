"""Replay once per shape: later connections of a shape get their Replay from a template.

A capture of a test run holds tens of thousands of short, clean connections of a handful of
shapes (shape.py).  The first connection of each key is replayed and checked by the reference
path; if it had no anomaly, its replay becomes a template: transitions and TIME-WAITs as
(segment index, offset) pairs, final states, close, vantage, and each segment's Step without
its segment.  Later connections of the key take one of two lanes:

* fast: when the first had no finding, no rule read the capture's end for it, and the connection
  is a first incarnation, a ``Replay`` with ``steps=[]`` (what analysis keeps for connections
  without findings anyway) and no checks: they would find nothing, as the first did;
* checked: otherwise (the first had findings, e.g. every client abort; a rule read the capture's
  end; or the connection reopens a tuple, whose checks read the incarnation before), the full
  ``Replay``, each Step the template's states, notes and delivery around the connection's own
  Segment, and the real checks run on it: the rules the template names (``Template.rerun``) and
  those reading the previous incarnation.  Replay reads nothing of the previous incarnation:
  only the checks and incarnation.py (applied afterwards, to the previous replay) do, and
  facts.py reads whether there is one (NOTE_NEW_INCARNATION_SYN), which is a bit of the key.

connections.py gives every connection whose roles are not inferred its shape (``connection_shapes``).

The key is the connection's shape plus what this run adds (soundness argument in shape.py):

* the connection must last less than every time parameter in effect (each rule's numeric
  parameters and the profile's timers, a non-time one only making the bound stricter), so every
  gap between two of its segments compares the same way with every one of them, and TIME-WAIT
  cannot expire between two of its segments;
* for each duration P the replay compares the capture's end with (engine.capture_end_parameters:
  the TIME-WAIT deadline), one bit: is the capture's end more than P after the connection's
  first segment.  A connection whose distance to the end lies within its own span plus a
  millisecond of some P (where "capture_end >= t + P", as the TIME-WAIT expiry computes it,
  could differ between its segments or from that bit by rounding) takes the reference path.
  The checks see the capture's end only through ``CheckContext.capture_end``, which notes the
  reading: when a rule read it for the first connection of a key, every rule runs again on every
  member (``Template.rerun``; one rule may use what another derived, CheckContext.shared), with
  the member's own capture end.  When none read it, none read anything that differs between
  members (shape.py), so each took the same path on every member and did not read it there
  either: their verdicts are the first one's.  Eligible shapes rarely make a rule read it (every
  FIN is acknowledged), whereas a bit for each rule parameter (0.05 s to 60 s) split every key
  up to six ways over the last two seconds of a capture: most of a test run of a few seconds;
* whether the connection reopens a tuple (incarnation > 1: facts.py notes its SYN as such).

The shape holds the order of the timeline's keys before its causal bounds, so connections that
differ only in how close two events came get different keys.  On such a miss the connection's
final event order is computed (timeline.event_order, a few tens of microseconds instead of a
few hundred for replay and checks).  In an eligible shape (shape.py) each endpoint's control block
is moved only by its own events, so what each endpoint went through depends only on the order of
its own events; the order across the two shows only in how their transitions interleave in the
one list (and which TIME-WAIT came first).  So the second lookup is by the structure, the time
bits and each endpoint's own event order, and a template found there is used only when the
connection's order puts the template's transitions in the template's order.

``memo_enabled`` reads PCAPCHECK_MEMO: "0" turns the memo off (the reference path for every
connection; the equivalence test runs both).
"""

from __future__ import annotations

import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import NamedTuple

import numpy as np

from ..connections import Connection, ConnectionTable, segment_at, segment_columns, segment_list
from ..profiles import Profile
from ..segments import FIN, RST, SYN, Side
from ..sequences import ComparesAsList
from ..timestamps import NS_PER_S, seconds
from .facts import Controls
from .model import (
    Close,
    PatternMove,
    Replay,
    State,
    Step,
    TemplatedTransitions,
    TimeWait,
    TransitionPattern,
    Vantage,
)
from .engine import capture_end_parameters
from .shape import ROW_DTYPE
from .timeline import RECEIVE, SEND, event_order
from .vantage import Legs, handshake_legs

ENV_SWITCH = "PCAPCHECK_MEMO"
# Beyond float rounding of capture_end - t (ulps of ~1e-7 s on epoch times).
CAPTURE_END_SLACK = 1e-3
_SIDES = (Side.CLIENT, Side.SERVER)
_UNTEMPLATED = object()  # a key whose first connection had anomalies, or what template_of cannot express
_ENDINGS = frozenset({"running", "expired"})


def memo_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


def time_parameters(profile: Profile, rule_params: Iterable[Mapping[str, object]]) -> tuple[float, ...]:
    """Every numeric rule parameter and profile timer, distinct, ascending."""
    values = {profile.msl, profile.time_wait, profile.fin_wait_2, profile.rto_initial, profile.rto_min}
    for params in rule_params:
        values.update(float(v) for v in params.values() if isinstance(v, (int, float)) and not isinstance(v, bool))
    return tuple(sorted(values))


def memo_for_run(
    capture_end: float | None, profile: Profile, rule_params: Iterable[Mapping[str, object]]
) -> "ReplayMemo":
    """The memo of one run: ``rule_params``, every enabled rule's effective parameters."""
    return ReplayMemo(capture_end, time_parameters(profile, rule_params), capture_end_parameters(profile))


@dataclass(frozen=True, slots=True)
class _TransitionTemplate:
    index: int  # segment whose frame (and time) the transition takes
    offset: float | None  # None: at the segment's time; else that time + offset (a TIME-WAIT deadline)
    endpoint: Side
    from_state: State
    to_state: State
    cause: str
    rfc: str
    event: tuple[int, int] | None  # (timeline kind, segment) it happened at; None: at the end (expiry)


@dataclass(frozen=True, slots=True)
class _TimeWaitTemplate:
    endpoint: Side
    entered: int  # segment index
    duration: float
    ended_by: str  # "running" or "expired" (at entered time + duration)


@dataclass(frozen=True, slots=True)
class Template:
    indices: tuple[int, ...]  # the segments whose frame and time the instances read
    transitions: tuple[_TransitionTemplate, ...]
    time_waits: tuple[_TimeWaitTemplate, ...]
    final_state: tuple[State, State]
    close: Close
    vantage: Vantage
    # Per segment index: the Step's sender and receiver states before and after, notes, delivered.
    steps: tuple[tuple[State, State, State, State, frozenset[str], bool], ...] = field(compare=False, repr=False)
    # Members run the checks (on a full Replay): the first had findings, a rule read the capture's
    # end for it, or it reopened a tuple.
    checked: bool = False
    # The rules that found something in the first (all of them when one read the capture's end
    # for it): only they, and the rules that read the previous incarnation, can find something
    # in a member (every other rule reads only what the key fixes).
    rerun: frozenset[str] = frozenset()
    # Made from the above: an instance is the pattern plus its values (model.TemplatedTransitions).
    pattern: TransitionPattern = field(init=False, compare=False, repr=False)
    _read: Callable[[list], tuple] = field(init=False, compare=False, repr=False)  # indices' entries of a column
    _deadlines: tuple[tuple[int, float], ...] = field(init=False, compare=False, repr=False)  # (position, offset)
    _waits: tuple[tuple[Side, int, float, bool], ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        position = {i: k for k, i in enumerate(self.indices)}
        n = len(self.indices)
        deadlines: list[tuple[int, float]] = []
        moves = []
        for t in self.transitions:
            at = position[t.index]
            if t.offset is None:
                time_at = at
            else:
                time_at = 2 * n + len(deadlines)
                deadlines.append((at, t.offset))
            moves.append(PatternMove(time_at, n + at, t.endpoint, t.from_state, t.to_state, t.cause, t.rfc))
        set_field = object.__setattr__  # frozen: derived fields are set once, here
        set_field(self, "pattern", TransitionPattern(tuple(moves)))
        set_field(self, "_deadlines", tuple(deadlines))
        set_field(
            self, "_waits",
            tuple((w.endpoint, position[w.entered], w.duration, w.ended_by == "expired") for w in self.time_waits),
        )  # fmt: skip
        set_field(self, "_read", _reader(self.indices))

    @property
    def deadlines(self) -> tuple[tuple[int, float], ...]:
        """(position in ``indices``, offset) of each TIME-WAIT deadline in the transitions' values."""
        return self._deadlines

    def interleaves_as(self, order: list[tuple[int, int]]) -> bool:
        """Does an event order with this template's per-endpoint orders keep its transitions' order?"""
        position = {event: k for k, event in enumerate(order)}
        last = -1
        for t in self.transitions:
            if t.event is None:
                continue  # expiries come after every event, by side (engine), whatever the order
            k = position[t.event]
            if k < last:
                return False
            last = k
        return True

    def instantiate(self, conn: Connection) -> Replay:
        rows = conn.rows
        read = self._read
        times = [ns / NS_PER_S for ns in read(rows["ts_ns"].tolist())]
        frames = read(rows["frame"].tolist())
        deadlines = [times[at] + offset for at, offset in self._deadlines]
        waits = [
            TimeWait(endpoint, times[at], frames[at], duration, times[at] + duration, "expired")
            if expired
            else TimeWait(endpoint, times[at], frames[at], duration, None, "running")
            for endpoint, at, duration, expired in self._waits
        ]
        steps = TemplatedSteps(conn, self.steps) if self.checked else []
        return Replay(
            connection_id=conn.id,
            steps=steps,
            transitions=TemplatedTransitions(self.pattern, (*times, *frames, *deadlines)),  # type: ignore[arg-type]
            anomalies=[],
            final_state={_SIDES[0]: self.final_state[0], _SIDES[1]: self.final_state[1]},
            close=self.close,
            vantage=self.vantage,
            time_wait=waits[0] if waits else None,
            time_waits=waits,
        )


class TemplatedSteps(ComparesAsList, Sequence[Step]):
    """A checked member's steps: the template's states, notes and delivery around the connection's
    own segments.  A Step is made when first read: the checks that run on a member (those that
    the template names, and the reuse rules) mostly read the first one or two.  Reads
    behave as the list the replay makes."""

    __slots__ = ("_conn", "_around", "_made", "_bases")

    def __init__(self, conn: Connection, around: tuple):
        self._conn = conn
        self._around = around
        self._made: list[Step | None] = [None] * len(around)
        self._bases: tuple[int, int] | None = None

    def __len__(self) -> int:
        return len(self._around)

    def _step(self, i: int) -> Step:
        step = self._made[i]
        if step is None:
            if self._bases is None:
                self._bases = (self._conn.base(Side.CLIENT), self._conn.base(Side.SERVER))
            step = self._made[i] = Step(segment_at(self._conn, i, self._bases), *self._around[i])
        return step

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self._step(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._step(index)

    def __iter__(self) -> Iterator[Step]:
        made = self._made
        for i in range(len(made)):
            if i == 2 and None in made:
                # Read past the first two: make the rest at once, cheaper per segment.
                for k, segment in enumerate(segment_list(self._conn)):
                    if made[k] is None:
                        made[k] = Step(segment, *self._around[k])
            yield self._step(i)

    def __repr__(self) -> str:
        return repr(list(self))


def _reader(indices: tuple[int, ...]) -> Callable[[list], tuple]:
    """A column list's entries at ``indices``, as a tuple (itemgetter of one index gives the item)."""
    if len(indices) > 1:
        return itemgetter(*indices)
    return lambda column: tuple(column[i] for i in indices)


def template_of(
    conn: Connection,
    rep: Replay,
    order: list[tuple[int, int]],
    checked: bool = False,
    rerun: frozenset[str] = frozenset(),
) -> Template | None:
    """``rep`` as a template, or None when it holds anything not expressed by segment indices.

    ``order`` is the connection's event order: every transition but an expiry happened at the event
    of its endpoint on its segment, in that order, expiries last (checked, not assumed)."""
    if rep.anomalies:
        return None
    sender = conn.sender.tolist()
    position = {event: k for k, event in enumerate(order)}
    last_event = -1
    expiries_only = False
    frames = conn.rows["frame"].tolist()
    times = [ns / NS_PER_S for ns in conn.rows["ts_ns"].tolist()]
    index_of = {frame: i for i, frame in enumerate(frames)}
    used: set[int] = set()
    transitions = []
    for t in rep.transitions:
        i = index_of.get(t.frame)
        if i is None:
            return None
        if t.time == times[i]:
            offset = None
        else:
            # A TIME-WAIT expiry: at the deadline, named by the segment that started the timer.
            wait = next((w for w in rep.time_waits if w.entered_frame == t.frame), None)
            if wait is None or t.time != times[i] + wait.duration:
                return None
            offset = wait.duration
        used.add(i)
        if offset is None:
            event = (SEND if _SIDES[sender[i]] is t.endpoint else RECEIVE, i)
            k = position.get(event, -1)
            if expiries_only or k < last_event:
                return None
            last_event = k
        else:
            event, expiries_only = None, True
        transitions.append(
            _TransitionTemplate(i, offset, t.endpoint, t.from_state, t.to_state, t.cause, t.rfc, event)
        )
    waits = []
    for w in rep.time_waits:
        i = index_of.get(w.entered_frame)
        if i is None or w.entered_time != times[i] or w.restarted_time is not None or w.ended_by not in _ENDINGS:
            return None
        expected_end = times[i] + w.duration if w.ended_by == "expired" else None
        if w.ended_time != expected_end:
            return None
        used.add(i)
        waits.append(_TimeWaitTemplate(w.endpoint, i, w.duration, w.ended_by))
    if rep.time_wait is not (rep.time_waits[0] if rep.time_waits else None):
        return None
    if len(rep.steps) != len(frames) or any(step.segment.index != i for i, step in enumerate(rep.steps)):
        return None
    steps = tuple(
        (s.sender_before, s.sender_after, s.receiver_before, s.receiver_after, s.notes, s.delivered) for s in rep.steps
    )
    return Template(
        tuple(sorted(used)),
        tuple(transitions),
        tuple(waits),
        (rep.final_state[Side.CLIENT], rep.final_state[Side.SERVER]),
        rep.close,
        rep.vantage,
        steps,
        checked,
        rerun,
    )


# Templates held at once (a checked one carries its steps: a few KB).
MAX_TEMPLATES = 4096
# Keys held at once (a key is a connection's shape, a few hundred bytes).  Keys are many more than
# templates (a template serves every key with its structure and endpoint orders: the timing
# details differ), and a forgotten key is found again from its event order, without a replay.
MAX_KEYS = 16384


class Known(NamedTuple):
    """A connection's Replay made from a template."""

    replay: Replay
    checked: bool  # the checks must run on it (it carries its steps); else they would find nothing
    rerun: frozenset[str] = frozenset()  # Template.rerun: the only rules but the reuse ones to run on it
    template: "Template | None" = None  # what made it (analysis keeps such reports as columns)


class ReplayMemo:
    """Templates for one analysis run.  ``hits``: connections instantiated from a template (of
    them ``checked_hits`` in the checked lane, ``ordered_hits`` after computing their event
    order); ``seen``: connections looked up; ``column_pairs``: see analysis."""

    def __init__(self, capture_end: float | None, parameters: tuple[float, ...], end_parameters: tuple[float, ...]):
        """``parameters``: time_parameters (the span bound); ``end_parameters``: those the replay
        compares the capture's end with (engine.capture_end_parameters), one key bit each."""
        self.capture_end = capture_end
        self.shortest = min(parameters) if parameters else 0.0
        self.end_parameters = tuple(sorted(set(end_parameters)))  # ascending: ``key`` bisects them
        self.templates: dict[tuple, object] = {}  # by key: a Template, or _UNTEMPLATED
        # By structure, time bits and each endpoint's own event order: the templates seen so far.
        self.by_endpoint_orders: dict[tuple, list[Template]] = {}
        self.held = 0  # templates in by_endpoint_orders
        self._served: set[int] = set()  # ids of the templates that served a new key since the last sweep
        # By id, until ``learn``: the connection (ids repeat across buckets), its orders key, its order.
        self._pending: dict[int, tuple[Connection, tuple, list[tuple[int, int]]]] = {}
        self.hits = 0
        self.checked_hits = 0
        self.ordered_hits = 0
        self.seen = 0
        self.column_pairs = 0  # pairs of incarnations analysis' column lane answered (pcapcheck.reopened)
        # For analysis: by (id of template, which TIME-WAITs ended), the template (alive as long as
        # the entry: ids are not reused) and the block kind of a member whose TIME-WAITs the next
        # incarnation's SYN ended; shared by the buckets of a run, as the templates are.
        self.ended_kinds: dict[tuple[int, tuple[bool, ...]], tuple["Template", object]] = {}

    def key(self, conn: Connection, shape: bytes | None = None) -> tuple | None:
        """The connection's full key, or None when it must take the reference path.  ``shape``:
        None for the connection's own (``Connection.shape``)."""
        if shape is None:
            shape = conn.shape
        end = self.capture_end
        if shape is None or end is None:
            return None
        first, last = conn.start, conn.end
        span = last - first
        if not span < self.shortest or not first + self.shortest > last:
            return None
        to_end = end - first
        slack = span + CAPTURE_END_SLACK
        parameters = self.end_parameters
        # Bit k: to_end > parameters[k], so the bits below ``below`` are set.  Rounded subtraction
        # is monotonic, so the parameters nearest to_end are the two around it.
        below = bisect_left(parameters, to_end)
        if below and to_end - parameters[below - 1] <= slack:
            return None
        if below < len(parameters) and parameters[below] - to_end <= slack:
            return None
        self.seen += 1
        return shape, (1 << below) - 1, conn.incarnation > 1

    def keys(self, table: ConnectionTable) -> list[tuple | None]:
        """``key`` of every connection of a rebuild's table at once, in its order (equal values:
        the same float arithmetic on every connection, vectorised)."""
        n = len(table)
        end = self.capture_end
        if end is None or not n:
            return [None] * n
        times = table.rows["ts_ns"]
        first = seconds(times[table.starts])
        last = seconds(times[table.ends - 1])
        span = last - first
        ok = (span < self.shortest) & (first + self.shortest > last)
        to_end = end - first
        slack = span + CAPTURE_END_SLACK
        parameters = np.asarray(self.end_parameters, dtype=np.float64)
        below = np.searchsorted(parameters, to_end, side="left")  # bisect_left
        if len(parameters):
            lower = parameters[np.maximum(below - 1, 0)]
            upper = parameters[np.minimum(below, len(parameters) - 1)]
            ok &= ~((below > 0) & (to_end - lower <= slack))
            ok &= ~((below < len(parameters)) & (upper - to_end <= slack))
        later = (table.incarnation > 1).tolist()
        out: list[tuple | None] = [
            (shape, (1 << b) - 1, l) if good and shape is not None else None
            for shape, good, b, l in zip(table.shapes, ok.tolist(), below.tolist(), later)
        ]
        self.seen += n - out.count(None)
        return out

    def fast_template(self, key: tuple | None) -> "Template | None":
        """The template whose members take the fast lane under ``key`` (no checks, no steps), if known."""
        template = self.templates.get(key) if key is not None else None
        if template is None or template is _UNTEMPLATED or template.checked:  # type: ignore[union-attr]
            return None
        return template  # type: ignore[return-value]

    def resolve(self, key: tuple, conn: Connection) -> object | None:
        """The template of ``key`` (or the mark of a key left untemplated); for a key not seen yet,
        the template found by the connection's event order.  None: none yet (``replay`` gives None:
        the connection takes the reference path, with ``order_of``, then ``learn``)."""
        template = self.templates.get(key)
        if template is not None:
            return template
        pending = self._pending.get(conn.id)
        if pending is not None and pending[0] is conn:
            return None  # looked for already
        order = _event_order(conn)
        orders_key = _endpoint_orders_key(key, conn, order)
        template = next((t for t in self.by_endpoint_orders.get(orders_key, ()) if t.interleaves_as(order)), None)
        if template is None:
            self._pending[conn.id] = (conn, orders_key, order)
            return None
        # The key fixes the final event order (shape.py), so it fixes this choice too.
        self._remember(key, template)
        self._served.add(id(template))
        self.ordered_hits += 1
        return template

    def replay(self, key: tuple, conn: Connection) -> Known | None:
        """The connection's replay from a template, or None: replay (with ``order_of``) and check
        it, then ``learn``."""
        template = self.resolve(key, conn)
        if template is None or template is _UNTEMPLATED:
            return None
        self.hits += 1
        checked: bool = template.checked  # type: ignore[union-attr]
        if checked:
            self.checked_hits += 1
        return Known(template.instantiate(conn), checked, template.rerun, template)  # type: ignore[union-attr, arg-type]

    def order_of(self, conn: Connection) -> list[tuple[int, int]] | None:
        """The event order ``replay`` computed for ``conn`` on a miss (None: it computed none)."""
        pending = self._pending.get(conn.id)
        return None if pending is None or pending[0] is not conn else pending[2]

    def learn(self, key: tuple, conn: Connection, rep: Replay, rerun: frozenset[str]) -> None:
        """Remember what the reference path made of the first connection of ``key``; ``rerun``:
        Template.rerun."""
        pending = self._pending.pop(conn.id, None)
        if key in self.templates or pending is None or pending[0] is not conn:
            return
        if self.held >= MAX_TEMPLATES:
            self._sweep()  # bounded memory on captures of millions of connections
        _, orders_key, order = pending
        later = key[2]
        template = template_of(conn, rep, order, checked=bool(rerun) or later, rerun=frozenset(rerun))
        self._remember(key, _UNTEMPLATED if template is None else template)
        if template is not None:
            self.by_endpoint_orders.setdefault(orders_key, []).append(template)
            self.held += 1
            self._served.add(id(template))

    def _sweep(self) -> None:
        """Forget the templates no longer in use: those no held key names and that served no new
        key since the last sweep; all of them when most are in use (learning afresh)."""
        live = {id(t) for t in self.templates.values()} | self._served
        self._served.clear()
        kept = 0
        for orders_key, held in list(self.by_endpoint_orders.items()):
            still = [t for t in held if id(t) in live]
            if still:
                self.by_endpoint_orders[orders_key] = still
                kept += len(still)
            else:
                del self.by_endpoint_orders[orders_key]
        if kept > MAX_TEMPLATES // 2:
            self.templates.clear()
            self.by_endpoint_orders.clear()
            kept = 0
        self.held = kept

    def _remember(self, key: tuple, template: object) -> None:
        if len(self.templates) >= MAX_KEYS:
            self.templates.clear()  # the templates stay: ``replay`` finds them again by event order
        self.templates[key] = template


def _event_order(conn: Connection) -> list[tuple[int, int]]:
    """timeline.event_order as the replay computes it."""
    columns = segment_columns(conn)
    client_leg, server_leg = handshake_legs(conn, columns)
    legs = Legs(client_leg or 0, server_leg or 0, client_leg is not None and server_leg is not None)
    return event_order(conn, _controls(columns), legs, columns)


def _endpoint_orders_key(key: tuple, conn: Connection, order: list[tuple[int, int]]) -> tuple:
    """The key without the base-key order, with each endpoint's own event order instead."""
    shape, bits, later = key
    rows = np.frombuffer(shape, dtype=ROW_DTYPE, count=conn.packets)
    structure = rows["code"].tobytes() + rows["ack"].tobytes() + shape[-1:]
    sender = conn.sender.tolist()
    own: tuple[list, list] = ([], [])
    for kind, i in order:
        own[sender[i] if kind == SEND else 1 - sender[i]].append((kind, i))
    return structure, bits, later, tuple(own[0]), tuple(own[1])


def _controls(cols) -> Controls:
    """facts.find_controls over the columns."""
    syn: list[int | None] = [None, None]
    fin: list[int | None] = [None, None]
    for side, flags, seq, length in zip(cols.sender, cols.flags, cols.seq, cols.length):
        if flags & (SYN | FIN) and not flags & RST:
            if flags & SYN and syn[side] is None:
                syn[side] = seq
            if flags & FIN and fin[side] is None:
                fin[side] = seq + length + (1 if flags & SYN else 0)
    return Controls((syn[0], syn[1]), (fin[0], fin[1]))
