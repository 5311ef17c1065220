"""The reader decodes every file format and link type to the same segments.

Most files here are the *same* real loopback-lab capture (tests/data/real-eth.pcap, made by
tests/data/make_captures.py) in another format or under another link layer, so the expectation is
simply: the same TCP segments as the Ethernet original.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from pcapcheck.segments import CHECKSUM_BAD, CHECKSUM_OK, CHECKSUM_UNKNOWN, address_text

from .test_capture_support import DATA, WIRE_COLUMNS, differing_columns, make_captures, read_all

REFERENCE = DATA / "real-eth.pcap"


@pytest.fixture(scope="module")
def reference():
    return read_all(REFERENCE)


def test_real_ethernet_capture_has_48_tcp_segments_with_good_checksums(reference):
    rows, info = reference
    assert (info.packets, info.tcp_packets, info.non_tcp_packets) == (48, 48, 0)
    assert info.link_types == ["EN10MB"]
    assert info.formats == ["pcap"]
    assert rows["frame"].tolist() == list(range(1, 49))
    assert set(rows["checksum"].tolist()) == {CHECKSUM_OK}
    first = rows[0]
    assert (address_text(first["src"], 4), int(first["sport"])) == ("198.18.0.1", 54484)
    assert (int(first["mss"]), int(first["wscale"]), bool(first["sack_permitted"]), bool(first["has_ts"])) == (
        1460,
        10,
        True,
        True,
    )
    assert int(rows[3]["payload_len"]) == 1000  # frame 4: the 1000-byte request


@pytest.mark.parametrize(
    "name, link_type",
    [
        ("real-eth.pcapng", "EN10MB"),
        ("real-eth.pcap.gz", "EN10MB"),
        ("real-eth-nsec.pcap", "EN10MB"),
        ("big-endian-nsec.pcap", "EN10MB"),
        ("real-sll.pcap", "LINUX_SLL"),
        ("real-sll2.pcap", "LINUX_SLL2"),
        ("raw101.pcap", "RAW"),
        ("null-le.pcap", "NULL"),
        ("null-be.pcap", "NULL"),
        ("loop108.pcap", "LOOP"),
        ("vlan.pcap", "EN10MB"),
        ("qinq.pcap", "EN10MB"),
    ],
)
def test_same_packets_in_another_format_or_link_layer_decode_identically(reference, name, link_type):
    rows, info = read_all(DATA / name)
    assert info.link_types == [link_type]
    assert info.packets == 48
    assert differing_columns(rows, reference[0], WIRE_COLUMNS + ("frame", "file_frame")) == []


def test_raw_ipv4_and_raw_ipv6_link_types_hold_their_family_only(reference):
    ref_rows = reference[0]
    v4, info4 = read_all(DATA / "raw228-ipv4.pcap")
    v6, info6 = read_all(DATA / "raw229-ipv6.pcap")
    assert (info4.link_types, info6.link_types) == (["IPV4"], ["IPV6"])
    assert differing_columns(v4, ref_rows[ref_rows["ip_version"] == 4], WIRE_COLUMNS) == []
    assert differing_columns(v6, ref_rows[ref_rows["ip_version"] == 6], WIRE_COLUMNS) == []


def test_microsecond_and_nanosecond_timestamps_mean_the_same_instant(reference):
    usec = reference[0]["ts_ns"]
    nsec = read_all(DATA / "real-eth-nsec.pcap")[0]["ts_ns"]
    big_endian = read_all(DATA / "big-endian-nsec.pcap")[0]["ts_ns"]
    assert np.array_equal(usec, nsec)
    assert np.array_equal(big_endian, usec + 123)  # written with 123 extra nanoseconds
    assert usec[0] % 1000 == 0


def test_pcapng_interfaces_keep_their_own_link_type_and_timestamp_resolution():
    rows, info = read_all(DATA / "multi-if.pcapng")
    assert info.link_types == ["EN10MB", "RAW", "IPV4"]
    assert info.comments == ["crafted by make_captures.py", "if0", "if1", "if2"]
    base = 1_750_000_000 * 10**9
    # if0 microseconds, if1 nanoseconds (keeps the 777), if2 binary 2**-20 s (rounds down)
    assert rows["ts_ns"][:3].tolist() == [base, base + 1_000_777, base + 1_999_855]
    assert rows["ip_version"][:3].tolist() == [4, 6, 4]
    assert info.tcp_packets == 27


def test_dumpcap_two_interfaces_in_one_file_are_both_read_in_file_order():
    rows, info = read_all(DATA / "real-2if.pcapng")
    assert (info.packets, info.tcp_packets, info.non_tcp_packets) == (21, 18, 3)
    assert info.comments[:2] == ["eth0", "lo"]
    assert rows["frame"].tolist() == list(range(3, 21))
    loopback = rows["sport"] == 9000
    assert int(np.count_nonzero(loopback)) == 3  # lo: 127.0.0.1:50908 -> :9000, server side


def test_snaplen_cut_segments_keep_their_ip_length_and_are_marked_truncated():
    rows, info = read_all(DATA / "real-eth-snap68.pcap")
    request = rows[rows["frame"] == 4][0]
    assert int(request["payload_len"]) == 1000  # from the IP total length, not the 68 captured bytes
    assert bool(request["truncated"])
    assert int(request["checksum"]) == CHECKSUM_UNKNOWN
    ack = rows[rows["frame"] == 3][0]  # 66 bytes: wholly inside the snaplen
    assert not ack["truncated"] and int(ack["checksum"]) == CHECKSUM_OK
    # IPv6 frames 39-48: 68 bytes hold only 14 of the 20-byte TCP header, so they are no segments.
    assert info.tcp_packets == 38 and info.non_tcp_packets == 10
    assert info.truncated_packets == int(np.count_nonzero(rows["truncated"]))


def test_ipv4_options_are_skipped_and_non_first_fragments_and_udp_count_as_non_tcp():
    rows, info = read_all(DATA / "ipv4-options.pcap")
    assert (info.packets, info.tcp_packets, info.non_tcp_packets) == (11, 9, 2)
    assert rows["frame"].tolist() == [1, 2, 3, 4, 7, 8, 9, 10, 11]
    assert rows["seq"][:4].tolist() == [1000, 2000, 1001, 1001]
    assert int(rows[3]["payload_len"]) == 300
    assert set(rows["checksum"].tolist()) == {CHECKSUM_OK}


def test_ipv6_extension_headers_and_ah_are_walked_and_a_non_first_fragment_is_skipped():
    rows, info = read_all(DATA / "ipv6-ext.pcap")
    assert (info.packets, info.tcp_packets) == (11, 10)
    assert 5 not in rows["frame"].tolist()  # fragment offset 10
    ah = rows[rows["frame"] == 4][0]
    assert (int(ah["seq"]), int(ah["ack"]), int(ah["checksum"])) == (7001, 9001, CHECKSUM_OK)
    data = rows[rows["frame"] == 6][0]
    assert (int(data["seq"]), int(data["payload_len"]), int(data["ip_version"])) == (7001, 300, 6)
    assert address_text(data["src"], 6) == "fd00::1"


def test_tcp_options_of_every_layout_are_parsed_and_malformed_lists_stop_cleanly():
    rows, _ = read_all(DATA / "tcp-options.pcap")
    syn, synack, sack2, ts_sack, bad_len, cut_md5, bad_sum, ece = rows
    assert (int(syn["wscale"]), int(syn["mss"]), bool(syn["sack_permitted"]), bool(syn["has_ts"])) == (14, 536, True, False)
    assert (int(synack["mss"]), int(synack["ts_val"]), int(synack["ts_ecr"])) == (9000, 7, 9)
    assert int(sack2["sack_count"]) == 2
    assert sack2["sack"][:2].tolist() == [[250, 300], [400, 500]]
    assert (int(ts_sack["ts_val"]), int(ts_sack["sack_count"])) == (11, 1)
    assert int(bad_len["mss"]) == -1 and not bad_len["has_ts"]  # MSS with length 1 ends the walk
    assert int(cut_md5["mss"]) == -1 and int(cut_md5["payload_len"]) == 0
    assert int(bad_sum["checksum"]) == CHECKSUM_BAD and int(bad_sum["payload_len"]) == 11
    assert int(ece["flags"]) == 0x050 and int(ece["ts_val"]) == 13


def test_sequence_numbers_are_raw_on_the_segment_rows():
    rows, _ = read_all(DATA / "seq-wrap.pcap")
    assert rows["seq"][:2].tolist() == [2**32 - 100, 2**32 - 50]
    assert int(rows[3]["seq"]) == 2**32 - 99


def offloaded_capture(tmp_path):
    """An outgoing segment captured before the NIC filled in its checksum (Linux CHECKSUM_PARTIAL)."""
    from scapy.all import IP, TCP, Ether, wrpcap

    from pcapcheck.capture.checksum import fold, pseudo_header_sum

    src, dst = np.zeros((1, 16), np.uint8), np.zeros((1, 16), np.uint8)
    src[0, 10:] = [0xFF, 0xFF, 198, 18, 0, 1]
    dst[0, 10:] = [0xFF, 0xFF, 198, 18, 0, 2]
    partial = int(fold(pseudo_header_sum(src, dst, np.array([True]), [20 + 5]))[0])
    packets = [
        Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / TCP(sport=1, dport=2, flags="PA", chksum=partial) / b"hello",
        Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / TCP(sport=1, dport=2, flags="PA", chksum=partial ^ 1) / b"hello",
    ]
    path = tmp_path / "offload.pcap"
    wrpcap(str(path), packets)
    return path


def test_offloaded_checksum_is_unknown_not_bad(tmp_path):
    rows, _ = read_all(offloaded_capture(tmp_path))
    assert rows["checksum"].tolist() == [CHECKSUM_UNKNOWN, CHECKSUM_BAD]


def pcapng_block(order: str, btype: int, body: bytes) -> bytes:
    body += b"\x00" * (-len(body) % 4)
    return struct.pack(order + "II", btype, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def write_big_endian_pcapng(path) -> int:
    """Every packet block type, in a big-endian section: EPB, SPB (no timestamp), obsolete PB.

    Returns the EPB's timestamp in microseconds (the PB's is 2 us later)."""
    frames = [f for _, _, f, _ in read_pcap_records(REFERENCE)[:3]]
    ts = 1_750_000_000_000_001  # microseconds
    data = pcapng_block(">", 0x0A0D0D0A, struct.pack(">IHHq", 0x1A2B3C4D, 1, 0, -1))
    data += pcapng_block(">", 1, struct.pack(">HHI", 1, 0, 0))
    data += pcapng_block(">", 6, struct.pack(">IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frames[0]), len(frames[0])) + frames[0])
    data += pcapng_block(">", 3, struct.pack(">I", len(frames[1])) + frames[1])
    data += pcapng_block(">", 2, struct.pack(">HHIIII", 0, 0, ts >> 32, (ts & 0xFFFFFFFF) + 2, len(frames[2]), len(frames[2])) + frames[2])
    path.write_bytes(data)
    return ts


def test_big_endian_pcapng_with_simple_and_obsolete_packet_blocks(tmp_path):
    ts = write_big_endian_pcapng(tmp_path / "be.pcapng")
    rows, info = read_all(tmp_path / "be.pcapng")
    assert info.packets == 3 and info.formats == ["pcapng"]
    assert rows["ts_ns"].tolist() == [ts * 1000, 0, (ts + 2) * 1000]
    assert differing_columns(rows, reference_rows()[:3], WIRE_COLUMNS + ("frame",)) == []


def read_pcap_records(path):
    return make_captures().read_pcap(path)[0]


def reference_rows():
    return read_all(REFERENCE)[0]


def test_sections_of_either_byte_order_follow_each_other_in_one_pcapng_file(tmp_path):
    little = (DATA / "multi-if.pcapng").read_bytes()
    big = tmp_path / "be.pcapng"
    write_big_endian_pcapng(big)
    both = tmp_path / "both.pcapng"
    both.write_bytes(little + big.read_bytes())
    rows, info = read_all(both)
    assert info.packets == 27 + 3
    assert rows["frame"].tolist() == list(range(1, 31))
    # interface 0 of the second section is Ethernet again, with its own (default) resolution
    assert rows["ts_ns"][27] == 1_750_000_000_000_001 * 1000
