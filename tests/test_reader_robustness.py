"""Damaged captures never crash the reader: they give segments, warnings, or one CaptureError."""

from __future__ import annotations

import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapcheck.capture import open_capture
from pcapcheck.capture.decode import decode
from pcapcheck.capture.frames import Frames
from pcapcheck.capture.tcp_options import parse_options
from pcapcheck.connections import rebuild
from pcapcheck.errors import CaptureError

from .test_capture_support import DATA

SOURCES = {
    name: (DATA / name).read_bytes()
    for name in ("real-eth.pcap", "real-eth.pcapng", "multi-if.pcapng", "ipv6-ext.pcap", "tcp-options.pcap", "vlan.pcap")
}


def read_everything(path) -> None:
    """Run reader and rebuilder to the end; only CaptureError may come out."""
    try:
        capture = open_capture(str(path))
        conns = list(rebuild(capture.batches()))
    except CaptureError as err:
        assert "\n" not in str(err)
        return
    for conn in conns:
        for seg in conn.segments():
            assert seg.length >= 0
    assert capture.info.packets >= capture.info.tcp_packets


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(SOURCES)),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_random_byte_damage_and_truncation_never_crash(tmp_path, name, edits, cut):
    data = bytearray(SOURCES[name])
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    path = tmp_path / f"damaged-{name}"
    path.write_bytes(bytes(data))
    read_everything(path)


def packet_with_options(options: bytes) -> Frames:
    """One raw-IPv4 record carrying a TCP header whose option area is ``options`` (padded to 4)."""
    options = options + b"\x00" * (-len(options) % 4)
    tcp = struct.pack("!HHIIBBHHH", 1000, 80, 1, 2, (5 + len(options) // 4) << 4, 0x10, 100, 0, 0) + options
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, bytes(4), bytes(4)) + tcp
    buf = np.frombuffer(ip, dtype=np.uint8)
    one = lambda v: np.array([v], dtype=np.int64)
    return Frames(buf, one(0), one(len(ip)), one(len(ip)), one(0), np.array([101], dtype=np.int32), 1)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_vectorised_option_walk_agrees_with_the_per_packet_parser(options):
    (row,) = decode(packet_with_options(options), 0).segments
    expected = parse_options(options + b"\x00" * (-len(options) % 4))
    assert_options_decoded(row, expected)


def assert_options_decoded(row, expected) -> None:
    """The decoded option columns of ``row`` are what the per-packet parser found."""
    assert int(row["mss"]) == expected.mss
    assert int(row["wscale"]) == expected.wscale
    assert bool(row["sack_permitted"]) == expected.sack_permitted
    assert bool(row["has_ts"]) == expected.has_ts
    if expected.has_ts:
        assert (int(row["ts_val"]), int(row["ts_ecr"])) == (expected.ts_val, expected.ts_ecr)
    assert [tuple(b) for b in row["sack"][: int(row["sack_count"])].tolist()] == expected.sack


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    damaged_first=st.booleans(),
)
def test_damage_in_one_file_of_a_ring_buffer_never_crashes_the_merge(tmp_path, edits, cut, damaged_first):
    ring = sorted(DATA.glob("ring_*.pcap"))[:2]
    data = bytearray(ring[0].read_bytes() if damaged_first else ring[1].read_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(bytes(data))
    paths = [damaged, ring[1]] if damaged_first else [ring[0], damaged]
    try:
        capture = open_capture([str(p) for p in paths])
        frames = [f for batch in capture.batches() for f in batch["frame"].tolist()]
    except CaptureError as err:
        assert "\n" not in str(err)
        return
    assert frames == sorted(frames) and len(set(frames)) == len(frames)
