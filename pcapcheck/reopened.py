"""Reopened tuples as columns: what a templated incarnation and the templated one after it do to
each other, read from the rebuild's table without making either into objects.

Two things join consecutive incarnations of a 4-tuple (analysis): the later one's first SYN may end
the earlier one's TIME-WAITs (replay.incarnation.end_time_wait_by_new_incarnation), and the reuse
rules (short-time-wait, time-wait-reuse) compare the later one's opening with the earlier one's
TIME-WAITs and what it sent (checks.reuse).  When both incarnations were made from templates
(replay.memo), what those read is either fixed by the templates (the TIME-WAITs held, at which
segment, for how long; the transitions) or a value of the rows (times, frames, flags, sequence
numbers, timestamps).  ``pair_columns`` reads the rows of every pair of a run at once, with a few
numpy operations over all of them, and hands the values to the functions the object path uses
(``checks.reuse.reuse_from``); only that last step is a loop over the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks.reuse import Opening, Reuse, Sent, SynAt, reuse_from
from .connections import ConnectionTable, Endpoint
from .replay.memo import Template
from .replay.model import State
from .segments import ACK, FIN, SYN, Side

_MASK = 0xFFFFFFFF
_SIDES = (Side.CLIENT, Side.SERVER)
# checks.reuse._accepted: the holder's replay took it from SYN-RECEIVED into the new connection.
_ACCEPTED_INTO = (State.ESTABLISHED, State.FIN_WAIT_1, State.CLOSE_WAIT)


@dataclass(frozen=True, slots=True)
class PairColumns:
    """What each (earlier, later) pair gives, aligned with the pairs."""

    # Which of the earlier incarnation's TIME-WAITs (in its template's order) the later one's
    # first SYN ended; None when it ended none.
    ended: list[tuple[bool, ...] | None]
    syn_rows: list[int]  # the later incarnation's first SYN without ACK, as a row of the table (-1: none)
    reuses: list[Reuse | None]  # checks.reuse.find_reuse of the later incarnation
    own: list[bool]  # the later incarnation connects an endpoint to itself: left to the object path


@dataclass(frozen=True, slots=True)
class Ends:
    """What the reuse rules read of a connection besides its Reuse: its id, its endpoints (for
    their messages) and the flags it saw (checks skip rules whose flags it never saw)."""

    id: int
    client: Endpoint
    server: Endpoint
    flags_seen: int

    def endpoint(self, side: Side) -> Endpoint:
        return self.client if side is Side.CLIENT else self.server


def ends_of(table: ConnectionTable, k: int) -> Ends:
    return Ends(k + 1, *table.endpoints(k), int(table.flags_seen[k]))


class _Ranges:
    """The rows of some connections of a table, gathered one after another."""

    def __init__(self, table: ConnectionTable, ks: np.ndarray):
        starts, ends = table.starts[ks], table.ends[ks]
        lengths = ends - starts
        self.first = np.zeros(len(ks), dtype=np.int64)  # each connection's first place in ``rows``
        np.cumsum(lengths[:-1], out=self.first[1:])
        # Row of the table at each place: its connection's start plus its place within it.
        self.local = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(self.first, lengths)
        self.at = np.repeat(starts, lengths) + self.local
        self._rows = table.rows
        self.sender = table.sender[self.at]

    def column(self, name: str) -> np.ndarray:
        """One field of the rows gathered (gathering whole rows would copy 131 bytes a row)."""
        return self._rows[name][self.at]

    def any(self, mask: np.ndarray) -> np.ndarray:
        return np.logical_or.reduceat(mask, self.first) if len(self.first) else mask[:0]

    def first_place(self, mask: np.ndarray) -> np.ndarray:
        """Per connection: the place of its first row in ``mask`` within it, -1 when none."""
        big = np.iinfo(np.int64).max
        firsts = np.minimum.reduceat(np.where(mask, self.local, big), self.first)
        return np.where(firsts == big, -1, firsts)

    def last_at(self, mask: np.ndarray) -> np.ndarray:
        """Per connection: the place in ``rows`` of its last row in ``mask``, -1 when none."""
        return np.maximum.reduceat(np.where(mask, np.arange(len(mask)), -1), self.first)


def pair_columns(
    table: ConnectionTable, ps: Sequence[int], ks: Sequence[int], earlier: Sequence[Template], later: Sequence[Template]
) -> PairColumns:
    """The pairs (ps[i], ks[i]) of table indices, ks[i] the incarnation right after ps[i] on its
    tuple, made from templates earlier[i] and later[i]."""
    P, K = np.asarray(ps, dtype=np.int64), np.asarray(ks, dtype=np.int64)
    old, new = _Ranges(table, P), _Ranges(table, K)

    # The later incarnation's opening (checks.reuse._opening): its first SYN without ACK, else a
    # SYN-ACK in its first row that answers a SYN the capture lost.
    flags = new.column("flags")
    syn = (flags & SYN) != 0
    synack = syn & ((flags & ACK) != 0)
    first_syn = new.first_place(syn & ~synack)
    has_syn = first_syn >= 0
    lost = ~has_syn & synack[new.first]
    place = new.first + np.where(has_syn, first_syn, 0)
    opening = table.rows[new.at[place]]  # one row per pair
    opening_sender = new.sender[place]
    syn_time = opening["ts_ns"] / 1e9
    isn = np.where(lost, table.ack[new.at[place]] - 1, table.seq[new.at[place]]) & _MASK
    ts = np.where(lost, opening["ts_ecr"], opening["ts_val"])
    # Did each side answer the SYN with a SYN-ACK (checks.reuse._accepted's first reading)?
    answered = [new.any(synack & (new.sender == side)).tolist() for side in (0, 1)]

    waits, ended = _time_waits(table, P, earlier, syn_time, has_syn)
    sent = _sent(table, old)

    client, server = table.client_key, table.server_key
    same_port = (table.client_port[K] == table.server_port[K]).tolist()
    own = [same and client[k] == server[k] for k, same in zip(ks, same_port)]
    # The earlier incarnation's client is the later one's (else its server: one tuple).
    kept_port = ((table.client_port[P] == table.client_port[K]) & (table.version[P] == table.version[K])).tolist()
    kept = [same and client[p] == client[k] for p, k, same in zip(ps, ks, kept_port)]

    reuses: list[Reuse | None] = []
    accepted_by: dict[int, tuple[bool, bool]] = {}
    for i, (frame, time, sender, number, stamp, has_ts, cut, is_syn, is_lost) in enumerate(
        zip(
            opening["frame"].tolist(), syn_time.tolist(), opening_sender.tolist(), isn.tolist(), ts.tolist(),
            opening["has_ts"].tolist(), opening["truncated"].tolist(), has_syn.tolist(), lost.tolist(),
        )
    ):  # fmt: skip
        if own[i] or not (is_syn or is_lost):
            reuses.append(None)
            continue
        side = _SIDES[sender]
        opener = side.peer if is_lost else side
        at = (SynAt(side, frame, time), Opening(opener, number, stamp if has_ts else None, cut), is_lost)
        swap = not kept[i]
        in_new = [(holder.peer if swap else holder, entered, entered_frame) for holder, entered, entered_frame in waits[i]]
        template = later[i]
        by_transitions = accepted_by.get(id(template))
        if by_transitions is None:
            by_transitions = accepted_by[id(template)] = (_accepted(template, Side.CLIENT), _accepted(template, Side.SERVER))

        def accepted(holder: Side, i: int = i, by_transitions: tuple[bool, bool] = by_transitions) -> bool:
            h = 0 if holder is Side.CLIENT else 1
            return answered[h][i] or by_transitions[h]

        what_sent = sent[(0 if opener is Side.CLIENT else 1) ^ swap][i]
        reuses.append(reuse_from(in_new, at, accepted, lambda _sender, what_sent=what_sent: what_sent))
    syn_rows = np.where(has_syn, table.starts[K] + first_syn, -1).tolist()
    return PairColumns(ended, syn_rows, reuses, own)


def _time_waits(
    table: ConnectionTable, P: np.ndarray, earlier: Sequence[Template], syn_time: np.ndarray, has_syn: np.ndarray
) -> tuple[list[list[tuple[Side, float, int]]], list[tuple[bool, ...] | None]]:
    """Per pair: checks.reuse._time_waits of the earlier incarnation (holder, entered time, frame),
    and which of its TIME-WAITs the later one's SYN ended (end_time_wait_by_new_incarnation)."""
    pair: list[int] = []
    rows: list[int] = []
    specs: list[tuple] = []
    per_template: dict[int, list[tuple]] = {}
    starts = table.starts[P].tolist()
    for i, template in enumerate(earlier):
        spec = per_template.get(id(template))
        if spec is None:
            spec = per_template[id(template)] = _wait_spec(template)
        for entry in spec:
            pair.append(i)
            rows.append(starts[i] + entry[1])
            specs.append(entry)
    at_rows = np.asarray(rows, dtype=np.int64)
    entered = table.rows["ts_ns"][at_rows] / 1e9
    frames = table.rows["frame"][at_rows].tolist()
    offsets = np.asarray([s[2] for s in specs], dtype=np.float64)
    entered = entered + offsets  # a TIME-WAIT entered at a deadline (a segment's time plus offset)
    where = np.asarray(pair, dtype=np.int64)
    durations = np.asarray([s[3] for s in specs], dtype=np.float64)
    expires = np.asarray([s[4] for s in specs], dtype=bool)
    at = syn_time[where]
    # A TIME-WAIT still held at the SYN; not one read from the transitions (no TIME-WAIT record).
    held = has_syn[where] & np.asarray([s[5] for s in specs], dtype=bool) & (entered <= at)
    held &= ~expires | (entered + durations > at)
    waits: list[list[tuple[Side, float, int]]] = [[] for _ in range(len(P))]
    ended: list[list[bool]] = [[] for _ in range(len(P))]
    for i, spec, time, frame, end in zip(pair, specs, entered.tolist(), frames, held.tolist()):
        waits[i].append((spec[0], time, frame))
        if spec[5]:
            ended[i].append(end)
    return waits, [tuple(e) if any(e) else None for e in ended]


