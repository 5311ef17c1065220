"""Reopened tuples as columns: what a templated incarnation and the templated one after it do to
each other, read from the rebuild's table without making either into objects.

Two things join consecutive incarnations of a 4-tuple (analysis): the later one's first SYN may end
the earlier one's TIME-WAITs (replay.incarnation.end_time_wait_by_new_incarnation), and the reuse
rules (short-time-wait, time-wait-reuse) compare the later one's opening with the earlier one's
TIME-WAITs and what it sent (checks.reuse).  When both incarnations were made from templates
(replay.memo), what those read is either fixed by the templates (the TIME-WAITs held, at which
segment, for how long; the transitions) or a value of the rows (times, frames, flags, sequence
numbers, timestamps).  ``pair_columns`` reads the rows of every pair of a run at once, with a few
numpy operations over all of them, and works out what ``checks.reuse.reuse_from`` makes of each
pair over those columns too: which TIME-WAIT counts, and the safeguard's verdict
(``verdict_codes``, held equal to checks.reuse.verdict_code by tests/test_reopened_columns.py).
Only the words come one pair at a time: ``lane_findings`` selects the pairs each reuse rule
reports over the columns, as its check (checks.reuse.reuse_check) selects a Reuse, and words each
one with the rule's own ``words``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .checks import ReuseRule
from .checks.reuse import (
    ISN_ABOVE,
    ISN_NOT_ABOVE,
    NO_NEWER_TS,
    TS_EQUAL_ISN_ABOVE,
    TS_NEWER,
    TS_NOT_NEWER,
    UNKNOWN,
    Reuse,
    Said,
    SynAt,
    Verdict,
    opening_text,
    verdict,
)
from .connections import ConnectionTable, endpoint_text
from .findings import Finding
from .replay.memo import Template
from .replay.model import State
from .segments import ACK, FIN, SYN, Side
from .timestamps import seconds

_MASK = 0xFFFFFFFF
_HALF = 1 << 31
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
    own: list[bool]  # the later incarnation connects an endpoint to itself: left to the object path
    reuse: "ReuseColumns"  # checks.reuse.find_reuse of the later incarnation

    @property
    def reuses(self) -> list[Reuse | None]:
        """find_reuse of each later incarnation, as objects (the lane itself reads the columns)."""
        return [self.reuse.of(i) for i in range(len(self.own))]


@dataclass(frozen=True, slots=True)
class ReuseColumns:
    """checks.reuse.reuse_from of every pair, as columns (numpy arrays aligned with the pairs)."""

    found: np.ndarray  # bool: a reuse (False where the lane leaves the pair to objects, ``own``)
    holder: np.ndarray  # 0 client, 1 server: who held TIME-WAIT, as a side of the new connection
    entered_time: np.ndarray  # float64
    entered_frame: np.ndarray
    elapsed: np.ndarray  # float64
    verdict: np.ndarray  # checks.reuse.verdict_code
    syn_sender: np.ndarray  # 0 or 1: who sent the opening segment (its SYN-ACK when the SYN was lost)
    syn_frame: np.ndarray
    syn_time: np.ndarray  # float64
    syn_lost: np.ndarray  # bool
    # What checks.reuse.verdict words: the SYN's TSval (has_ts) and ISN, what its sender sent in
    # the old incarnation (its last TSval, has_last; its largest sequence number, has_end), and
    # whether the holder received the SYN.
    ts_val: np.ndarray
    has_ts: np.ndarray
    isn: np.ndarray
    last_ts: np.ndarray
    has_last: np.ndarray
    old_end: np.ndarray
    has_end: np.ndarray
    received: np.ndarray

    def of(self, i: int) -> Reuse | None:
        """Pair ``i``'s Reuse as find_reuse makes it."""
        return self.objects([i])[0] if self.found[i] else None

    def objects(self, indices: Sequence[int]) -> list[Reuse]:
        """The Reuse of each pair at ``indices`` (each one ``found``), as find_reuse makes it."""
        at = np.asarray(indices, dtype=np.int64)
        columns = zip(
            self.holder[at].tolist(), self.syn_sender[at].tolist(), self.syn_frame[at].tolist(),
            self.syn_time[at].tolist(), self.entered_time[at].tolist(), self.entered_frame[at].tolist(),
            self.elapsed[at].tolist(), self.syn_lost[at].tolist(), self.verdict[at].tolist(), self.verdicts(at),
        )  # fmt: skip
        return [
            Reuse(
                _SIDES[holder], SynAt(_SIDES[sender], frame, time), entered, entered_frame, elapsed,
                said.safeguard, said.unsafe, said.unknown, lost, code,
            )  # fmt: skip
            for holder, sender, frame, time, entered, entered_frame, elapsed, lost, code, said in columns
        ]

    def verdicts(self, at: np.ndarray) -> list[Verdict]:
        """checks.reuse.verdict of the pairs ``at``: the words of each one's safeguard."""
        columns = zip(
            self.verdict[at].tolist(), self.ts_val[at].tolist(), self.has_ts[at].tolist(), self.last_ts[at].tolist(),
            self.has_last[at].tolist(), self.received[at].tolist(), self.isn[at].tolist(), self.old_end[at].tolist(),
            self.has_end[at].tolist(),
        )  # fmt: skip
        return [
            verdict(code, ts if has_ts else None, last if has_last else None, received, isn, end if has_end else None)
            for code, ts, has_ts, last, has_last, received, isn, end, has_end in columns
        ]


