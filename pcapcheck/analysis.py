"""One analysis run: capture -> segments -> connections -> replay -> findings, gathered for the reports.

This module only wires the stages together; each stage is usable and testable on its own.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from .capture import CaptureInfo, open_capture
from .catalogue import RuleSpec, load_catalogue
from .checks import READS_PREVIOUS, run_checks
from .config import Config
from .connections import Connection, ConnectionTable, Endpoint, rebuild_table
from .errors import PcapcheckError
from .findings import Finding
from .partition import BUCKETS_PER_JOB, read_capture
from .profiles import Profile
from .replay import end_time_wait_by_new_incarnation, replay
from .replay.memo import MAX_TEMPLATES, ReplayMemo, Template, memo_enabled, memo_for_run
from .replay.incarnation import HALF_OPEN_STATES, first_syn_row
from .replay.model import PatternMove, Replay, Step, TemplatedTransitions, Transition, TransitionPattern
from .segments import Side, flags_text
from .templated import BlockKind, ConnectionReports, TemplatedBlock, templated_block
from .timestamps import second


@dataclass(slots=True)
class ConnectionReport:
    """What the reports need to know about one connection."""

    id: int
    client: Endpoint
    server: Endpoint
    incarnation: int
    roles_inferred: bool
    first_frame: int
    last_frame: int
    start: float
    end: float
    # From the nanoseconds: end - start of the rounded floats could be off in the last place.
    duration: float
    packets: int
    packets_client_to_server: int
    packets_server_to_client: int
    bytes_client_to_server: int
    bytes_server_to_client: int
    client_final_state: str
    server_final_state: str
    close: str
    vantage: str
    flags_seen: str
    transitions: list[Transition]
    # Kept only for connections with findings: the ladder diagram draws them.
    steps: list[Step] | None = None


@dataclass(slots=True)
class AnalysisResult:
    capture: CaptureInfo
    # In id order: a list, or for a capture too large to hold a pcapcheck.store.ConnectionStore
    # (read from disk on each iteration).  Reports use len(), iteration and slicing only.
    connections: Sequence[ConnectionReport]
    # A list, or for a partitioned capture a pcapcheck.finding_store.FindingStore (read from disk).
    findings: Sequence[Finding]
    rules: dict[str, RuleSpec]
    profile: Profile
    config: Config
    # Set when the run stopped early on bad input: the error line; results so far are still reported.
    error: str | None = None
    suppressed: int = 0  # findings matched by the baseline


@dataclass(slots=True)
class ConnectionsAnalysis:
    """What replaying and checking a stream of connections produced (one whole run, or one shard)."""

    reports: Sequence[ConnectionReport]  # in order of connection id (a list, or a ConnectionStore)
    # In the order the checks emitted them, connection by connection (a list); a FindingStore
    # (buckets.assemble) is in the run's final order already.
    findings: Sequence[Finding]
    error: str | None = None
    # With ``error``: connections whose first frame is at or after this one are missing (the one
    # being analysed when it struck); None when it struck before any connection (while the capture
    # was read).  A shard merge cuts the other shards' results there, as one process would stop.
    error_frame: int | None = None


def connection_report(conn: Connection, rep: Replay, keep_steps: bool) -> ConnectionReport:
    rows = conn.rows
    frames = rows["frame"]
    totals = conn.totals
    if totals is None:
        totals = (
            conn.packets_sent(Side.CLIENT), conn.packets_sent(Side.SERVER),
            conn.bytes_sent(Side.CLIENT), conn.bytes_sent(Side.SERVER),
        )  # fmt: skip
    transitions = rep.transitions
    final_state = rep.final_state
    return ConnectionReport(
        id=conn.id,
        client=conn.client,
        server=conn.server,
        incarnation=conn.incarnation,
        roles_inferred=conn.roles_inferred,
        first_frame=int(frames[0]),
        last_frame=int(frames[-1]),
        start=conn.start,
        end=conn.end,
        duration=conn.duration,
        packets=len(rows),
        packets_client_to_server=totals[0],
        packets_server_to_client=totals[1],
        bytes_client_to_server=totals[2],
        bytes_server_to_client=totals[3],
        client_final_state=final_state[Side.CLIENT].value,
        server_final_state=final_state[Side.SERVER].value,
        close=rep.close.value,
        vantage=rep.vantage.value,
        flags_seen=_flags_text(conn.flags_seen),
        # A templated replay's transitions stay compact (the writers format them in one go).
        transitions=transitions.copy() if type(transitions) is TemplatedTransitions else list(transitions),
        steps=list(rep.steps) if keep_steps else None,
    )


# Flag combinations are few (9 bits): each text is made once.
_flags_text = functools.cache(flags_text)


def analyze(
    paths: Sequence[str],
    config: Config,
    *,
    reader: str = "dpkt",
    progress: Callable[[int], None] | None = None,
    jobs: int = 1,
    render: Callable | None = None,
    steps: bool = True,
    all_reports: bool = True,
    by_id: bool = True,
) -> AnalysisResult:
    """Run every stage over ``paths``.

    Bad input discovered part-way (a corrupt record in the middle of a file) does not throw away
    what was already analysed: the result carries ``error`` and the CLI still writes the reports,
    then exits 2.  Bad input found before anything was read raises PcapcheckError.

    ``jobs`` > 1 (0 = one per core) shards the connections by 4-tuple across that many processes
    (pcapcheck.shard); the result is the same as with one.

    ``render`` (reports.fragments.Renderer, from the CLI) makes each connection's report text where
    a partitioned capture's bucket is analysed — in the worker processes under ``jobs``.

    ``steps`` False: reports keep no replay steps (only the HTML ladder draws them; the CLI asks
    for them when it writes HTML).  Everything else is the same.

    ``all_reports`` False: a partitioned capture keeps on disk only the reports of connections with
    findings (``result.connections`` then gives those by id, ``document.connections_by_id``, and
    cannot be iterated), for a caller that reads no others: the terminal, SARIF, the baseline, and
    the JSON and CSV from ``render``'s text.  The HTML and JUnit reports read every connection.
    ``by_id`` False as well: nothing looks connections up by id either (the CLI under --quiet with
    no SARIF and no baseline), so a partitioned capture keeps no report once its text is made.
    """
    catalogue = load_catalogue(config.extra_rule_dirs)
    config.validate(catalogue)
    profile = config.profile_for_run()
    with _without_cycle_collection():
        return _analyze(
            paths, config, catalogue, profile, reader=reader, progress=progress, jobs=jobs, render=render,
            steps=steps, all_reports=all_reports, by_id=by_id,
        )  # fmt: skip


@contextmanager
def _without_cycle_collection():
    """The run allocates millions of short-lived, acyclic objects (segments, steps): the cyclic
    collector's passes re-scan the live ones over and over, for almost nothing to collect (3,057
    objects in cycles after a 1M-packet capture).  Off while analysing: 3% of the run; the
    reference counts free everything else as before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _analyze(
    paths: Sequence[str],
    config: Config,
    catalogue: dict[str, RuleSpec],
    profile: Profile,
    *,
    reader: str,
    progress: Callable[[int], None] | None,
    jobs: int,
    render: Callable | None = None,
    steps: bool = True,
    all_reports: bool = True,
    by_id: bool = True,
) -> AnalysisResult:
    shards = 1
    if jobs != 1:
        from .shard import resolve_jobs

        shards = resolve_jobs(jobs)
    capture = open_capture(list(paths), reader=reader)
    info = capture.info

    def batches():
        for batch in capture.batches():
            if progress is not None:
                progress(len(batch))
            yield batch

    # Several processes share the buckets of a partition: with --jobs every capture is partitioned,
    # and a pcap file is decoded by that many processes too.
    held = None
    size = _size_of(capture.paths)
    if shards > 1:
        from .parallel_read import read_in_processes

        held = read_in_processes(
            capture, shards, min_buckets=shards * BUCKETS_PER_JOB, expected_bytes=size, progress=progress
        )
    if held is None:
        held = read_capture(
            batches(), in_memory=0 if shards > 1 else None, min_buckets=shards * BUCKETS_PER_JOB, expected_bytes=size
        )
    if held.partition is None:
        table = rebuild_table(iter(held.batches))
        if table is None:
            outcome = ConnectionsAnalysis([], [])
        else:
            outcome = analyze_table(
                table, capture=info, profile=profile, config=config, catalogue=catalogue, steps=steps
            )
        del table
    else:
        from .buckets import analyze_buckets
        from .store import ConnectionStore

        # The store reads its files while the reports are written: the directory lives as long
        # as the result (TemporaryDirectory removes it when collected).
        store = ConnectionStore(held.workdir.name, keep_alive=held.workdir)
        settings = dict(
            capture=info, profile=profile, config=config, catalogue=catalogue, render=render, steps=steps,
            all_reports=all_reports, by_id=by_id,
        )  # fmt: skip
        if not (all_reports or by_id):
            store.forbid_lookups()
        if shards > 1:
            from .shard import analyze_in_processes

            outcome = analyze_in_processes(held.partition, store, shards, **settings)
        else:
            outcome = analyze_buckets(held.partition, store, **settings)
        held.partition.remove()  # read for the last time (the peer counts included)
    if held.error is not None and outcome.error is None:
        outcome.error = held.error

    findings = outcome.findings
    if isinstance(findings, list):  # a partitioned run's FindingStore reads back in this order
        findings.sort(key=lambda f: (f.frame, f.connection, f.rule))
    return AnalysisResult(
        capture=info,
        connections=outcome.reports,
        findings=findings,
        rules=dict(catalogue),
        profile=profile,
        config=config,
        error=outcome.error,
    )


