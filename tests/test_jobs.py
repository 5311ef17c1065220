"""``--jobs N``: connections sharded by 4-tuple across processes give the very result of one process."""

from __future__ import annotations

import json
import multiprocessing
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import pcapcheck.analysis
import pcapcheck.buckets
import pcapcheck.shard
from pcapcheck.analysis import analyze
from pcapcheck.capture import open_capture
from pcapcheck.cli import app
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild
from pcapcheck.errors import ConfigError, PcapcheckError
from pcapcheck.reports.document import build_document
from pcapcheck.buckets import rebuild_bucket
from pcapcheck.partition import distinct_pairs
from pcapcheck.partition import tuple_shard
from pcapcheck.shard import resolve_jobs
from tests.builders import Conversation
from tests.samples_support import all_samples, config_for

DATA = Path(__file__).resolve().parent / "data"
SAMPLES = all_samples()
HAS_FORK = "fork" in multiprocessing.get_all_start_methods()


def document(paths, config=None, **kw) -> dict:
    return build_document(analyze([str(p) for p in paths], config or load_config(None), **kw))


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_two_jobs_give_the_same_document_as_one_on_every_sample(sample):
    one = document(sample.capture_paths, config_for(sample))
    two = document(sample.capture_paths, config_for(sample), jobs=2)
    assert two == one


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_incarnations_on_reused_tuples_are_numbered_as_one_process_numbers_them(jobs):
    paths = [DATA / "incarnations.pcap", DATA / "midstream.pcap"]  # one timeline, 8 connections
    one = document(paths)
    assert len(one["connections"]) > 4 and max(c["incarnation"] for c in one["connections"]) > 1
    assert document(paths, jobs=jobs) == one


def test_spawned_workers_give_the_same_result_as_forked_ones(monkeypatch):
    config = load_config(None)
    paths = [str(DATA / "incarnations.pcap")]
    result = analyze(paths, config)
    monkeypatch.setattr(pcapcheck.shard, "start_method", lambda: "spawn")
    spawned = analyze(paths, config, jobs=2)
    assert [r.id for r in spawned.connections] == [c.id for c in result.connections]
    assert [(r.client, r.server, r.incarnation) for r in spawned.connections] == [
        (c.client, c.server, c.incarnation) for c in result.connections
    ]
    assert sorted(spawned.findings, key=lambda f: (f.frame, f.connection, f.rule)) == result.findings


def corrupt_record(source: Path, target: Path, record: int) -> Path:
    """A copy of a pcap whose ``record``-th record (1-based) claims an impossible captured length."""
    data = source.read_bytes()
    pos = 24
    for _ in range(record - 1):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    target.write_bytes(data[: pos + 8] + struct.pack("<I", 0x00FFFFFF) + data[pos + 12 :])
    return target


def test_a_corrupt_record_part_way_sets_the_error_with_jobs_as_without(tmp_path):
    broken = corrupt_record(DATA / "real-eth.pcap", tmp_path / "broken.pcap", 30)
    one = document([broken])
    assert one["error"].startswith(f"{broken}: record 30: captured length 16777215 is impossible")
    assert one["capture"]["packets"] == 29
    assert document([broken], jobs=2) == one


@pytest.mark.skipif(not HAS_FORK, reason="the stand-in check must reach the workers through fork")
def test_an_error_while_checking_cuts_every_shard_where_one_process_stops(monkeypatch):
    paths = [DATA / "real-eth.pcap"]
    rows = np.concatenate(list(open_capture(str(paths[0])).batches()))
    shard_at = {c.first_frame: int(tuple_shard(c.rows[:1], 2)[0]) for c in rebuild([rows])}
    connections = document(paths)["connections"]
    # Stop at a connection after which the other shard still starts one: that one must be cut too.
    stop_at = next(
        c["first_frame"]
        for c in connections[1:]
        if any(f > c["first_frame"] and s != shard_at[c["first_frame"]] for f, s in shard_at.items())
    )
    real = pcapcheck.analysis.run_checks

    def failing_checks(conn, rep, **kw):
        if conn.first_frame == stop_at:
            raise ConfigError("a check could not run")
        return real(conn, rep, **kw)

    monkeypatch.setattr(pcapcheck.analysis, "run_checks", failing_checks)
    one = document(paths)
    assert one["error"] == "a check could not run"
    assert [c["first_frame"] for c in one["connections"]] == [
        c["first_frame"] for c in connections if c["first_frame"] < stop_at
    ]
    assert document(paths, jobs=2) == one
    assert document(paths, jobs=3) == one


