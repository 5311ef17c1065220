"""Several files are one timeline: a tcpdump ring buffer, or files whose packets interleave."""

from __future__ import annotations

import importlib.util

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild

from .test_capture_support import DATA, WIRE_COLUMNS, differing_columns, read_all

spec = importlib.util.spec_from_file_location("make_captures", DATA / "make_captures.py")
make_captures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_captures)

RING = sorted(DATA.glob("ring_*.pcap"))


def test_ring_buffer_files_read_together_equal_the_capture_they_were_cut_from():
    assert len(RING) == 4
    whole, _ = read_all(DATA / "real-eth.pcap")
    merged, info = read_all(*RING)
    assert info.packets == 48
    assert differing_columns(merged, whole, WIRE_COLUMNS + ("frame", "ts_ns")) == []
    # Each segment still knows where it came from: 12 records per file.
    assert merged["file_index"].tolist() == [i // 12 for i in range(48)]
    assert merged["file_frame"].tolist() == [i % 12 + 1 for i in range(48)]


def test_a_connection_spanning_ring_files_is_one_connection():
    conns = list(rebuild(open_capture([str(p) for p in RING]).batches()))
    assert [(c.id, c.first_frame, c.last_frame) for c in conns] == [
        (1, 1, 10),
        (2, 11, 20),  # frames 11-12 in the first file, 13-20 in the second
        (3, 21, 30),
        (4, 31, 32),
        (5, 33, 38),
        (6, 39, 48),
    ]


def test_files_given_in_any_order_are_merged_by_timestamp():
    merged, _ = read_all(*reversed(RING))
    assert merged["frame"].tolist() == list(range(1, 49))
    assert merged["file_index"].tolist() == [3 - i // 12 for i in range(48)]


def test_interleaved_files_merge_record_by_record_and_number_every_record(tmp_path):
    records, linktype = make_captures.read_pcap(DATA / "ipv4-options.pcap")  # 11 records, 2 not TCP
    even, odd = tmp_path / "even.pcap", tmp_path / "odd.pcap"
    make_captures.write_pcap(even, linktype, records[0::2])
    make_captures.write_pcap(odd, linktype, records[1::2])
    whole, _ = read_all(DATA / "ipv4-options.pcap")
    merged, info = read_all(odd, even)
    assert info.packets == 11 and info.non_tcp_packets == 2
    # The non-TCP records (frames 5 and 6) still take their place in the global numbering.
    assert merged["frame"].tolist() == whole["frame"].tolist() == [1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert differing_columns(merged, whole, WIRE_COLUMNS + ("ts_ns",)) == []
    assert merged["file_index"].tolist() == [1, 0, 1, 0, 1, 0, 1, 0, 1]  # odd frames in even.pcap


def test_merge_in_small_chunks_gives_the_same_timeline(monkeypatch, tmp_path):
    from pcapcheck.capture import source

    monkeypatch.setattr(source, "CHUNK_SIZE", 300)  # many chunks per file, records across chunk ends
    merged, info = read_all(*RING)
    whole, _ = read_all(DATA / "real-eth.pcap")
    assert info.packets == 48
    assert differing_columns(merged, whole, WIRE_COLUMNS + ("frame", "ts_ns")) == []


def test_one_file_read_in_small_chunks_is_read_the_same(monkeypatch):
    from pcapcheck.capture import source

    whole, _ = read_all(DATA / "real-2if.pcapng")
    monkeypatch.setattr(source, "CHUNK_SIZE", 97)
    chunked, _ = read_all(DATA / "real-2if.pcapng")
    assert differing_columns(chunked, whole) == []