def lane_findings(
    table: ConnectionTable, ks: np.ndarray, reuse: ReuseColumns, lane: np.ndarray, rules: Sequence[ReuseRule]
) -> list[Finding]:
    """What the reuse rules find in the later incarnations ``ks`` (table indices, aligned with the
    pairs) of the pairs where ``lane`` is set, as their checks find it (checks.reuse.reuse_check on
    each one's Reuse): rule by rule, in the order of ``rules`` (a connection's findings are all at
    its reuse's SYN, so by rule id within a connection), pair by pair within a rule."""
    flags_seen = table.flags_seen[ks]
    found = lane & reuse.found
    chosen = []
    for rule in rules:
        # checks.reuse.reuse_check, over columns: a verdict of the rule's, before TIME-WAIT could end;
        # and _findings' NEEDS.
        mask = found & ((flags_seen & rule.needs) == rule.needs) & np.isin(reuse.verdict, list(rule.verdicts))
        mask &= ~(reuse.elapsed >= rule.time_wait)
        chosen.append(mask)
    said = _said(table, ks, reuse, np.flatnonzero(np.logical_or.reduce(chosen)) if chosen else np.zeros(0, np.int64))
    out: list[Finding] = []
    holder, frame, time = reuse.holder.tolist(), reuse.syn_frame.tolist(), reuse.syn_time.tolist()
    connection = (ks + 1).tolist()
    for rule, mask in zip(rules, chosen):
        rule_id, severity, rfc = rule.spec.id, rule.severity, rule.spec.rfc_text
        words, time_wait = rule.words, rule.time_wait
        for i in np.flatnonzero(mask).tolist():
            message, quality = words(said[i], time_wait)
            # CheckContext.finding at the reuse's SYN, by its holder.
            side = _SIDES[holder[i]]
            out.append(Finding(rule_id, severity, connection[i], side, frame[i], time[i], message, rfc, quality))
    return out


def _said(table: ConnectionTable, ks: np.ndarray, reuse: ReuseColumns, at: np.ndarray) -> dict[int, Said]:
    """checks.reuse.Said of the pairs ``at``, by pair: what the rules' ``words`` read of each reuse."""
    holders = reuse.holder[at]
    opener = reuse.syn_sender[at] ^ reuse.syn_lost[at]
    columns = zip(
        at.tolist(), endpoint_texts(table, ks[at], holders), (opener == holders).tolist(),
        reuse.entered_frame[at].tolist(), reuse.syn_lost[at].tolist(), reuse.syn_frame[at].tolist(),
        reuse.elapsed[at].tolist(), reuse.verdict[at].tolist(), reuse.verdicts(at),
    )  # fmt: skip
    return {
        i: Said(text, opened, entered, opening_text(lost, frame), elapsed, code, judged.safeguard, judged.unsafe)
        for i, text, opened, entered, lost, frame, elapsed, code, judged in columns
    }


