"""A capture too large to hold is partitioned by 4-tuple to disk and analysed bucket by bucket.

The specification: the result is the one an in-memory run gives, connection for connection and
finding for finding; a read error part-way still reports what was read before it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import pcapcheck.partition as partition
from pcapcheck.analysis import analyze
from pcapcheck.buckets import BucketOutcome, assemble
from pcapcheck.capture import open_capture
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild
from pcapcheck.findings import Finding
from pcapcheck.reports.document import build_document
from pcapcheck.store import ConnectionStore, write_bucket
from tests.samples_support import all_samples, config_for
from tests.test_jobs import corrupt_record
from tests.test_reports_sample import sample_result

DATA = Path(__file__).resolve().parent / "data"
SAMPLES = all_samples()


def document(paths, config=None, **kw) -> dict:
    return build_document(analyze([str(p) for p in paths], config or load_config(None), **kw))


@pytest.fixture
def tiny_buckets(monkeypatch):
    """Partition from the fourth segment on, two segments a bucket: every sample spreads out."""
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_a_partitioned_run_gives_the_same_document_as_an_in_memory_one(sample, monkeypatch):
    in_memory = document(sample.capture_paths, config_for(sample))
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
    assert document(sample.capture_paths, config_for(sample)) == in_memory


def test_reused_tuples_and_midstream_pickups_come_out_the_same_partitioned(tiny_buckets, monkeypatch):
    paths = [DATA / "incarnations.pcap", DATA / "midstream.pcap"]
    partitioned = document(paths)
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 10**9)
    assert partitioned == document(paths)
    assert max(c["incarnation"] for c in partitioned["connections"]) > 1


def test_the_result_reads_its_connections_from_disk_when_partitioned(tiny_buckets):
    result = analyze([str(DATA / "incarnations.pcap")], load_config(None))
    assert type(result.connections).__name__ == "ConnectionStore"
    ids = [c.id for c in result.connections]
    assert ids == list(range(1, len(result.connections) + 1))
    assert [c.id for c in result.connections[1:3]] == ids[1:3] and result.connections[-1].id == ids[-1]


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_bucket_files_are_gone_once_analysed_and_the_reports_still_read(tiny_buckets, jobs):
    result = analyze([str(DATA / "incarnations.pcap")], load_config(None), jobs=jobs)
    directory = Path(result.connections.directory)
    assert not list(directory.glob("segments-*.bin"))
    assert len(list(result.connections)) == len(result.connections) > 1


def test_every_segment_of_a_tuple_lands_in_one_bucket(tmp_path):
    rows = np.concatenate(list(open_capture(str(DATA / "incarnations.pcap")).batches()))
    part = partition.Partition.create(str(tmp_path), 5)
    part.add(rows[:7])
    part.add(rows[7:])
    part.finish()
    buckets = [part.rows(b) for b in range(5)]
    assert sum(len(b) for b in buckets) == len(rows) == part.segments
    for conn in rebuild([rows]):
        holding = [b for b in range(5) if np.isin(conn.rows["frame"], buckets[b]["frame"]).all()]
        assert len(holding) == 1
    for b in buckets:  # capture order kept within a bucket
        assert (np.diff(b["frame"].astype(np.int64)) > 0).all()


@pytest.mark.parametrize("partitioned", [False, True])
def test_a_corrupt_record_part_way_still_reports_the_connections_read_before_it(tmp_path, monkeypatch, partitioned):
    whole = document([DATA / "real-eth.pcap"])
    broken = corrupt_record(DATA / "real-eth.pcap", tmp_path / "broken.pcap", 30)
    if partitioned:
        monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
        monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
    doc = document([broken])
    assert doc["error"].startswith(f"{broken}: record 30: captured length 16777215 is impossible")
    assert doc["connections"] and all(c["last_frame"] < 30 for c in doc["connections"])
    # Every connection begun before the bad record is there, no more.
    begun = [(c["client"], c["server"], c["first_frame"]) for c in whole["connections"] if c["first_frame"] < 30]
    assert [(c["client"], c["server"], c["first_frame"]) for c in doc["connections"]] == begun


# --- the merge of buckets -------------------------------------------------------------------------


def spilled(store: ConnectionStore, bucket: int, reports, findings, **kw) -> BucketOutcome:
    """``reports`` as bucket ``bucket`` would leave them: numbered 1.. within it, on disk."""
    local = {}
    for n, report in enumerate(sorted(reports, key=lambda r: r.first_frame), start=1):
        local[report.id] = n
        report.id = n
    mine = [
        Finding(f.rule, f.severity, local[f.connection], f.endpoint, f.frame, f.time, f.message)
        for f in findings
        if f.connection in local
    ]
    written = write_bucket(store.directory, bucket, sorted(reports, key=lambda r: r.first_frame))
    return BucketOutcome(bucket, written, mine, **kw)


def split_sample(store: ConnectionStore, **kw) -> tuple[list, list[BucketOutcome]]:
    result = sample_result()
    conns = sorted(result.connections, key=lambda c: c.first_frame)
    frames = [c.first_frame for c in conns]
    odd, even = conns[1::2], conns[0::2]
    findings = list(result.findings)
    outcomes = [spilled(store, 0, odd, findings), spilled(store, 1, even, findings, **kw)]
    return frames, outcomes


def test_buckets_are_numbered_by_first_frame_as_one_run_numbers_them(tmp_path):
    store = ConnectionStore(str(tmp_path))
    frames, outcomes = split_sample(store)
    merged = assemble(store, outcomes)
    assert [(c.id, c.first_frame) for c in merged.reports] == list(enumerate(frames, start=1))
    assert store.close_counts() == Counter(c.close for c in sample_result().connections)
    by_id = {c.id: c for c in merged.reports}
    original = {c.first_frame: c for c in sample_result().connections}
    expected = {(f.rule, original_first) for f in sample_result().findings
                for original_first in [next(c.first_frame for c in sample_result().connections if c.id == f.connection)]}
    assert {(f.rule, by_id[f.connection].first_frame) for f in merged.findings} == expected
    assert set(original) == set(frames)


def test_an_error_cuts_every_bucket_at_the_earliest_error_frame(tmp_path):
    store = ConnectionStore(str(tmp_path))
    frames, outcomes = split_sample(store, error="early", error_frame=None)
    outcomes[1].error_frame = sorted(frames)[1]
    merged = assemble(store, outcomes)
    assert merged.error == "early" and [c.first_frame for c in merged.reports] == sorted(frames)[:1]
    assert store.close_counts() == Counter(c.close for c in merged.reports)
    assert {f.connection for f in merged.findings} <= {1} and len(merged.reports) == 1


def test_an_error_before_any_connection_keeps_nothing(tmp_path):
    store = ConnectionStore(str(tmp_path))
    _, outcomes = split_sample(store, error="cut", error_frame=None)
    merged = assemble(store, outcomes)
    assert (list(merged.reports), merged.findings, merged.error) == ([], [], "cut")


# --- report text made ahead, where each bucket is analysed ------------------------------------------


def reports_written(tmp_path, name, paths, config=None, **kw) -> tuple[str, str, str]:
    from pcapcheck.reports import write_reports

    result = analyze([str(p) for p in paths], config or load_config(None), **kw)
    out = tmp_path / name
    write_reports(result, json_path=out.with_suffix(".json"), csv_dir=out)
    return tuple(p.read_text() for p in (out.with_suffix(".json"), out / "connections.csv", out / "findings.csv"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_text_made_ahead_in_the_buckets_writes_the_same_reports(tmp_path, monkeypatch, jobs):
    from pcapcheck.reports.fragments import renderer_for

    for sample in SAMPLES[:12]:
        plain = reports_written(tmp_path, f"{sample.name}-plain", sample.capture_paths, config_for(sample))
        monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
        monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
        ahead = reports_written(
            tmp_path, f"{sample.name}-ahead", sample.capture_paths, config_for(sample),
            render=renderer_for(json=True, csv=True), jobs=jobs,
        )  # fmt: skip
        monkeypatch.undo()
        assert ahead == plain, sample.name


def test_the_store_serves_made_text_only_when_every_bucket_has_it(tmp_path):
    from pcapcheck.reports.fragments import prerendered, renderer_for

    store = ConnectionStore(str(tmp_path))
    result = sample_result()
    conns = sorted(result.connections, key=lambda c: c.first_frame)
    both = renderer_for(json=True, csv=True)
    json_only = renderer_for(json=True, csv=False)
    store.adopt(0, write_bucket(store.directory, 0, conns[0::2], both))
    store.adopt(1, write_bucket(store.directory, 1, conns[1::2], json_only))
    assert prerendered(store, "csv") is None
    made = json.loads(b"[" + b",".join(prerendered(store, "json")) + b"]")
    assert [record["id"] for record in made] == list(range(1, len(conns) + 1))
    assert all(list(record)[:2] == ["id", "client"] for record in made)


def test_jobs_read_a_pipe_once_and_give_the_same_result(tmp_path):
    import subprocess
    import sys

    capture = DATA / "incarnations.pcap"
    one = tmp_path / "one.json"
    two = tmp_path / "two.json"
    subprocess.run([sys.executable, "-m", "pcapcheck", "analyze", str(capture), "--json", str(one), "-q",
                    "--fail-on", "never"], check=True)  # fmt: skip
    pipe = subprocess.Popen(["cat", str(capture)], stdout=subprocess.PIPE)
    subprocess.run([sys.executable, "-m", "pcapcheck", "analyze", "/dev/stdin", "--json", str(two), "-q", "-j", "2",
                    "--fail-on", "never"], check=True, stdin=pipe.stdout)  # fmt: skip
    pipe.wait()
    a, b = json.loads(one.read_text()), json.loads(two.read_text())
    assert a["connections"] == b["connections"] and a["findings"] == b["findings"]