def test_a_capture_that_does_not_open_raises_as_without_jobs(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3")
    with pytest.raises(PcapcheckError, match="truncated file header"):
        analyze([str(bad)], load_config(None), jobs=2)


# --- sharding -----------------------------------------------------------------------------------


def test_both_directions_and_every_incarnation_of_a_tuple_share_a_shard():
    capture = open_capture(str(DATA / "incarnations.pcap"))
    rows = np.concatenate(list(capture.batches()))
    shard = tuple_shard(rows, 7)
    for conn in rebuild([rows]):
        assert len(set(tuple_shard(conn.rows, 7).tolist())) == 1
    assert set(shard.tolist()) <= set(range(7))


def test_many_tuples_spread_over_every_shard():
    rows = np.concatenate(
        [Conversation(client=("198.18.0.1", 40000 + i)).client("S").server("SA").rows() for i in range(64)]
    )
    counts = np.bincount(tuple_shard(rows, 4), minlength=4)
    assert (counts > 0).all() and counts.sum() == 128


def midstream_clients_of_one_listener() -> np.ndarray:
    """Three mid-stream conversations with 198.18.0.2:50000 from ports below 1024."""
    parts = []
    for i, port in enumerate((1000, 1001, 1002)):
        client, server = (f"198.18.0.{10 + i}", port), ("198.18.0.2", 50000)
        conv = Conversation(client=client, server=server, start=1_700_000_000.0 + i)
        conv.client("PA", length=100).server("A").server("PA", length=50).client("A")
        parts.append(conv.rows())
    rows = np.concatenate(parts)
    rows = rows[np.argsort(rows["ts_ns"], kind="stable")]
    rows["frame"] = rows["file_frame"] = np.arange(1, len(rows) + 1)
    return rows


def test_a_bucket_guesses_the_listener_from_the_whole_capture():
    rows = midstream_clients_of_one_listener()
    first_tuple = (rows["sport"] == 1000) | (rows["dport"] == 1000)
    (whole,) = [c for c in rebuild([rows]) if c.client.port == 1000 or c.server.port == 1000]
    (shard,) = rebuild_bucket(rows[first_tuple], distinct_pairs(rows))
    assert str(whole.server) == str(shard.server) == "198.18.0.2:50000"
    assert shard.roles_inferred and shard.id == 1 and np.array_equal(shard.rows, whole.rows)
    # Alone, that tuple's rows would make the well-known port the server: the whole capture matters.
    (alone,) = rebuild([rows[first_tuple]])
    assert alone.server.port == 1000


def test_jobs_zero_means_one_per_core_and_a_negative_count_is_refused():
    assert resolve_jobs(0) >= 1 and resolve_jobs(3) == 3
    with pytest.raises(ConfigError, match="--jobs"):
        resolve_jobs(-1)


# --- the command line ---------------------------------------------------------------------------

runner = CliRunner()


def test_cli_jobs_writes_the_same_json_report(tmp_path):
    capture = DATA / "incarnations.pcap"
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    first = runner.invoke(app, ["analyze", str(capture), "-q", "--json", str(one)])
    second = runner.invoke(app, ["analyze", str(capture), "-q", "--json", str(two), "--jobs", "2"])
    assert first.exit_code == second.exit_code and first.exit_code in (0, 1)
    assert json.loads(two.read_text()) == json.loads(one.read_text())


def test_cli_negative_jobs_is_a_usage_error_on_one_line():
    result = runner.invoke(app, ["analyze", str(DATA / "incarnations.pcap"), "--jobs", "-1"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "pcapcheck: error: --jobs must be 0 (one per core) or a positive number, not -1"
    ]


@pytest.mark.skipif(not HAS_FORK, reason="the stand-in worker must reach the child through fork")
def test_a_worker_killed_from_outside_is_one_error_line(monkeypatch):
    monkeypatch.setattr(pcapcheck.shard, "_worker", lambda messages, task, shard: os._exit(9))
    with pytest.raises(PcapcheckError, match=r"^analysis process 2 of 2 died \(exit code 9\); try fewer --jobs$"):
        analyze([str(DATA / "incarnations.pcap")], load_config(None), jobs=2)


@pytest.mark.skipif(not HAS_FORK, reason="the stand-in analysis must reach the child through fork")
def test_a_bug_in_a_worker_raises_with_the_workers_traceback(monkeypatch):
    real = pcapcheck.shard.analyze_shard

    def broken(task, shard):
        if shard == 1:
            raise ValueError("shard one is broken")
        return real(task, shard)

    monkeypatch.setattr(pcapcheck.shard, "analyze_shard", broken)
    with pytest.raises(RuntimeError, match="shard worker 1 failed:(.|\n)*ValueError: shard one is broken"):
        analyze([str(DATA / "incarnations.pcap")], load_config(None), jobs=2)


@pytest.mark.skipif(not HAS_FORK, reason="the stand-in analysis must reach the child through fork")
def test_a_slowed_worker_takes_fewer_buckets_and_every_bucket_is_analysed_once(monkeypatch, tmp_path):
    parent = os.getpid()
    real = pcapcheck.buckets.analyze_bucket

    def slowed_in_the_worker(partition, bucket, *args, **kwargs):
        if os.getpid() != parent:
            time.sleep(0.5)  # other work on the machine
        (tmp_path / f"{bucket}.{os.getpid()}").touch()
        return real(partition, bucket, *args, **kwargs)

    paths = [DATA / "real-eth.pcap"]
    one = document(paths)
    monkeypatch.setattr(pcapcheck.buckets, "analyze_bucket", slowed_in_the_worker)
    assert document(paths, jobs=2) == one
    taken = [name.split(".") for name in os.listdir(tmp_path)]
    buckets = sorted(int(bucket) for bucket, _ in taken)
    assert buckets == list(range(len(buckets))) and len(buckets) >= 8  # each once: 4 per process at least
    by_parent = sum(int(pid) == parent for _, pid in taken)
    assert by_parent > len(buckets) - by_parent


def test_progress_counts_every_segment_once_with_jobs():
    counted: dict[int, list[int]] = {1: [], 3: []}
    for jobs in counted:
        result = analyze([str(DATA / "real-eth.pcap")], load_config(None), jobs=jobs, progress=counted[jobs].append)
    assert sum(counted[3]) == sum(counted[1]) == result.capture.tcp_packets > 0