def endpoint_texts(table: ConnectionTable, ks: np.ndarray, sides: np.ndarray) -> list[str]:
    """CheckContext.who of each connection ``ks[i]`` of the table and its side ``sides[i]`` (0
    client, 1 server): 'client 198.18.0.1:40000'."""
    out = []
    client_key, server_key, address = table.client_key, table.server_key, table.address
    client, server = Side.CLIENT.value, Side.SERVER.value
    for k, side, version, client_port, server_port in zip(
        ks.tolist(), sides.tolist(), table.version[ks].tolist(), table.client_port[ks].tolist(),
        table.server_port[ks].tolist(),
    ):  # fmt: skip
        if side == 0:
            out.append(f"{client} {endpoint_text(address(client_key[k], version), client_port)}")
        else:
            out.append(f"{server} {endpoint_text(address(server_key[k], version), server_port)}")
    return out


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
    syn_sender = new.sender[place].astype(np.int64)
    syn_time = seconds(opening["ts_ns"])
    isn = np.where(lost, table.ack[new.at[place]] - 1, table.seq[new.at[place]]) & _MASK
    ts = np.where(lost, opening["ts_ecr"], opening["ts_val"]).astype(np.int64)
    opener = syn_sender ^ lost  # who sent the SYN, captured or not

    waits, ended = _time_waits(table, P, earlier, syn_time, has_syn)

    client, server = table.client_key, table.server_key
    same_port = (table.client_port[K] == table.server_port[K]).tolist()
    own = [same and client[k] == server[k] for k, same in zip(ks, same_port)]
    # The earlier incarnation's client is the later one's (else its server: one tuple).
    kept_port = ((table.client_port[P] == table.client_port[K]) & (table.version[P] == table.version[K])).tolist()
    swap = ~np.asarray([same and client[p] == client[k] for p, k, same in zip(ps, ks, kept_port)], dtype=bool)

    # checks.reuse.reuse_from: the first of the old TIME-WAITs (in order) whose holder, as a side of
    # the new connection, sent the SYN or accepted it (checks.reuse._accepted: its SYN-ACK, else the
    # later template's transitions).
    distinct, of_pair = _distinct(later)
    by_template = np.array([[_accepted(t, Side.CLIENT) for t in distinct], [_accepted(t, Side.SERVER) for t in distinct]])
    by_transitions = by_template.reshape(2, len(distinct))[:, of_pair]
    answered = np.stack([new.any(synack & (new.sender == side)) for side in (0, 1)])
    accepts = answered | by_transitions
    pair, holder_old, entered, entered_frames = waits
    holder = holder_old ^ swap[pair]
    opens = ~np.asarray(own, dtype=bool) & (has_syn | lost)
    taking = opens[pair] & ((holder == opener[pair]) | accepts[holder, pair])
    pairs_found, first = np.unique(pair[taking], return_index=True)
    chosen = np.flatnonzero(taking)[first]
    found = np.zeros(len(ks), dtype=bool)
    found[pairs_found] = True
    holder_of = np.zeros(len(ks), dtype=np.int64)
    holder_of[pairs_found] = holder[chosen]
    entered_time = np.zeros(len(ks), dtype=np.float64)
    entered_time[pairs_found] = entered[chosen]
    entered_frame = np.zeros(len(ks), dtype=np.int64)
    entered_frame[pairs_found] = entered_frames[chosen]

    # What the SYN's sender sent in the old incarnation (checks.reuse._sent), and the verdict.
    sent = _sent(table, old)
    by = opener ^ swap  # the opener as a side of the old connection
    pick = np.arange(len(ks))
    old_end, has_end, last_ts, has_last, old_cut = (np.stack(column)[by, pick] for column in sent)
    received = opener != holder_of
    verdicts = verdict_codes(
        opening["truncated"].astype(bool), ts, opening["has_ts"].astype(bool), old_cut, last_ts, has_last, received,
        isn, old_end, has_end,
    )  # fmt: skip
    reuse = ReuseColumns(
        found, holder_of, entered_time, entered_frame, syn_time - entered_time, verdicts, syn_sender,
        opening["frame"].astype(np.int64), syn_time, lost, ts, opening["has_ts"].astype(bool), isn, last_ts, has_last,
        old_end, has_end, received,
    )  # fmt: skip
    syn_rows = np.where(has_syn, table.starts[K] + first_syn, -1).tolist()
    return PairColumns(ended, syn_rows, own, reuse)


