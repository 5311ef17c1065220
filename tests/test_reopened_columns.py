"""The column lane of reopened tuples reads each pair of incarnations as the object path does.

``reopened.pair_columns`` gives, for a templated incarnation and the templated one after it on the
same tuple, which TIME-WAITs the later one's SYN ended and what checks.reuse.find_reuse makes of the
pair.  Each is compared with the object path: the earlier replay made from its template, ended by
end_time_wait_by_new_incarnation, and find_reuse over the later one's replay.  Whole runs with the
lane (the CLI without --html) must give the reference's reports and findings.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapcheck.analysis import _without_steps, analyze_connections, analyze_table
from pcapcheck.capture import CaptureInfo
from pcapcheck.checks.context import CheckContext
from pcapcheck.checks.reuse import find_reuse
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild, rebuild_table
from pcapcheck.reopened import pair_columns
from pcapcheck.replay import end_time_wait_by_new_incarnation
from pcapcheck.replay.incarnation import HALF_OPEN_STATES
from pcapcheck.replay.memo import Template, memo_for_run
from pcapcheck.segments import ACK, SYN
from tests.test_fastlane_equivalence import (
    _analysed,
    _capture_rows,
    _conversation,
    _distinct,
    _run_settings,
    needs_1m_slice,
    ports_of_1m,
    reopenings,
    run_options,
    scripts,
)


def _learnt(rows, capture_end: float):
    """The table, a memo that has learnt the run's templates, and each connection's template."""
    profile, config, catalogue = _run_settings()
    table = rebuild_table([rows])
    memo = memo_for_run(capture_end, profile, [config.parameters(spec, profile) for spec in catalogue.values()])
    capture = CaptureInfo(paths=["generated"], last_time=capture_end)
    analyze_table(table, capture=capture, profile=profile, config=config, catalogue=catalogue, memo=memo)
    keys = memo.keys(table)
    templates = [memo.templates.get(key) if key is not None else None for key in keys]
    return table, [t if type(t) is Template else None for t in templates]


def _pairs(table, templates) -> list[tuple[int, int]]:
    """Consecutive incarnations on a tuple, both templated, the earlier not possibly half-open
    (the lane leaves those to the object path)."""
    return [
        (previous - 1, k)
        for k, previous in enumerate(table.previous)
        if previous is not None
        and templates[k] is not None
        and templates[previous - 1] is not None
        and not HALF_OPEN_STATES.intersection(templates[previous - 1].final_state)
    ]


def _on_objects(table, earlier: Template, later: Template, p: int, k: int):
    profile, config, catalogue = _run_settings()
    conn_p, conn_k = table.connection(p), table.connection(k)
    rep_p = earlier.instantiate(conn_p)
    previous = _without_steps(rep_p) if earlier.checked else rep_p
    changed = end_time_wait_by_new_incarnation(previous, conn_k)
    ended = tuple(w.ended_by == "new-syn" for w in previous.time_waits) if changed else None
    rule = catalogue["time-wait-reuse"]
    ctx = CheckContext(
        connection=conn_k, replay=later.instantiate(conn_k), previous=(conn_p, previous), _capture_end=None,
        params={}, profile=profile, spec=rule, severity=config.severity_of(rule),
    )  # fmt: skip
    return ended, find_reuse(ctx)


def _assert_columns_match_objects(rows, capture_end: float) -> int:
    table, templates = _learnt(rows, capture_end)
    pairs = _pairs(table, templates)
    if not pairs:
        return 0
    ps, ks = [p for p, _ in pairs], [k for _, k in pairs]
    columns = pair_columns(table, ps, ks, [templates[p] for p in ps], [templates[k] for k in ks])
    for i, (p, k) in enumerate(pairs):
        if columns.own[i]:
            continue
        ended, reuse = _on_objects(table, templates[p], templates[k], p, k)
        assert columns.ended[i] == ended, (p, k)
        assert columns.reuses[i] == reuse, (p, k)
        flags = table.rows["flags"][table.starts[k] : table.ends[k]].tolist()
        first_syn = next((r for r, f in enumerate(flags) if f & SYN and not f & ACK), None)
        assert columns.syn_rows[i] == (-1 if first_syn is None else int(table.starts[k]) + first_syn)
    return len(pairs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_each_pair_reads_as_the_object_path_reads_it(data):
    script, options = data.draw(scripts()), data.draw(run_options)
    chosen = data.draw(reopenings(script, options))
    rows = _capture_rows([_conversation(script, v, 1_700_000_000.0) for v in chosen])
    capture_end = int(rows["ts_ns"].max()) / 1e9 + data.draw(st.sampled_from([0.0, 1.0, 60.0, 300.0]))
    _assert_columns_match_objects(rows, capture_end)


GRACEFUL = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (1, "PA", 300),
            (0, "A", 0), (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip
SERVER_CLOSES = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "PA", 300),
                 (1, "FA", 0), (0, "A", 0), (0, "FA", 0), (1, "A", 0)]  # fmt: skip


def _reopened_run(script, reopen_after: float, tuples: int = 12, incarnations: int = 4, ts: bool = True, step: int = 1_000_000):
    variant = {"window": 64240, "wscale": 7, "ts": ts}
    conversations = []
    for port in range(41000, 41000 + tuples):
        start = 0.01 * (port - 41000)
        for n in range(incarnations):
            conversations.append(
                _conversation(
                    script,
                    dict(variant, gaps=[0.00005] * len(script), start=start, port=port, isn=(1000 + step * n) % 2**32),
                    1_700_000_000.0,
                )
            )
            start += reopen_after
    return _capture_rows(conversations)


@pytest.mark.parametrize(
    "script, reopen_after, ts, step",
    [
        (GRACEFUL, 1.5, True, 1_000_000),  # the client reopens inside its own TIME-WAIT: timestamps
        (GRACEFUL, 1.5, False, 1_000_000),  # no timestamps: no safeguard for the one who reopens
        (SERVER_CLOSES, 1.5, False, 1_000_000),  # the server's TIME-WAIT, its ISN rule (RFC 9293 §3.6.1)
        (SERVER_CLOSES, 1.5, False, -1_000_000),  # an ISN below the old space: short-time-wait
        (GRACEFUL, 61.0, True, 1_000_000),  # after TIME-WAIT expired: nothing ended, nothing found
    ],
)
def test_reopened_tuples_of_one_structure_are_answered_by_the_columns(script, reopen_after, ts, step):
    rows = _reopened_run(script, reopen_after, ts=ts, step=step)
    findings = _assert_lane_matches_reference(rows)
    if reopen_after < 60:
        assert {f.rule for f in findings} & {"time-wait-reuse", "short-time-wait"}


def test_a_reopening_syn_whose_options_the_snap_length_cut_is_a_capture_quality_note_in_the_lane_too():
    # Without timestamps and with the SYN's options cut, no safeguard can be told either way
    # (checks.reuse.verdict_code UNKNOWN): time-wait-reuse notes it, worded by the lane as by the check.
    rows = _reopened_run(GRACEFUL, 1.5, ts=False)
    syn = (rows["flags"] & (SYN | ACK)) == SYN
    rows["truncated"][syn] = True
    findings = _assert_lane_matches_reference(rows)
    noted = [f for f in findings if f.rule == "time-wait-reuse"]
    assert len(noted) >= 30 and all(f.capture_quality and "cannot be told" in f.message for f in noted)
    assert not [f for f in findings if f.rule == "short-time-wait"]


def _assert_lane_matches_reference(rows) -> list:
    """A run with the column lane gives the reference's reports and findings; the findings."""
    capture_end = int(rows["ts_ns"].max()) / 1e9 + 10.0
    assert _assert_columns_match_objects(rows, capture_end) >= 30
    profile, config, catalogue = _run_settings()
    memo = memo_for_run(capture_end, profile, [config.parameters(spec, profile) for spec in catalogue.values()])
    run = dict(capture=CaptureInfo(paths=["generated"], last_time=capture_end), profile=profile, config=config,
               catalogue=catalogue)  # fmt: skip
    lean = analyze_table(rebuild_table([rows]), memo=memo, steps=False, **run)
    reference = analyze_connections(iter(list(rebuild([rows]))), memo=False, **run)
    assert [r.id for r in lean.reports] == [r.id for r in reference.reports]
    assert list(lean.reports) == [replace(r, steps=None) for r in reference.reports]
    assert lean.findings == reference.findings
    # 12 tuples of 4 incarnations: 36 pairs.  The lane leaves to objects the pairs whose earlier
    # incarnation was the first of its key (the memo learns from its replay) and the pair after it;
    # incarnations 61 s apart lie at other distances to the capture's end (other keys) too.
    assert memo.column_pairs >= 12, memo.column_pairs
    return reference.findings