def _size_of(paths: Sequence[str]) -> int | None:
    """Total bytes of the capture files, None when one has no size (a pipe) or is compressed."""
    import os
    import stat

    total = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or str(path).endswith(".gz"):
            return None
        total += st.st_size
    return total


def analyze_connections(
    connections: Iterable[Connection],
    *,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
    memo: bool | ReplayMemo | None = None,
    steps: bool = True,
) -> ConnectionsAnalysis:
    """Replay and check each connection (in id order) and keep what the reports need.

    ``capture.last_time`` is read per connection: ``rebuild`` reads the whole capture before it
    yields the first one, so by then it is the last timestamp of the capture.

    Memory: a connection's Replay (one Step per segment) is dropped once its report is built,
    unless a check found something (the ladder diagram draws those steps).  The previous
    incarnation on each tuple is kept for the checks that compare the two, without its steps.

    Speed: a connection of the same shape and timing class as an earlier one that replayed
    without anomaly gets its Replay from that one's template (pcapcheck.replay.memo), equal to
    what replaying it would give; the checks run on it unless the earlier one's found nothing and
    it has no earlier incarnation (then they would find nothing either).  ``memo`` False (or
    PCAPCHECK_MEMO=0 when None) replays and checks every connection; a ReplayMemo is used as given
    (tests count its hits).  ``analyze_table`` goes further for a rebuild's table.
    """
    analyst = _Analyst(capture, profile, config, catalogue, _memo_for(memo, capture, profile, config, catalogue), steps)
    try:
        for conn in connections:
            analyst.analyze(conn, analyst.key(conn))
    except PcapcheckError as err:
        return ConnectionsAnalysis(analyst.reports, analyst.findings, str(err), analyst.missing_from)
    return ConnectionsAnalysis(analyst.reports, analyst.findings)


