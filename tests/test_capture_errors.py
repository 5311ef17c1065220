"""Bad input ends the run with exit code 2 and one clear line; damage at the end is only a warning."""

from __future__ import annotations

import gzip
import struct

import pytest
from typer.testing import CliRunner

from pcapcheck.capture import open_capture
from pcapcheck.cli import app
from pcapcheck.errors import CaptureError, ConfigError, PcapcheckError

from .test_capture_support import DATA

REAL = DATA / "real-eth.pcap"
runner = CliRunner()


def pcap_header(linktype: int = 1, snaplen: int = 262144) -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, linktype)


def flows(*paths) -> tuple[int, list[str]]:
    result = runner.invoke(app, ["flows", *map(str, paths)])
    return result.exit_code, [line for line in result.stderr.splitlines() if line.strip()]


def write(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.pcap", b"", "empty file"),
        ("text.pcap", b"GIF89a, not a capture", "not a pcap or pcapng file (magic 0x38464947)"),
        ("short.pcap", b"\xd4\xc3", "truncated file header (2 bytes)"),
        ("header.pcap", REAL.read_bytes()[:10], "truncated pcap file header (10 of 24 bytes)"),
        ("header.pcapng", b"\x0a\x0d\x0d\x0a\x1c\x00", "truncated pcapng section header (6 of 12 bytes)"),
        ("usb.pcap", pcap_header(linktype=189), "unsupported link type 189 (LINKTYPE_189)"),
        (
            "huge.pcap",
            pcap_header() + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 60) + b"\x00" * 60,
            "record 1: captured length 2147483647 is impossible (snaplen 262144)",
        ),
        (
            "over-snaplen.pcap",
            pcap_header(snaplen=96) + struct.pack("<IIII", 1, 0, 70000, 70000) + b"\x00" * 70000,
            "record 1: captured length 70000 is impossible (snaplen 96)",
        ),
        ("garbage.pcap.gz", b"\x1f\x8b\x08\x00garbage-that-is-not-deflate", "corrupt gzip data"),
    ],
)
def test_bad_capture_exits_2_with_one_line_naming_the_file(tmp_path, name, content, message):
    path = write(tmp_path, name, content)
    code, lines = flows(path)
    assert code == 2
    assert len(lines) == 1
    assert lines[0].startswith(f"pcapcheck: error: {path}: ")
    assert message in lines[0]


def test_missing_file_and_directory_exit_2(tmp_path):
    assert flows(tmp_path / "nope.pcap") == (2, [f"pcapcheck: error: {tmp_path / 'nope.pcap'}: no such file"])
    assert flows(tmp_path) == (2, [f"pcapcheck: error: {tmp_path}: is a directory, not a capture file"])


def test_a_bad_file_among_several_fails_before_anything_is_read(tmp_path):
    bad = write(tmp_path, "bad.pcap", b"nonsense")
    with pytest.raises(CaptureError, match="bad.pcap: not a pcap or pcapng file"):
        open_capture([str(REAL), str(bad)])


def test_pcapng_interface_with_unsupported_link_type_is_an_error(tmp_path):
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
    idb = struct.pack("<IIHHI", 1, 20, 147, 0, 0) + struct.pack("<I", 20)
    code, lines = flows(write(tmp_path, "user0.pcapng", shb + idb))
    assert code == 2 and "unsupported link type 147" in lines[0]


def test_corrupt_record_in_the_middle_raises_after_the_segments_before_it(tmp_path):
    data = REAL.read_bytes()
    # Walk 10 records, then make the 11th record's captured length absurd.
    pos = 24
    for _ in range(10):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    broken = data[: pos + 8] + struct.pack("<I", 0x00FFFFFF) + data[pos + 12 :]
    capture = open_capture(str(write(tmp_path, "broken.pcap", broken)))
    frames = []
    with pytest.raises(CaptureError, match=r"broken.pcap: record 11: captured length 16777215 is impossible"):
        for batch in capture.batches():
            frames.extend(batch["frame"].tolist())
    assert frames == list(range(1, 11))


def test_truncated_last_record_is_a_warning_and_the_packets_before_it_are_analysed():
    result = runner.invoke(app, ["flows", str(DATA / "cut-last-record.pcap")])
    assert result.exit_code == 0
    assert "6 TCP connections in 47 of 47 packets" in result.stdout
    assert result.stderr.strip().splitlines() == [
        f"pcapcheck: warning: {DATA / 'cut-last-record.pcap'}: last record (frame 48) is cut short "
        "(95 bytes); the packets before it were analysed"
    ]


def test_truncated_last_pcapng_block_is_a_warning(tmp_path):
    data = (DATA / "real-eth.pcapng").read_bytes()
    capture = open_capture(str(write(tmp_path, "cut.pcapng", data[:-30])))
    segments = sum(len(b) for b in capture.batches())
    assert segments == 47
    assert capture.info.warnings == [f"{tmp_path / 'cut.pcapng'}: last block (before frame 48) is cut short (90 bytes); the packets before it were analysed"]


def test_gzip_file_cut_short_is_a_warning_and_its_packets_are_read(tmp_path):
    data = gzip.compress(REAL.read_bytes())
    capture = open_capture(str(write(tmp_path, "cut.pcap.gz", data[: len(data) * 2 // 3])))
    segments = sum(len(b) for b in capture.batches())
    assert 0 < segments < 48
    assert any("compressed file ends early" in w for w in capture.info.warnings)


def test_unknown_reader_is_a_usage_error():
    result = runner.invoke(app, ["flows", "--reader", "scapy", str(REAL)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "pcapcheck: error: unknown reader 'scapy' (choose dpkt or tshark)"


def test_tshark_reader_without_tshark_says_so(monkeypatch):
    from pcapcheck.capture import tshark

    monkeypatch.setattr(tshark.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError, match="needs tshark"):
        open_capture(str(REAL), reader="tshark")


def test_every_capture_error_is_a_pcapcheck_error():
    assert issubclass(CaptureError, PcapcheckError)