@needs_1m_slice
def test_the_reused_tuples_of_the_1m_capture_take_the_column_lane(tmp_path, monkeypatch):
    part = ports_of_1m(tmp_path)
    config = load_config(None)
    memos: list = []
    lean, _ = _analysed([str(part)], config, tmp_path, monkeypatch, memo=True, memos=memos, steps=False)
    reference, _ = _analysed([str(part)], config, tmp_path, monkeypatch, memo=False)
    assert lean == reference
    reopened = len(re.findall(r'"incarnation": ?[2-9]', lean))
    (memo,) = _distinct(memos)
    assert memo.column_pairs >= 0.5 * reopened, (memo.column_pairs, reopened)


def test_ipv4_then_the_same_tuple_as_mapped_ipv6_is_not_one_tuple_to_the_reuse_rules():
    # The rebuild keys a tuple by its 16-byte addresses, where IPv4 is ::ffff:a.b.c.d; the object
    # path links incarnations by endpoint text, so these are two tuples: no reuse, no TIME-WAIT ended.
    from tests.builders import Conversation

    conversations = []
    for port in range(41000, 41012):
        start = 1_700_000_000.0 + 0.01 * (port - 41000)
        for n, (client, server) in enumerate([("198.18.0.1", "198.18.0.2"), ("::ffff:198.18.0.1", "::ffff:198.18.0.2")]):
            conv = Conversation(client=(client, port), server=(server, 8080), client_isn=1000 + 1_000_000 * n,
                                start=start + 1.5 * n)  # fmt: skip
            for k, (side, flags, length) in enumerate(GRACEFUL):
                conv.send(side, flags, length=length, dt=0.00005, wscale=7 if "S" in flags else None, ts=(100 + k, 50 + k))
            conversations.append(conv)
    rows = _capture_rows(conversations)
    capture_end = int(rows["ts_ns"].max()) / 1e9 + 10.0
    profile, config, catalogue = _run_settings()
    rule_params = [config.parameters(spec, profile) for spec in catalogue.values()]
    run = dict(capture=CaptureInfo(paths=["generated"], last_time=capture_end), profile=profile, config=config,
               catalogue=catalogue)  # fmt: skip
    lean = analyze_table(rebuild_table([rows]), memo=memo_for_run(capture_end, profile, rule_params), steps=False, **run)
    reference = analyze_connections(iter(list(rebuild([rows]))), memo=False, **run)
    assert list(lean.reports) == [replace(r, steps=None) for r in reference.reports]
    assert lean.findings == reference.findings
    assert not {f.rule for f in reference.findings} & {"time-wait-reuse", "short-time-wait"}