def analyze_table(
    table: ConnectionTable,
    *,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
    memo: bool | ReplayMemo | None = None,
    steps: bool = True,
) -> ConnectionsAnalysis:
    """``analyze_connections`` of the table's connections, with the same reports and findings.

    A connection whose template takes the fast lane (no checks) and that no later incarnation
    follows on its tuple (nothing reads it again) is not made into an object at all: its report
    stays columns of the table (pcapcheck.templated), formatted a block at a time by the writers.
    Any other connection whose replay a template made joins those columns too once its report is
    final, unless its steps are kept (``steps`` and a finding): at once, or when the next
    incarnation on its tuple has ended its TIME-WAIT (``_Analyst._settle``).  Without steps, a
    templated incarnation followed by a templated one is not made into objects either: the pair is
    read from the table's rows (``_Analyst.defer``, pcapcheck.reopened) once every connection has
    been through (``_Analyst.settle_deferred``).
    """
    templates = _memo_for(memo, capture, profile, config, catalogue)
    analyst = _Analyst(capture, profile, config, catalogue, templates, steps, table=table)
    n = len(table)
    keys = templates.keys(table) if templates is not None else [None] * n
    fast_template = templates.fast_template if templates is not None else None
    has_next = table.has_next.tolist()
    previous = table.previous
    # Templated reopened tuples as columns (pcapcheck.reopened): only without steps, which a
    # connection with findings keeps for the HTML ladder.
    lane = analyst.lane = templates is not None and not steps
    known = templates.templates if templates is not None else {}
    stop = n
    try:
        for k, key in enumerate(keys):
            conn = None
            if key is not None:
                if lane and key not in known:
                    # A key not seen yet may have a template already: found by the connection's
                    # event order, as the object path would find it, it can serve the lanes.
                    conn = table.connection(k)
                    templates.resolve(key, conn)  # type: ignore[union-attr]
                if not has_next[k]:
                    template = fast_template(key)  # type: ignore[misc]
                    if template is not None:
                        analyst.add_member(template, None, k)
                        templates.hits += 1  # type: ignore[union-attr]
                        continue
                if lane and analyst.defer(k, key, previous[k]):
                    continue
            if previous[k] is not None:
                analyst.release(previous[k] - 1)
            analyst.analyze(conn if conn is not None else table.connection(k), key)
    except PcapcheckError as err:
        # As the object path stops: nothing from the connection that failed on.
        stop = k
        analyst.error = str(err)
    analyst.settle_deferred()
    analyst.finish()
    blocks = [
        block
        for template, kind, ks, extra in analyst.members.values()
        if (block := _block(table, template, kind, ks, extra, stop)) is not None
    ]
    order = np.argsort(np.asarray(analyst.positions, dtype=np.int64), kind="stable")
    objects = [analyst.reports[i] for i in order.tolist()]
    positions = np.asarray(analyst.positions, dtype=np.int64)[order]
    reports = ConnectionReports(objects, positions, blocks)
    if analyst.error is not None:
        return ConnectionsAnalysis(reports, analyst.findings, analyst.error, analyst.missing_from)
    return ConnectionsAnalysis(reports, analyst.findings)


