"""A partitioned run's findings live on disk (pcapcheck.finding_store), bucket by bucket.

The specification: the store reads back exactly the list one in-memory run makes (same findings,
same connection ids, same order), counts and measures itself without reading its files, and is
written by the process that analysed the bucket.
"""

from __future__ import annotations

import io
import random
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

import pcapcheck.partition as partition
from pcapcheck.analysis import analyze
from pcapcheck.buckets import analyze_bucket_range
from pcapcheck.capture import open_capture
from pcapcheck.catalogue import load_catalogue
from pcapcheck.config import load_config
from pcapcheck.errors import PcapcheckError
from pcapcheck.finding_store import FindingStore, SpilledFindings, write_findings
from pcapcheck.findings import Finding, Severity
from pcapcheck.partition import read_capture
from pcapcheck.reports import csv_report, json_report
from pcapcheck.reports.fragments import renderer_for
from pcapcheck.reports.document import kind_counts, rule_counts, rule_totals, severity_counts, worst_first
from pcapcheck.reports.gate import failing, failing_count
from pcapcheck.segments import Side
from pcapcheck.store import ConnectionStore, Written
from tests.samples_support import all_samples

RULES = ("abortive-close", "capture-gap", "time-wait-reuse")  # few, so that (frame, rule) ties happen


def synthetic_buckets(seed: int, buckets: int = 4) -> list[tuple[np.ndarray, list[Finding]]]:
    """Per bucket: its connections' first frames (its id order) and its findings as the bucket
    emits them (connection = id in the bucket, connection by connection, each in emission order).
    Frames are drawn from a small range, so findings tie on frame within and across buckets, and
    one connection may emit equal (frame, rule) twice."""
    rng = random.Random(seed)
    frames = rng.sample(range(1, 400), rng.randint(5, 40))
    owner = [rng.randrange(buckets) for _ in frames]
    out = []
    for b in range(buckets):
        first = sorted(f for f, o in zip(frames, owner) if o == b)
        findings = []
        for local, start in enumerate(first, start=1):
            for n in range(rng.choice((0, 0, 1, 2, 4))):
                frame = rng.choice((start, start + rng.randint(0, 30), rng.randint(1, 60)))
                severity = rng.choice(list(Severity))
                findings.append(
                    Finding(rng.choice(RULES), severity, local, rng.choice((Side.CLIENT, Side.SERVER, None)),
                            frame, frame / 1000, f"bucket {b} conn {local} finding {n}", "RFC 9293",
                            rng.random() < 0.2)  # fmt: skip
                )
        out.append((np.asarray(first, dtype=np.int64), findings))
    return out


def expected_order(connections: ConnectionStore, buckets, cut: int | None) -> list[Finding]:
    """What the run made before findings were spilled: renumbered by the ConnectionStore, collected
    connection by connection in emission order, then sorted stably by (frame, connection, rule)."""
    connections.cut_at(cut)
    numbered = []
    for b, (_, findings) in enumerate(buckets):
        for index, (number, f) in enumerate(connections.renumber(b, findings)):
            numbered.append((number, index, f))
    numbered.sort(key=lambda item: (item[0], item[1]))
    run = [f for *_, f in numbered]
    run.sort(key=lambda f: (f.frame, f.connection, f.rule))
    return run


def stored(tmp_path, buckets, cut: int | None, render=None) -> FindingStore:
    store = FindingStore(str(tmp_path))
    for b, (first, findings) in enumerate(buckets):
        store.add(b, first, write_findings(str(tmp_path), b, list(findings), render))
    store.cut_at(cut)
    return store


def made_ahead(store: FindingStore) -> dict[str, str | None]:
    """The findings' JSON list items and CSV rows as a writer puts them from the text made ahead."""
    out: dict[str, str | None] = {}
    for kind, head, separator in (("json", json_report.finding_head, b","), ("csv", csv_report.finding_head, b"")):
        blocks = store.joined_texts(kind, head, separator)
        out[kind] = None if blocks is None else separator.join(blocks).decode("utf-8")
    return out


def formatted(findings: list[Finding]) -> dict[str, str]:
    """What the writers make of the findings when they read them back."""
    return {
        "json": ",".join(json_report._finding_text(f) for f in findings),
        "csv": "".join(csv_report._finding_row(f) for f in findings),
    }


