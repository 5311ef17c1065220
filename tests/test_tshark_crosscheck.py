"""Both readers decode every test capture and every sample to identical segments.

tshark is the reference decoder the field trusts; if the fast reader disagrees on any column of
any segment (seq, ack, flags, options, checksum verdict, frame numbers, timestamps), one of them
is wrong.  tshark costs half a second to start, so the captures are checked concatenated into one
pcapng by mergecap (one interface per input file, so every link type is still there); the
formats themselves are checked file by file in test_capture_formats.py, and a few files whose
framing matters are cross-checked on their own here.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from .test_capture_support import DATA, SAMPLES, differing_columns, read_all

pytestmark = [
    pytest.mark.tshark,
    pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not on PATH"),
]

RING = sorted(DATA.glob("ring_*.pcap"))
WHOLE = sorted(p for p in DATA.iterdir() if ".pcap" in p.name and p.name not in ("cut-last-record.pcap",))
SAMPLE_FILES = sorted(SAMPLES.glob("*.pcap*"))


def concatenated(paths, out) -> str:
    subprocess.run(["mergecap", "-a", "-F", "pcapng", "-w", str(out), *map(str, paths)], check=True, capture_output=True)
    return str(out)


def assert_readers_agree(*paths) -> None:
    fast, fast_info = read_all(*paths)
    reference, tshark_info = read_all(*paths, reader="tshark")
    assert len(fast) > 0
    assert differing_columns(fast, reference) == []
    assert fast_info.packets == tshark_info.packets
    assert bool(fast_info.warnings) == bool(tshark_info.warnings)


@pytest.mark.skipif(shutil.which("mergecap") is None, reason="mergecap not on PATH")
def test_readers_agree_on_every_test_capture(tmp_path):
    assert_readers_agree(concatenated(WHOLE, tmp_path / "all-data.pcapng"))


@pytest.mark.skipif(shutil.which("mergecap") is None or not SAMPLE_FILES, reason="mergecap or samples missing")
def test_readers_agree_on_every_sample(tmp_path):
    assert_readers_agree(concatenated(SAMPLE_FILES, tmp_path / "all-samples.pcapng"))


@pytest.mark.parametrize("name", ["real-eth.pcap", "multi-if.pcapng", "cut-last-record.pcap"])
def test_readers_agree_file_by_file(name):
    assert_readers_agree(DATA / name)


def test_readers_agree_on_a_ring_buffer_merged_into_one_timeline():
    assert_readers_agree(*RING[:2])


def test_readers_agree_that_an_offloaded_checksum_is_unknown(tmp_path):
    from .test_capture_formats import offloaded_capture

    assert_readers_agree(offloaded_capture(tmp_path))


def test_tshark_reader_reports_the_same_capture_facts():
    _, fast = read_all(DATA / "multi-if.pcapng")
    _, reference = read_all(DATA / "multi-if.pcapng", reader="tshark")
    assert reference.link_types == fast.link_types == ["EN10MB", "RAW", "IPV4"]
    assert (reference.packets, reference.tcp_packets, reference.formats) == (fast.packets, fast.tcp_packets, fast.formats)