def _block(
    table: ConnectionTable, template: Template, kind: BlockKind, ks: list[int], extra: list[int], stop: int
) -> TemplatedBlock | None:
    """The block of ``template``'s members ``ks`` (with ``extra``: each one's next incarnation's SYN
    row, whose time and frame its transitions read), in position order, those before ``stop``."""
    order = sorted(range(len(ks)), key=ks.__getitem__)
    kept = [i for i in order if ks[i] < stop]
    if not kept:
        return None
    return templated_block(
        table, kind, [ks[i] for i in kept], template.indices, template.deadlines,
        [extra[i] for i in kept] if extra else None,
    )  # fmt: skip


def _block_kind(template: Template) -> BlockKind:
    client, server = template.final_state
    return BlockKind(template.pattern, client.value, server.value, template.close.value, template.vantage.value)


def _matched_ended_kind(template: Template, rep: Replay, ended_by: Connection, syn_row: int) -> BlockKind | None:
    """A member's report after the next incarnation's SYN (row ``syn_row`` of ``ended_by``) ended
    its TIME-WAIT, as a block kind of its own; None when the change is not only that.

    end_time_wait_by_new_incarnation drops transitions (an expiry that never happened) and appends
    ones at the SYN.  The kind's pattern keeps the template's moves that are still there, in order,
    and reads the appended ones from two extra values, the SYN's time and frame, placed after the
    template's times and after its frames (templated.templated_block's extra row).  Every move is
    matched against this connection's own transitions, so the kind is exact for it.
    """
    transitions = rep.transitions
    if type(transitions) is not TemplatedTransitions:
        return None
    pattern, values = transitions.pattern, transitions.values
    rows = ended_by.rows
    syn_time, syn_frame = second(rows["ts_ns"][syn_row]), int(rows["frame"][syn_row])
    segments = len(template.indices)

    def moved(i: int) -> int:  # a value's place once the SYN's time and frame are inserted
        return i if i < segments else i + 1 if i < 2 * segments else i + 2

    made = [Transition(values[m.time_at], values[m.frame_at], *m[2:]) for m in pattern.moves]
    moves: list[PatternMove] = []
    j = 0
    for t in transitions:
        while j < len(made) and made[j] != t:
            j += 1
        if j < len(made):
            m = pattern.moves[j]
            moves.append(PatternMove(moved(m.time_at), moved(m.frame_at), *m[2:]))
            j += 1
        elif t.time == syn_time and t.frame == syn_frame and type(t.time) is float and type(t.frame) is int:
            moves.append(PatternMove(segments, 2 * segments + 1, *t[2:]))
        else:
            return None
    return BlockKind(
        TransitionPattern(tuple(moves)),
        rep.final_state[Side.CLIENT].value,
        rep.final_state[Side.SERVER].value,
        rep.close.value,
        rep.vantage.value,
    )