def numbered(tmp_path, buckets) -> tuple[ConnectionStore, tuple]:
    """The buckets' connections in a store that numbers them, and the cuts to try: none, all, half."""
    connections = ConnectionStore(str(tmp_path))
    for b, (first, _) in enumerate(buckets):
        connections.adopt(b, Written(first, ["graceful"] * len(first)))
    all_first = sorted(int(f) for first, _ in buckets for f in first)
    return connections, (None, -1, all_first[len(all_first) // 2])


@pytest.mark.parametrize("seed", range(40))
def test_sorted_buckets_merged_read_back_in_the_order_one_run_makes(tmp_path, seed):
    buckets = synthetic_buckets(seed)
    connections, cuts = numbered(tmp_path, buckets)
    for cut in cuts:
        expected = expected_order(connections, buckets, cut)
        store = stored(tmp_path, buckets, cut)
        assert list(store) == expected
        assert len(store) == len(expected)
        assert store.kind_counts() == Counter((f.rule, f.severity.value, f.capture_quality) for f in expected)


@pytest.mark.parametrize("seed", range(40))
def test_text_made_ahead_is_written_in_the_order_one_run_makes(tmp_path, seed):
    buckets = synthetic_buckets(seed)
    connections, cuts = numbered(tmp_path, buckets)
    for cut in cuts:
        expected = expected_order(connections, buckets, cut)
        store = stored(tmp_path, buckets, cut, renderer_for(json=True, csv=True).findings)
        if cut is None or len(expected) == sum(len(f) for _, f in buckets):
            assert made_ahead(store) == formatted(expected)
        else:  # the cut left findings out of the bucket files: the writers read the rest back
            assert made_ahead(store) == {"json": None, "csv": None}


def test_text_is_served_only_when_every_bucket_with_findings_made_it(tmp_path):
    buckets = synthetic_buckets(5)
    assert sum(1 for _, findings in buckets if findings) >= 2
    json_only = renderer_for(json=True, csv=False).findings
    store = FindingStore(str(tmp_path))
    for b, (first, findings) in enumerate(buckets):
        store.add(b, first, write_findings(str(tmp_path), b, findings, json_only))
    assert made_ahead(store)["csv"] is None and made_ahead(store)["json"] == formatted(list(store))["json"]
    # One bucket with findings and no text: neither kind is served.
    store = FindingStore(str(tmp_path))
    for b, (first, findings) in enumerate(buckets):
        render = None if findings and b == next(i for i, (_, f) in enumerate(buckets) if f) else json_only
        store.add(b, first, write_findings(str(tmp_path), b, findings, render))
    assert made_ahead(store) == {"json": None, "csv": None}


@pytest.mark.parametrize("frame", [np.int64(3), None])  # a numpy int, or no number at all
def test_a_finding_of_an_odd_type_leaves_its_bucket_to_the_writer(tmp_path, frame):
    odd = Finding("abortive-close", Severity.WARNING, 1, Side.CLIENT, frame, 0.1, "m")
    spilled = write_findings(str(tmp_path), 0, [odd], renderer_for(json=True, csv=True).findings)
    assert spilled.texts == ()


def test_a_head_the_writer_cannot_make_leaves_the_findings_to_it(tmp_path):
    store = stored(tmp_path, synthetic_buckets(2), None, renderer_for(json=True, csv=True).findings)
    assert len(store) > 0

    def refuses(rule, severity):
        raise TypeError("not a str")

    assert store.joined_texts("json", refuses, b",") is None


def test_reports_written_from_text_made_ahead_read_no_finding_back(tmp_path, monkeypatch):
    store = stored(tmp_path, synthetic_buckets(9), None, renderer_for(json=True, csv=True).findings)
    expected = formatted(list(store))

    def no_reading(*_args):
        raise AssertionError("a finding was read back")

    monkeypatch.setattr(FindingStore, "_read", no_reading)
    result = SimpleNamespace(findings=store)
    handle = io.StringIO()
    csv_report._fast_findings(result, handle)
    assert handle.getvalue() == csv_report._csv_line(csv_report.FINDING_COLUMNS) + expected["csv"]


def test_the_synthetic_findings_do_tie_so_the_order_test_can_fail():
    ties_in_a_connection = ties_across = 0
    for seed in range(40):
        findings = [(b, f) for b, (_, fs) in enumerate(synthetic_buckets(seed)) for f in fs]
        by_key = Counter((b, f.connection, f.frame, f.rule) for b, f in findings)
        ties_in_a_connection += sum(1 for n in by_key.values() if n > 1)
        by_frame = {}
        for b, f in findings:
            by_frame.setdefault(f.frame, set()).add(b)
        ties_across += sum(1 for bs in by_frame.values() if len(bs) > 1)
    assert ties_in_a_connection > 5 and ties_across > 20


def test_length_and_counts_need_no_file(tmp_path):
    buckets = synthetic_buckets(7)
    all_first = sorted(int(f) for first, _ in buckets for f in first)
    store = stored(tmp_path, buckets, all_first[len(all_first) // 2])
    read = list(store)
    for path in tmp_path.iterdir():
        path.unlink()
    assert len(store) == len(read) > 0
    assert store.kind_counts() == Counter((f.rule, f.severity.value, f.capture_quality) for f in read)
    with pytest.raises(PcapcheckError):
        list(store)


def test_counts_and_worst_first_are_the_same_on_the_store_as_on_its_list(tmp_path):
    store = stored(tmp_path, synthetic_buckets(3), None)
    listed = list(store)
    assert kind_counts(store) == kind_counts(listed)
    assert severity_counts(store) == severity_counts(listed)
    assert rule_counts(store) == rule_counts(listed)
    assert rule_totals(store) == dict(sorted(Counter(f.rule for f in listed).items()))
    for fail_on in ("error", "warning", "info", "never"):
        assert failing_count(store, fail_on) == len(failing(listed, fail_on))
    for limit in (1, 3, len(listed), len(listed) + 5):
        assert worst_first(store, limit) == worst_first(listed)[:limit]


def test_the_store_is_a_sequence_like_its_list(tmp_path):
    store = stored(tmp_path, synthetic_buckets(11), None)
    listed = list(store)
    assert store == listed and store != listed[:-1]
    assert store[0] == listed[0] and store[-1] == listed[-1] and store[2:7:2] == listed[2:7:2]
    with pytest.raises(IndexError):
        store[len(listed)]


def test_an_unwritable_directory_is_one_error_line(tmp_path):
    finding = Finding("abortive-close", Severity.WARNING, 1, Side.CLIENT, 3, 0.1, "m")
    with pytest.raises(PcapcheckError, match="cannot write the temporary findings file"):
        write_findings(str(tmp_path / "gone"), 0, [finding])


# --- real runs --------------------------------------------------------------------------------------


def every_sample_paths() -> list[str]:
    """Every sample capture as one timeline: connections and findings spread over many buckets."""
    return [str(p) for s in all_samples() for p in s.capture_paths]


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_partitioned_run_reads_back_the_findings_of_an_in_memory_one(monkeypatch, jobs):
    paths = every_sample_paths()
    in_memory = analyze(paths, load_config(None))
    assert len(in_memory.findings) > 20 and len({f.connection for f in in_memory.findings}) > 10
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
    result = analyze(paths, load_config(None), jobs=jobs)
    assert isinstance(result.findings, FindingStore)
    assert list(result.findings) == in_memory.findings and len(result.findings) == len(in_memory.findings)


def test_the_process_that_analyses_a_bucket_writes_its_findings(tmp_path):
    paths = every_sample_paths()
    capture = open_capture(paths)
    held = read_capture(capture.batches(), in_memory=0, per_bucket=50)
    config = load_config(None)
    outcomes = analyze_bucket_range(
        held.partition, range(held.partition.buckets), held.workdir.name, capture=capture.info,
        profile=config.profile_for_run(), config=config, catalogue=load_catalogue([]),
    )  # fmt: skip
    spilled = [o.findings for o in outcomes]
    assert all(isinstance(s, SpilledFindings) for s in spilled)
    assert sum(len(s.connections) for s in spilled) == len(analyze(paths, config).findings)
