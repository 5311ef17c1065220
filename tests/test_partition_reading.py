"""Partitioned reading: bucket files written without per-bucket copies, peer counts read back only
when a connection's roles must be guessed, and the rebuild's shape keys whatever inputs it is handed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pcapcheck.partition as partition
from pcapcheck.buckets import rebuild_bucket
from pcapcheck.capture import open_capture
from pcapcheck.connections import _listener_counts, _split_connections, rebuild
from pcapcheck.replay import shape
from pcapcheck.segments import SEGMENT_DTYPE
from tests.test_jobs import midstream_clients_of_one_listener

DATA = Path(__file__).resolve().parent / "data"


def capture_rows(*names: str) -> np.ndarray:
    rows = np.concatenate([b for name in names for b in open_capture(str(DATA / name)).batches()])
    return rows[np.argsort(rows["ts_ns"], kind="stable")]


def partitioned(tmp_path, rows: np.ndarray, buckets: int, batch: int = 5) -> partition.Partition:
    part = partition.Partition.create(str(tmp_path), buckets)
    for first in range(0, len(rows), batch):
        part.add(rows[first : first + batch])
    part.finish()
    return part


def test_bucket_files_hold_each_row_once_byte_for_byte_in_capture_order(tmp_path):
    rows = capture_rows("incarnations.pcap", "midstream.pcap", "real-eth.pcap")
    part = partitioned(tmp_path, rows, 7, batch=11)
    shard = partition.tuple_shard(rows, 7)
    for b in range(7):
        assert part.rows(b).tobytes() == rows[shard == b].tobytes()
    assert part.segments == len(rows)


def test_peer_counts_read_back_from_the_buckets_are_those_of_the_whole_capture(tmp_path):
    rows = np.concatenate([capture_rows("incarnations.pcap", "real-eth.pcap"), midstream_clients_of_one_listener()])
    listeners = partitioned(tmp_path, rows, 4).listener_rows()
    assert listeners.counts() == _listener_counts(rows)
    assert listeners.counts()[(bytes(rows["dst"][0]), int(rows["dport"][0]))] >= 1


def test_the_peer_counts_are_counted_once_and_only_when_a_role_is_guessed(tmp_path, monkeypatch):
    counted = []
    real = partition._listener_counts

    def counting(rows):
        counted.append(len(rows))
        return real(rows)

    monkeypatch.setattr(partition, "_listener_counts", counting)
    whole = capture_rows("incarnations.pcap")
    (tmp_path / "syn").mkdir()
    part = partitioned(tmp_path / "syn", whole, 3)
    listeners = part.listener_rows()
    with_syns = [c for b in range(3) for c in rebuild_bucket(part.rows(b), listeners)]
    assert with_syns and counted == []

    guessed_rows = midstream_clients_of_one_listener()
    (tmp_path / "guess").mkdir()
    part = partitioned(tmp_path / "guess", guessed_rows, 3)
    listeners = part.listener_rows()
    guessed = [c for b in range(3) for c in rebuild_bucket(part.rows(b), listeners)]
    assert len(counted) == 1
    by_port = {c.client.port: c for c in guessed}
    expected = {c.client.port: c for c in rebuild([guessed_rows])}
    assert sorted(by_port) == [1000, 1001, 1002] and all(str(c.server) == "198.18.0.2:50000" for c in guessed)
    for port, conn in expected.items():
        assert by_port[port].rows.tobytes() == conn.rows.tobytes()


@pytest.mark.parametrize("name", ["incarnations.pcap", "real-eth.pcap", "seq-wrap.pcap", "tcp-options.pcap"])
def test_shapes_from_the_callers_columns_equal_shapes_read_from_the_rows(name, monkeypatch):
    calls = []
    real = shape.connection_shapes

    def both(rows, starts, ends, sender, seq, ack, eligible, **given):
        got = real(rows, starts, ends, sender, seq, ack, eligible, **given)
        calls.append((got, real(rows, starts, ends, sender, seq, ack, eligible), set(given)))
        return got

    monkeypatch.setattr(shape, "connection_shapes", both)
    conns = list(rebuild(open_capture(str(DATA / name)).batches()))
    ((given, read, keywords),) = calls
    assert keywords == {"flags", "length", "by_side"}
    assert given == read and len(given) == len(conns)


def test_the_split_keeps_the_columns_it_read():
    rows = capture_rows("incarnations.pcap")
    split = _split_connections(rows)
    for name in ("flags", "seq", "ack", "payload_len"):
        column = getattr(split.columns, name)
        assert column.flags.c_contiguous and np.array_equal(column, split.rows[name])
    assert split.rows.dtype == SEGMENT_DTYPE
