"""Several files are one timeline: a tcpdump ring buffer, or files whose packets interleave."""

from __future__ import annotations

import struct

from pcapcheck.capture import open_capture
from pcapcheck.connections import rebuild
from pcapcheck.errors import CaptureError

from .test_capture_support import DATA, SAMPLES, WIRE_COLUMNS, differing_columns, make_captures, read_all

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
    records, linktype = make_captures().read_pcap(DATA / "ipv4-options.pcap")  # 11 records, 2 not TCP
    even, odd = tmp_path / "even.pcap", tmp_path / "odd.pcap"
    make_captures().write_pcap(even, linktype, records[0::2])
    make_captures().write_pcap(odd, linktype, records[1::2])
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


def test_damage_in_one_of_several_files_raises_after_the_merged_segments_before_it(tmp_path):
    data = RING[1].read_bytes()
    broken = tmp_path / "ring-broken.pcap"
    # the second file's 3rd record gets an impossible captured length
    pos = 24
    for _ in range(2):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    broken.write_bytes(data[: pos + 8] + struct.pack("<I", 0x00FFFFFF) + data[pos + 12 :])
    capture = open_capture([str(RING[0]), str(broken)])
    frames = []
    try:
        for batch in capture.batches():
            frames.extend(batch["frame"].tolist())
    except CaptureError as err:
        assert "ring-broken.pcap: record 3" in str(err)
    else:
        raise AssertionError("no CaptureError")
    assert frames[:14] == list(range(1, 15))  # the first file, then the second file's records 1-2


def test_the_same_file_given_twice_is_read_once_with_a_warning():
    sample = str(SAMPLES / "refused.pcap")
    capture = open_capture([sample, sample])
    rows = [row for batch in capture.batches() for row in batch]
    assert len(rows) == len([row for batch in open_capture([sample]).batches() for row in batch])
    assert capture.info.paths == [sample]
    assert capture.info.warnings == [f"{sample}: given more than once; read once"]