def _wait_spec(template: Template) -> list[tuple]:
    """(holder, segment index, offset, duration, expires, is a TIME-WAIT record) of each TIME-WAIT
    checks.reuse._time_waits reads from a replay made from ``template``."""
    if template.time_waits:
        return [(w.endpoint, w.entered, 0.0, w.duration, w.ended_by == "expired", True) for w in template.time_waits]
    return [
        (t.endpoint, t.index, t.offset or 0.0, 0.0, False, False)
        for t in template.transitions
        if t.to_state is State.TIME_WAIT
    ]


def _accepted(later: Template, holder: Side) -> bool:
    """checks.reuse._accepted's second reading, fixed by the template: the holder's replay took it
    from SYN-RECEIVED into the new connection."""
    return any(
        t.endpoint is holder and t.from_state is State.SYN_RECEIVED and t.to_state in _ACCEPTED_INTO
        for t in later.transitions
    )


def _sent(table: ConnectionTable, old: _Ranges) -> tuple[list[Sent], list[Sent]]:
    """checks.reuse._sent of every earlier incarnation, for each side: its highest sequence number
    used, its last timestamp, whether the snap length cut one of its segments."""
    flags = old.column("flags")
    top = table.seq[old.at] + old.column("payload_len") + ((flags & SYN) != 0) + ((flags & FIN) != 0)
    has_ts, ts_val, truncated = old.column("has_ts"), old.column("ts_val"), old.column("truncated")
    out = []
    for side in (0, 1):
        mine = old.sender == side
        any_sent = old.any(mine).tolist()
        ends = (np.maximum.reduceat(np.where(mine, top, np.iinfo(np.int64).min), old.first) & _MASK).tolist()
        last = old.last_at(mine & has_ts)
        stamps = np.where(last >= 0, ts_val[np.maximum(last, 0)], 0).tolist()
        cut = old.any(mine & truncated).tolist()
        out.append([
            Sent(end if sent else None, stamp if at >= 0 else None, c)
            for end, sent, stamp, at, c in zip(ends, any_sent, stamps, last.tolist(), cut)
        ])  # fmt: skip
    return out[0], out[1]