class _Analyst:
    """The per-connection work of ``analyze_connections``: replay (or the memo), checks, report."""

    def __init__(
        self,
        capture: CaptureInfo,
        profile: Profile,
        config: Config,
        catalogue: dict[str, RuleSpec],
        templates: ReplayMemo | None,
        steps: bool = True,
        table: ConnectionTable | None = None,
    ):
        self.capture, self.profile, self.config, self.catalogue = capture, profile, config, catalogue
        self.templates = templates
        self.steps = steps  # keep the steps of connections with findings (the HTML ladder draws them)
        self.reports: list[ConnectionReport] = []  # in id order, unless kept as members (``table``)
        self.positions: list[int] = []  # each report's id - 1
        self._report_of: dict[int, ConnectionReport] = {}  # by id: the previous incarnation's is updated
        # With the rebuild's table, reports made from a template stay columns (pcapcheck.templated):
        # by (id of template, BlockKind): the template, the kind, members' table indices, and for
        # each the row of the SYN that ended its TIME-WAIT (empty when none did).
        self.table = table
        # (A template's own kind is keyed None: the most common key, found without hashing a kind.)
        self.members: dict[tuple[int, BlockKind | None], tuple[Template, BlockKind, list[int], list[int]]] = {}
        # By id: a member whose next incarnation may still change its report (its TIME-WAIT).
        self.pending: dict[int, tuple[Connection, Replay, Template]] = {}
        self.findings: list[Finding] = []
        # The previous incarnation on each tuple: short-time-wait and time-wait-reuse compare the two.
        self.last_on_tuple: dict[tuple[Endpoint, Endpoint], tuple[Connection, Replay]] = {}
        # Where results stop if an error strikes: the connection being analysed, or else just after
        # the last one finished (None: before any connection).
        self.missing_from: int | None = None
        self.error: str | None = None
        # The column lane of reopened tuples (``defer``): by table index, the template of each
        # connection it took, and whether its report is still owed (not made into objects since).
        self.deferred: dict[int, Template] = {}
        self.owed: set[int] = set()
        self.pairs: list[tuple[int, int]] = []  # (earlier, later) table indices, both deferred
        self.lane = False  # the column lane is on (analyze_table without steps)

    def key(self, conn: Connection) -> tuple | None:
        return self.templates.key(conn) if self.templates is not None else None

    def _keep(self, conn: Connection, report: ConnectionReport) -> None:
        self.reports.append(report)
        self.positions.append(conn.id - 1)
        self._report_of[conn.id] = report

    def add_member(self, template: Template, kind: BlockKind | None, k: int, extra_row: int | None = None) -> None:
        """Table index ``k`` reported as a member of ``template``'s block (of ``kind``: by default
        the template's own; ``extra_row``: the SYN its kind's extra transition reads)."""
        entry = self.members.get((id(template), kind))
        if entry is None:
            made = _block_kind(template) if kind is None else kind
            entry = self.members[(id(template), kind)] = (template, made, [], [])
        entry[2].append(k)
        if extra_row is not None:
            entry[3].append(extra_row)

    def _report_later(self, conn: Connection, rep: Replay, template: Template) -> None:
        """Keep the connection as a member once nothing can change its report any more: at once
        unless a later incarnation follows on its tuple (whose SYN may end its TIME-WAIT)."""
        if self.table.has_next[conn.id - 1]:  # type: ignore[union-attr]
            if self.lane:
                # Its replay is the template's, untouched: the column lane can take the pair it
                # makes with the next incarnation (``defer``), or make it again (``release``).
                self.deferred[conn.id - 1] = template
                self.owed.add(conn.id - 1)
                return
            self.pending[conn.id] = (conn, rep, template)
        else:
            self.add_member(template, None, conn.id - 1)

    def _settle(self, pending: tuple[Connection, Replay, Template], ended_by: Connection | None) -> None:
        """A pending connection's report, now final: ``ended_by`` is the next incarnation when its
        SYN changed the replay (ended a TIME-WAIT), else None."""
        conn, rep, template = pending
        k = conn.id - 1
        if ended_by is None and type(rep.transitions) is TemplatedTransitions and rep.transitions.compact:
            self.add_member(template, None, k)
            return
        ended = self._ended_kind(template, rep, ended_by) if ended_by is not None else None
        if ended is None:
            self._keep(conn, connection_report(conn, rep, keep_steps=False))
            return
        kind, syn_row = ended
        self.add_member(template, kind, k, int(self.table.starts[ended_by.id - 1]) + syn_row)  # type: ignore[union-attr]

    def _ended_kind(self, template: Template, rep: Replay, ended_by: Connection) -> tuple[BlockKind, int] | None:
        """The block kind of a member whose TIME-WAIT ``ended_by``'s SYN ended, and that SYN's row
        (``_matched_ended_kind``), made once per template and set of TIME-WAITs the SYN ended: given
        those, end_time_wait_by_new_incarnation drops and appends the same moves for every member
        (the expiries of the ended TIME-WAITs, a move at the SYN for each).  Not when an endpoint
        may have been half-open: what that adds depends on the next incarnation's segments."""
        syn_row = first_syn_row(ended_by)
        if syn_row is None:
            return None
        if HALF_OPEN_STATES.intersection(template.final_state):
            kind = _matched_ended_kind(template, rep, ended_by, syn_row)
            return None if kind is None else (kind, syn_row)
        key = (id(template), tuple(w.ended_by == "new-syn" for w in rep.time_waits))
        kind = self._cached_kind(template, key[1])
        if kind is None or len(rep.transitions) != len(kind.pattern.moves):
            matched = _matched_ended_kind(template, rep, ended_by, syn_row)
            if matched is None:
                return None
            if kind is None:
                cache = self.templates.ended_kinds  # type: ignore[union-attr]
                if len(cache) >= MAX_TEMPLATES:
                    cache.clear()  # it holds its templates: bounded as the memo's are
                cache[key] = (template, matched)
            kind = matched
        return kind, syn_row

    def defer(self, k: int, key: tuple, previous_id: int | None) -> bool:
        """Take table index ``k`` into the column lane of reopened tuples (pcapcheck.reopened), if
        its key has a template that needs no checks but the reuse rules: a first incarnation whose
        template had no finding (a later one follows: its report waits for that one's SYN), or a
        later incarnation whose previous one the lane took too and may not have been half-open
        (end_half_open_by_new_incarnation reads the later one's segments)."""
        templates = self.templates
        template = templates.templates.get(key)  # type: ignore[union-attr]
        if type(template) is not Template:
            return False
        if not key[2]:
            if template.checked:
                return False
        else:
            p = previous_id - 1 if previous_id is not None else None
            if p not in self.owed or not template.rerun <= READS_PREVIOUS:
                return False
            table = self.table
            if table.version[p] != table.version[k]:  # type: ignore[union-attr]
                # One tuple to the rebuild (IPv4 and IPv4-mapped IPv6 share their 16 bytes), two
                # to the object path, which links incarnations by endpoint text: left to it.
                return False
            if HALF_OPEN_STATES.intersection(self.deferred[p].final_state):  # type: ignore[index]
                return False
            self.pairs.append((p, k))  # type: ignore[arg-type]
            templates.checked_hits += 1  # type: ignore[union-attr]
        templates.hits += 1  # type: ignore[union-attr]
        self.deferred[k] = template
        self.owed.add(k)
        return True

    def release(self, p: int) -> None:
        """Make the deferred table index ``p`` into objects, as ``analyze`` would have left it,
        before the object path analyses the incarnation after it."""
        if p not in self.owed:
            return
        self.owed.discard(p)
        conn, rep, previous = self._objects_of(p)
        self.pending[conn.id] = (conn, rep, self.deferred[p])
        self.last_on_tuple[_tuple_key(conn)] = (conn, previous)

    def _objects_of(self, p: int) -> tuple[Connection, Replay, Replay]:
        """Deferred table index ``p`` as ``analyze`` makes it: its connection, its replay (the
        template's), and that replay as the next incarnation's checks read it."""
        template = self.deferred[p]
        conn = self.table.connection(p)  # type: ignore[union-attr]
        rep = template.instantiate(conn)
        return conn, rep, _without_steps(rep) if template.checked else rep

    def _earlier_on_objects(self, p: int, k: int) -> tuple[tuple[Connection, Replay], Connection, bool]:
        """Deferred ``p`` on objects with the SYN of ``k`` (the incarnation after it) applied, and
        ``p`` settled if its report is still owed: (previous as ``k``'s checks read it, ``k``'s
        connection, whether the SYN changed ``p``'s replay)."""
        conn_p, _, previous = self._objects_of(p)
        conn_k = self.table.connection(k)  # type: ignore[union-attr]
        changed = end_time_wait_by_new_incarnation(previous, conn_k)
        if p in self.owed:
            self.owed.discard(p)
            self._settle((conn_p, previous, self.deferred[p]), conn_k if changed else None)
        return (conn_p, previous), conn_k, changed

    def _pair_on_objects(self, p: int, k: int) -> tuple[list[Finding], tuple[bool, ...] | None]:
        """What ``analyze`` does for deferred ``k`` after deferred ``p``, on objects: the later
        incarnation's SYN may end the earlier one's TIME-WAITs (its report is settled here, if
        still owed), and the reuse rules run.  Returns the findings and which TIME-WAITs ended
        (None: none).  The reference the column lane is held to."""
        later = self.deferred[k]
        previous, conn_k, changed = self._earlier_on_objects(p, k)
        found = run_checks(
            conn_k,
            later.instantiate(conn_k),
            previous=previous,
            capture_end=self.capture.last_time,
            config=self.config,
            catalogue=self.catalogue,
            only=later.rerun | READS_PREVIOUS,
        )
        ended = tuple(w.ended_by == "new-syn" for w in previous[1].time_waits)
        return found, ended if changed else None

    def settle_deferred(self) -> None:
        """The column lane's pairs (pcapcheck.reopened), all at once: the reuse rules' findings
        of each later incarnation and the report of each earlier one."""
        found: list[Finding] = []
        if self.pairs:
            found = self._pairs_in_columns()
        if found:
            # Each connection's findings come from one place: in connection order, as emitted.
            self.findings.extend(found)
            self.findings.sort(key=_by_connection)
        for p in sorted(self.owed):
            self.add_member(self.deferred[p], None, p)  # no later incarnation came in this run
        self.owed.clear()
        self.pairs.clear()

    def _pairs_in_columns(self) -> list[Finding]:
        """The pairs' findings, and each earlier incarnation settled.  Each later incarnation's
        Reuse comes from the columns; the reuse rules are the only ones its checks run (``defer``:
        its template reruns no other) and read nothing else of it, but its flags and endpoints."""
        from .checks import reuse_rules
        from .reopened import lane_findings, pair_columns

        table = self.table
        ps = [p for p, _ in self.pairs]
        ks = [k for _, k in self.pairs]
        deferred = self.deferred
        columns = pair_columns(table, ps, ks, [deferred[p] for p in ps], [deferred[k] for k in ks])  # type: ignore[arg-type]
        own = np.asarray(columns.own, dtype=bool)
        rules = reuse_rules(self.config, self.catalogue)
        found = lane_findings(table, np.asarray(ks, dtype=np.int64), columns.reuse, ~own, rules)  # type: ignore[arg-type]
        self.templates.column_pairs += int(len(own) - own.sum())  # type: ignore[union-attr]
        checked: dict[tuple, BlockKind] = {}
        owed = self.owed
        for i, (p, k) in enumerate(self.pairs):
            if columns.own[i]:
                found.extend(self._pair_on_objects(p, k)[0])
            elif p in owed:
                self._settle_columns(p, k, columns.ended[i], columns.syn_rows[i], checked)
        return found

    def _settle_columns(
        self, p: int, k: int, ended: tuple[bool, ...] | None, syn_row: int, checked: dict[tuple, BlockKind]
    ) -> None:
        """``_settle`` of deferred ``p`` from the columns: a member of its template's own block
        kind, or of the kind ``_ended_kind`` made for the TIME-WAITs ``k``'s SYN (table row
        ``syn_row``) ended, made on objects for the first of each template and set of TIME-WAITs.
        ``checked``: the kinds found fit, by (template id, ended), for the pairs of one settling."""
        earlier = self.deferred[p]
        if ended is None:
            self.owed.discard(p)
            self.add_member(earlier, None, p)
            return
        kind = checked.get((id(earlier), ended))
        if kind is None:
            kind = self._cached_kind(earlier, ended)
            # As _ended_kind checks the kind it cached: end_time_wait_by_new_incarnation drops the
            # expiry of each ended TIME-WAIT that was to expire and adds a move at the SYN for each.
            expiring = sum(1 for e, w in zip(ended, earlier.time_waits) if e and w.ended_by == "expired")
            if kind is None or len(kind.pattern.moves) != len(earlier.transitions) - expiring + sum(ended):
                self._earlier_on_objects(p, k)  # settles p, making the kind (k's findings: from the columns)
                return
            checked[(id(earlier), ended)] = kind  # the deferred templates live through the settling
        self.owed.discard(p)
        self.add_member(earlier, kind, p, syn_row)

    def _cached_kind(self, template: Template, ended: tuple[bool, ...]) -> BlockKind | None:
        """The block kind ``_ended_kind`` made for ``template`` and these ended TIME-WAITs, if any."""
        entry = self.templates.ended_kinds.get((id(template), ended))  # type: ignore[union-attr]
        return entry[1] if entry is not None and entry[0] is template else None  # type: ignore[return-value]

    def finish(self) -> None:
        """Settle what is still pending (the run stopped before its next incarnation)."""
        for pending in list(self.pending.values()):
            self._settle(pending, None)
        self.pending.clear()

    def analyze(self, conn: Connection, shape_key: tuple | None) -> None:
        templates = self.templates
        self.missing_from = conn.first_frame
        known = None
        if shape_key is not None:
            known = templates.replay(shape_key, conn)  # type: ignore[union-attr]
            if known is not None and not known.checked:
                # A first incarnation: no previous one to update.
                if self.table is not None:
                    self._report_later(conn, known.replay, known.template)  # type: ignore[arg-type]
                else:
                    self._keep(conn, connection_report(conn, known.replay, keep_steps=False))
                self.last_on_tuple[_tuple_key(conn)] = (conn, known.replay)
                self.missing_from = conn.first_frame + 1
                return
        if known is not None:
            rep = known.replay
        else:
            order = templates.order_of(conn) if shape_key is not None else None  # type: ignore[union-attr]
            rep = replay(conn, self.profile, capture_end=self.capture.last_time, order=order)
        key = _tuple_key(conn)
        previous = self.last_on_tuple.get(key)
        if previous is not None:
            # One replay cannot see the next incarnation: its SYN may end the old TIME-WAIT.
            changed = end_time_wait_by_new_incarnation(previous[1], conn)
            pending = self.pending.pop(previous[0].id, None)
            if pending is not None:
                # As updated: a checked member's pending replay is not the one the checks read
                # (_without_steps), whose TIME-WAITs and close the update replaced.
                self._settle((pending[0], previous[1], pending[2]), conn if changed else None)
            elif changed:
                _update_time_wait(self._report_of[previous[0].id], previous[1])
        learning = shape_key is not None and known is None
        end_readers: set[str] | None = set() if learning else None
        found = run_checks(
            conn,
            rep,
            previous=previous,
            capture_end=self.capture.last_time,
            config=self.config,
            catalogue=self.catalogue,
            # A member of a template: the other rules find what they found in its first, nothing.
            only=None if known is None else known.rerun | READS_PREVIOUS,
            end_readers=end_readers,
        )
        self.findings.extend(found)
        if learning:
            rerun = frozenset(f.rule for f in found).union(end_readers)  # type: ignore[arg-type]
            templates.learn(shape_key, conn, rep, rerun)  # type: ignore[union-attr, arg-type]
        if self.table is not None and known is not None and not (self.steps and found):
            self._report_later(conn, rep, known.template)  # type: ignore[arg-type]
        else:
            self._keep(conn, connection_report(conn, rep, keep_steps=self.steps and bool(found)))
        self.last_on_tuple[key] = (conn, _without_steps(rep))
        self.missing_from = conn.first_frame + 1