def verdict_codes(
    syn_cut: np.ndarray, ts_val: np.ndarray, has_ts: np.ndarray, old_cut: np.ndarray, last_ts: np.ndarray,
    has_last: np.ndarray, received: np.ndarray, isn: np.ndarray, old_end: np.ndarray, has_end: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """checks.reuse.verdict_code over columns, in the same order of tests."""
    isn_above = has_end & (_after(isn, old_end) | (isn == old_end))
    both = has_ts & has_last
    return np.select(
        [
            (syn_cut & ~has_ts) | (~has_last & old_cut),
            both & _after(ts_val, last_ts),
            both & (ts_val == last_ts) & received & isn_above,
            both,
            received & has_end & isn_above,
            received & has_end,
        ],
        [UNKNOWN, TS_NEWER, TS_EQUAL_ISN_ABOVE, TS_NOT_NEWER, ISN_ABOVE, ISN_NOT_ABOVE],
        NO_NEWER_TS,
    )


def _after(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """checks.reuse._after over columns."""
    difference = (a - b) & _MASK
    return (difference > 0) & (difference < _HALF)


def _time_waits(
    table: ConnectionTable, P: np.ndarray, earlier: Sequence[Template], syn_time: np.ndarray, has_syn: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], list[tuple[bool, ...] | None]]:
    """checks.reuse._time_waits of every earlier incarnation, flat, pair by pair and in order within
    each: (pair, holder as a side of the old connection, entered time, entered frame); and per pair
    which of its TIME-WAITs the later one's SYN ended (end_time_wait_by_new_incarnation)."""
    distinct, of_pair = _distinct(earlier)
    # Each distinct template's entries (_wait_spec), one after another: a pair's entries are its
    # template's, in order, found by the template's first entry and count.
    spec_of = [_wait_spec(template) for template in distinct]
    specs = [entry for spec in spec_of for entry in spec]
    counts = np.array([len(spec) for spec in spec_of], dtype=np.int64)
    firsts = np.zeros(len(distinct), dtype=np.int64)
    np.cumsum(counts[:-1], out=firsts[1:])
    per_pair = counts[of_pair]
    where = np.repeat(np.arange(len(P), dtype=np.int64), per_pair)
    pair_first = np.zeros(len(P), dtype=np.int64)
    np.cumsum(per_pair[:-1], out=pair_first[1:])
    entry = np.repeat(firsts[of_pair], per_pair) + np.arange(len(where), dtype=np.int64) - pair_first[where]
    holders = np.array([0 if s[0] is Side.CLIENT else 1 for s in specs], dtype=np.int64)[entry]
    index = np.array([s[1] for s in specs], dtype=np.int64)[entry]
    offsets = np.array([s[2] for s in specs], dtype=np.float64)[entry]
    durations = np.array([s[3] for s in specs], dtype=np.float64)[entry]
    expires = np.array([s[4] for s in specs], dtype=bool)[entry]
    record = np.array([s[5] for s in specs], dtype=bool)[entry]
    at_rows = table.starts[P][where] + index
    entered = seconds(table.rows["ts_ns"][at_rows])
    frames = table.rows["frame"][at_rows].astype(np.int64)
    entered = entered + offsets  # a TIME-WAIT entered at a deadline (a segment's time plus offset)
    at = syn_time[where]
    # A TIME-WAIT still held at the SYN; not one read from the transitions (no TIME-WAIT record).
    held = has_syn[where] & record & (entered <= at)
    held &= ~expires | (entered + durations > at)
    ended: list[tuple[bool, ...] | None] = [None] * len(P)
    # A pair with a TIME-WAIT the SYN ended gets a tuple: a flag per record entry of the pair, in order.
    records = where[record]
    bounds = np.searchsorted(records, np.arange(len(P) + 1, dtype=np.int64)).tolist()
    flags = held[record].tolist()
    for i in np.unique(where[held]).tolist():
        ended[i] = tuple(flags[bounds[i] : bounds[i + 1]])
    return (where, holders, entered, frames), ended


def _distinct(templates: Sequence[Template]) -> tuple[list[Template], np.ndarray]:
    """The distinct templates (by identity) in order of first appearance, and each one's index there."""
    ids = np.fromiter(map(id, templates), dtype=np.uint64, count=len(templates))
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")
    rank = np.empty(len(first), dtype=np.int64)
    rank[by_appearance] = np.arange(len(first), dtype=np.int64)
    return [templates[i] for i in first[by_appearance].tolist()], rank[inverse.reshape(-1)]


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


def _sent(table: ConnectionTable, old: _Ranges) -> tuple[list[np.ndarray], ...]:
    """checks.reuse._sent of every earlier incarnation, for each side (a list of the two): its
    highest sequence number used (end) and whether it sent anything (has_end), its last timestamp
    (last_ts) and whether one had a timestamp (has_last), whether the snap length cut one of its
    segments."""
    flags = old.column("flags")
    top = table.seq[old.at] + old.column("payload_len") + ((flags & SYN) != 0) + ((flags & FIN) != 0)
    has_ts, ts_val, truncated = old.column("has_ts"), old.column("ts_val"), old.column("truncated")
    ends, has_ends, stamps, has_stamps, cuts = [], [], [], [], []
    for side in (0, 1):
        mine = old.sender == side
        has_ends.append(old.any(mine))
        ends.append(np.maximum.reduceat(np.where(mine, top, np.iinfo(np.int64).min), old.first) & _MASK)
        last = old.last_at(mine & has_ts.astype(bool))
        has_stamps.append(last >= 0)
        stamps.append(np.where(last >= 0, ts_val[np.maximum(last, 0)], 0).astype(np.int64))
        cuts.append(old.any(mine & truncated.astype(bool)))
    return ends, has_ends, stamps, has_stamps, cuts
