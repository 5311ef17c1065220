"""Packets the capturing host says it dropped (pcapng Interface Statistics Blocks) reach CaptureInfo.

tests/data/real-2if.pcapng was written by dumpcap on two interfaces; it ends with one Interface
Statistics Block per interface, both reporting no drops.  The tests append statistics blocks the
way a capture that lost packets ends (draft-ietf-opsawg-pcapng §4.6: the counts run from the start
of the capture, so a later block supersedes an earlier one of the same interface).
"""

from __future__ import annotations

import struct
from pathlib import Path

from pcapcheck.capture import open_capture

from .test_capture_support import DATA

ISB = 5
ISB_IFDROP, ISB_OSDROP = 5, 7
DROP_WARNING = "packets dropped by the interface: verdicts on affected connections may be capture artefacts"


def statistics_block(interface: int, **counts: int) -> bytes:
    """A little-endian Interface Statistics Block with isb_ifdrop / isb_osdrop options."""
    codes = {"ifdrop": ISB_IFDROP, "osdrop": ISB_OSDROP}
    options = b"".join(struct.pack("<HHQ", codes[name], 8, value) for name, value in counts.items())
    options += struct.pack("<HH", 0, 0)  # opt_endofopt
    body = struct.pack("<III", interface, 0, 0) + options
    length = 12 + len(body)
    return struct.pack("<II", ISB, length) + body + struct.pack("<I", length)


def read(tmp_path: Path, *blocks: bytes):
    path = tmp_path / "stats.pcapng"
    path.write_bytes((DATA / "real-2if.pcapng").read_bytes() + b"".join(blocks))
    capture = open_capture(str(path))
    for _ in capture.batches():
        pass
    return capture.info


def test_dumpcap_statistics_without_drops_report_zero_and_no_warning():
    capture = open_capture(str(DATA / "real-2if.pcapng"))
    list(capture.batches())
    assert capture.info.dropped_by_interface == 0
    assert not any(DROP_WARNING in w for w in capture.info.warnings)


def test_interface_and_os_drops_are_counted_and_warned_about(tmp_path):
    info = read(tmp_path, statistics_block(0, ifdrop=5, osdrop=2))
    assert info.dropped_by_interface == 7
    assert [w for w in info.warnings if DROP_WARNING in w] == [
        f"{tmp_path / 'stats.pcapng'}: capture reports 7 {DROP_WARNING}"
    ]


def test_a_later_statistics_block_supersedes_the_earlier_one_of_its_interface(tmp_path):
    info = read(tmp_path, statistics_block(0, ifdrop=3), statistics_block(1, ifdrop=1), statistics_block(0, ifdrop=4))
    assert info.dropped_by_interface == 4 + 1


def test_pcap_files_report_no_drop_statistics():
    capture = open_capture(str(DATA / "real-eth.pcap"))
    list(capture.batches())
    assert capture.info.dropped_by_interface is None
