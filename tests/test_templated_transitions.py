"""Templated connections keep their transitions compact (model.TemplatedTransitions), and nothing
that reads them can tell: they read as the list the replay makes, the report writers format them
byte for byte as they format that list, and the store writes and reads them back compact.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import pcapcheck.partition as partition
from pcapcheck.analysis import analyze
from pcapcheck.config import load_config
from pcapcheck.replay.memo import ReplayMemo
from pcapcheck.replay.model import State, TemplatedTransitions, Transition
from pcapcheck.reports import csv_report, json_report
from pcapcheck.reports.csv_report import reference_connections_csv, write_connections_csv
from pcapcheck.reports.json_report import reference_json_text, write_document
from pcapcheck.store import StoredSteps, _Rebuilder, report_values
from tests.builders import Conversation
from tests.test_fastlane_equivalence import _both_ways, _capture_rows, _conversation
from tests.test_reports_sample import sample_result

DATA = Path(__file__).resolve().parent / "data"
SCRIPT = [(0, "S", 0), (1, "SA", 0), (0, "A", 0), (0, "PA", 100), (1, "A", 0), (1, "PA", 300),
          (0, "A", 0), (0, "FA", 0), (1, "A", 0), (1, "FA", 0), (0, "A", 0)]  # fmt: skip


def _templated_run(count: int = 12, end_after: float = 10.0):
    variant = {"gaps": [0.00005] * len(SCRIPT), "window": 64240, "wscale": 7, "ts": True, "isn": 1000}
    conversations = [
        _conversation(SCRIPT, dict(variant, start=0.01 * k, port=41000 + k), 1_700_000_000.0) for k in range(count)
    ]
    rows = _capture_rows(conversations)
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + end_after)
    assert memo.hits >= count // 2
    return fast, reference


def _compact(reports) -> list:
    return [r for r in reports if type(r.transitions) is TemplatedTransitions and r.transitions.compact]


def test_templated_transitions_read_as_the_reference_list():
    fast, reference = _templated_run()
    templated = _compact(fast.reports)
    assert templated
    by_id = {r.id: r for r in reference.reports}
    for report in templated:
        expected = by_id[report.id].transitions
        t = report.transitions
        assert type(expected) is list and t == expected and expected == t
        assert list(t) == expected and len(t) == len(expected) and bool(t)
        assert [t[i] for i in range(len(t))] == expected and t[-1] == expected[-1] and t[1:3] == expected[1:3]
        assert list(reversed(t)) == expected[::-1]
        assert all(type(x) is Transition for x in t)
        assert repr(t) == repr(expected)
        assert pickle.loads(pickle.dumps(t)) == expected
        assert t != expected[:-1] and t != tuple(expected)


def test_writing_to_templated_transitions_turns_them_into_the_list():
    fast, _ = _templated_run()
    t = _compact(fast.reports)[0].transitions
    before = list(t)
    copy = t.copy()
    extra = Transition(1.0, 99, before[0].endpoint, State.TIME_WAIT, State.CLOSED, "new incarnation's SYN")
    t.append(extra)
    assert not t.compact and t == before + [extra]
    t[:] = [x for x in t if x.frame != 99]
    assert t == before
    assert copy.compact and copy == before  # a copy is not changed by the original's writes
    assert type(pickle.loads(pickle.dumps(t))) is list


def test_a_new_incarnation_ends_the_time_wait_of_a_templated_replay():
    # The first connection of the shape is the reference, the third one templated (the second one's
    # times round differently on the float grid); a SYN on the third one's tuple ends its TIME-WAIT,
    # which rewrites its transitions.
    base = 1_700_000_000.0
    conversations = []
    for k, port in enumerate([41000, 41001, 41002]):
        conv = Conversation(client=("198.18.0.1", port), start=base + 0.01 * k)
        for side, flags, length in SCRIPT:
            conv.send(side, flags, length=length, dt=0.00005, window=64240)
        conversations.append(conv)
    reopen = Conversation(client=("198.18.0.1", 41002), client_isn=90_000, start=base + 1.0)
    reopen.client("S").server("SA").client("A")
    conversations.append(reopen)
    rows = _capture_rows(conversations)
    fast, reference, memo = _both_ways(rows, int(rows["ts_ns"].max()) / 1e9 + 10.0)
    assert memo.hits >= 1
    assert fast.reports == reference.reports and fast.findings == reference.findings
    third = next(r for r in fast.reports if r.client.port == 41002 and r.incarnation == 1)
    assert third.transitions[-1].cause == "new incarnation's SYN on the same 4-tuple"


def _no_fallback(monkeypatch) -> None:
    def fallback(*_args, **_kw):
        raise AssertionError("fell back to the reference construction")

    monkeypatch.setattr(json_report, "connection_record", fallback)
    monkeypatch.setattr(csv_report, "reference_connections_csv", fallback)


def _written(result) -> tuple[str, str]:
    json_text, csv_text = io.StringIO(newline=""), io.StringIO(newline="")
    write_document(result, json_text)
    write_connections_csv(result, csv_text)
    return json_text.getvalue(), csv_text.getvalue()


def _reference(result) -> tuple[str, str]:
    csv_text = io.StringIO(newline="")
    reference_connections_csv(result, csv_text)
    return reference_json_text(result), csv_text.getvalue()


def test_writers_format_templated_connections_as_the_reference(monkeypatch):
    fast, _ = _templated_run()
    result = sample_result()
    result.connections = list(fast.reports)
    assert _compact(result.connections)
    expected = _reference(result)
    _no_fallback(monkeypatch)
    assert _written(result) == expected


def test_times_json_writes_otherwise_take_the_general_way(monkeypatch):
    fast, _ = _templated_run()
    result = sample_result()
    result.connections = _compact(fast.reports)[:2]
    first = result.connections[0].transitions
    # Not from a capture, but made the same way: %r would write these as nan and inf.
    result.connections[0].transitions = TemplatedTransitions(first.pattern, (float("nan"),) + first.values[1:])
    result.connections[1].transitions = TemplatedTransitions(first.pattern, (float("-inf"),) + first.values[1:])
    expected = _reference(result)
    _no_fallback(monkeypatch)
    assert _written(result) == expected
    assert '"time":NaN' in expected[0] and '"time":-Infinity' in expected[0]


def test_the_store_keeps_templated_transitions_compact_and_merges_their_patterns():
    fast, reference = _templated_run()
    templated = _compact(fast.reports)
    assert len(templated) >= 2
    chunks = [pickle.loads(pickle.dumps([report_values(r)], protocol=pickle.HIGHEST_PROTOCOL)) for r in templated]
    rebuild = _Rebuilder()
    back = [rebuild(chunk[0]) for chunk in chunks]
    assert back == templated
    assert all(r.transitions.compact for r in back)
    # Each chunk read back its own copy of the pattern; the writers find one object per template.
    patterns = {id(r.transitions.pattern) for r in back}
    assert len(patterns) == len({r.transitions.pattern for r in templated})


def test_steps_read_back_from_the_store_equal_the_analysed_ones(monkeypatch):
    paths = [str(DATA / "incarnations.pcap")]
    in_memory = analyze(paths, load_config(None))
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
    partitioned = analyze(paths, load_config(None))
    kept = [(a, b) for a, b in zip(in_memory.connections, partitioned.connections, strict=True) if a.steps]
    assert kept
    for a, b in kept:
        assert type(b.steps) is StoredSteps
        assert len(b.steps) == len(a.steps) and b.steps == a.steps and list(b.steps) == a.steps
    assert all(b.steps is None for a, b in zip(in_memory.connections, partitioned.connections) if a.steps is None)


@settings(max_examples=300, deadline=None)
@given(
    parameters=st.lists(st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0, 30.0, 60.0, 240.0]), min_size=1, unique=True),
    end_parameters=st.lists(st.sampled_from([0.2, 1.0, 30.0, 60.0, 240.0]), min_size=1, max_size=2, unique=True),
    to_end=st.one_of(
        st.floats(min_value=0.0, max_value=300.0),
        st.sampled_from([0.05, 0.2, 0.5, 1.0, 2.0, 30.0, 60.0, 240.0]).flatmap(
            lambda p: st.floats(min_value=p - 0.01, max_value=p + 0.01)
        ),
    ),
    span=st.sampled_from([0.0, 0.00005, 0.001, 0.01]),
)
def test_the_memo_key_sets_the_bits_the_module_docstring_defines(parameters, end_parameters, to_end, span):
    conv = Conversation(start=1_700_000_000.0)
    conv.client("S").server("SA", dt=span)
    conn = conv.connection()
    conn.shape = b"shape"
    first = conn.start
    memo = ReplayMemo(first + to_end, tuple(parameters), tuple(end_parameters))
    key = memo.key(conn)
    # The definition: None when lasting as long as any parameter, or near a parameter the replay
    # compares the capture's end with; else a bit per such parameter, ascending.
    to_end_seen = first + to_end - first
    slack = (conn.end - first) + 1e-3
    shortest = min(parameters)
    ordered = sorted(end_parameters)
    if not (conn.end - first < shortest and first + shortest > conn.end):
        assert key is None
    elif any(abs(to_end_seen - p) <= slack for p in ordered):
        assert key is None
    else:
        # The last bit: whether it reopens a tuple (one incarnation here).
        assert key == (b"shape", sum(1 << k for k, p in enumerate(ordered) if to_end_seen > p), False)