_NUMBERS = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), _NUMBERS, st.booleans(), _NUMBERS, st.booleans(),
                          st.booleans(), _NUMBERS, st.booleans(), _NUMBERS, st.booleans()), min_size=1, max_size=40))  # fmt: skip
def test_the_verdict_over_columns_is_the_verdict_of_each_pair(rows):
    """reopened.verdict_codes against checks.reuse.verdict_code, with equal and wrapped numbers drawn
    often (the timestamps and sequence numbers compare in 32-bit arithmetic)."""
    import numpy as np

    from pcapcheck.checks.reuse import verdict_code
    from pcapcheck.reopened import verdict_codes

    # A SYN's TSval often equals the last one, an ISN the old end: draw them from the other's value.
    rows = [
        (cut, has_ts, ts, old_cut, last if not tie else ts, has_last, received, isn, has_end, end if not tie else isn, tie)
        for cut, has_ts, ts, old_cut, last, has_last, received, isn, has_end, end, tie in rows
    ]  # fmt: skip
    columns = [np.asarray(c) for c in zip(*rows)]
    cut, has_ts, ts, old_cut, last, has_last, received, isn, has_end, end, _ = columns
    vector = verdict_codes(cut, ts.astype(np.int64), has_ts, old_cut, last.astype(np.int64), has_last, received,
                           isn.astype(np.int64), end.astype(np.int64), has_end).tolist()  # fmt: skip
    scalar = [
        verdict_code(c, t if h else None, lt if hl else None, oc, r, i, e if he else None)
        for c, h, t, oc, lt, hl, r, i, he, e, _ in rows
    ]
    assert vector == scalar