def _by_connection(finding: Finding) -> int:
    return finding.connection


def _tuple_key(conn: Connection) -> tuple[Endpoint, Endpoint]:
    return (conn.client, conn.server) if conn.client <= conn.server else (conn.server, conn.client)


def run_memo(capture: CaptureInfo, profile: Profile, config: Config, catalogue: dict[str, RuleSpec]) -> ReplayMemo | None:
    """One memo for a run analysed in parts (buckets): a template learnt in one serves them all."""
    return _memo_for(None, capture, profile, config, catalogue)


def _memo_for(
    memo: bool | ReplayMemo | None,
    capture: CaptureInfo,
    profile: Profile,
    config: Config,
    catalogue: dict[str, RuleSpec],
) -> ReplayMemo | None:
    if isinstance(memo, ReplayMemo):
        return memo
    if memo is False or (memo is None and not memo_enabled()):
        return None
    rule_params = [config.parameters(spec, profile) for spec in catalogue.values()]
    return memo_for_run(capture.last_time, profile, rule_params)


def _without_steps(rep: Replay) -> Replay:
    """The replay as the next incarnation's checks read it: states, transitions and TIME-WAITs."""
    return Replay(
        connection_id=rep.connection_id,
        steps=[],
        transitions=rep.transitions,
        anomalies=rep.anomalies,
        final_state=rep.final_state,
        close=rep.close,
        vantage=rep.vantage,
        time_wait=rep.time_wait,
        time_waits=rep.time_waits,
    )


def _update_time_wait(report: ConnectionReport, rep: Replay) -> None:
    """Carry into ``report`` what end_time_wait_by_new_incarnation changed in ``rep``."""
    report.transitions = list(rep.transitions)
    report.client_final_state = rep.final_state[Side.CLIENT].value
    report.server_final_state = rep.final_state[Side.SERVER].value
    report.close = rep.close.value
