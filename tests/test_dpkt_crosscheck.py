"""dpkt, the library the product names for capture framing and decoding, agrees with our fast reader.

pcapcheck frames and decodes captures with its own vectorised numpy code (pcapcheck.capture), because
dpkt's per-packet objects are too slow for the throughput target.  dpkt is therefore the independent
reference: every capture we ship (samples/, samples/ring-buffer/, tests/data/) is read record by
record with dpkt's readers and dpkt's header classes, each TCP packet dpkt decodes is turned into the
columns of a ``SEGMENT_DTYPE`` row, and the rows must equal the fast reader's, field for field.

The only interpretation added on top of dpkt is what the segment columns themselves define:

* flags keep the nine bits RFC 9293 §3.1 names (dpkt's ``flags`` field);
* payload length comes from the IP header, not from what was captured (IPv4: total length - IHL -
  data offset, RFC 791 §3.1; IPv6: payload length - extension headers - data offset, RFC 8200 §3);
* options are read from ``dpkt.tcp.parse_opts`` up to End of Option List (RFC 9293 §3.1: "used at
  the end of all options"; parse_opts itself walks past it), and an option counts only with its
  defined length (MSS 4, WS 3, SACK-permitted 2, TS 10 octets; SACK 2 + 8n, RFC 2018 §3), the last
  occurrence winning, SACK blocks accumulated over SACK options up to ``MAX_SACK_BLOCKS``;
* the checksum is verified with ``dpkt.in_cksum`` over the pseudo-header (RFC 9293 §3.1): our
  CHECKSUM_OK must mean it verifies, and a segment captured short must be CHECKSUM_UNKNOWN.  Whether
  a failing checksum is "bad" or "offloaded" is our reader's own call, not dpkt's, and not compared.

A packet that carries no TCP header to read (not TCP, a non-first fragment, or a TCP header cut by
the snaplen) must be absent from both readers.  A packet dpkt cannot give the columns for is
skipped one by one with a named, counted reason, and each file's skips are written down in
``EXPECTED_SKIPS``, so a new one fails the test.  Today that is one packet: the last record of
tests/data/cut-last-record.pcap, cut by the end of the file (dpkt yields it partial, our reader
drops it with a warning).  One file is excluded whole (``EXCLUDED``): tests/data/multi-if.pcapng,
whose interfaces have three link types while dpkt's pcapng reader applies the first to all.
"""

from __future__ import annotations

import gzip
import math
import struct
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dpkt
import numpy as np
import pytest

from pcapcheck.capture import linktypes
from pcapcheck.segments import CHECKSUM_OK, CHECKSUM_UNKNOWN, MAX_SACK_BLOCKS

from .test_capture_support import DATA, SAMPLES, read_all

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

ROOT = SAMPLES.parent

# Files dpkt cannot read as a whole, and why.  Every other capture we ship is cross-checked.
EXCLUDED = {
    "tests/data/multi-if.pcapng": (
        "three interfaces with three link types (EN10MB, RAW, IPV4): dpkt.pcapng.Reader decodes every "
        "packet with the first interface's link type and time resolution"
    ),
}

CUT_RECORD = "record cut by the end of the file: dpkt yields it partial, our reader drops it with a warning"

# Per-packet skips we expect, per file: {reason: count}.  Anything not listed here must be zero.
EXPECTED_SKIPS: dict[str, dict[str, int]] = {
    "tests/data/cut-last-record.pcap": {CUT_RECORD: 1},
}

CAPTURES = sorted(
    p
    for p in [*SAMPLES.rglob("*"), *DATA.iterdir()]
    if p.is_file() and ".pcap" in p.name and not p.name.startswith(".")  # dot files: being written
)

COMPARED = (
    "file_frame",
    "ts_ns",
    "ip_version",
    "src",
    "dst",
    "ttl",
    "sport",
    "dport",
    "seq",
    "ack",
    "flags",
    "window",
    "payload_len",
    "truncated",
    "mss",
    "wscale",
    "sack_permitted",
    "has_ts",
    "ts_val",
    "ts_ecr",
    "sack_count",
    "sack",
)

IPV4_MAPPED_PREFIX = b"\x00" * 10 + b"\xff\xff"


class Skip(Exception):
    """dpkt cannot give this packet's columns; the reason names why."""


@dataclass(slots=True)
class Reference:
    """What dpkt reads from one capture file."""

    records: int  # every whole record dpkt yields, TCP or not
    rows: dict[int, dict]  # file_frame -> expected columns, for each TCP packet dpkt decodes
    skips: dict[int, str]  # file_frame -> reason, for packets dpkt could not give columns for
    datalink: int
    pcapng: bool


# ---- dpkt's view ---------------------------------------------------------------------------------


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _network_layer(datalink: int, buf: bytes):
    """The dpkt IP/IP6 object inside one record, or None when the record carries no IP packet."""
    if datalink == 1:  # EN10MB; dpkt's Ethernet strips 802.1Q / QinQ tags itself
        packet = dpkt.ethernet.Ethernet(buf).data
    elif datalink == 113:
        packet = dpkt.sll.SLL(buf).data
    elif datalink == 276:
        packet = dpkt.sll2.SLL2(buf).data
    elif datalink in (0, 108):  # dpkt's Loopback accepts the family in either byte order
        packet = dpkt.loopback.Loopback(buf).data
    elif datalink in (101, 228, 229):
        version = buf[0] >> 4 if buf else 0
        packet = dpkt.ip.IP(buf) if version == 4 else dpkt.ip6.IP6(buf) if version == 6 else None
    else:
        raise AssertionError(f"link type {datalink} has no dpkt decoder in this test")
    return packet if isinstance(packet, (dpkt.ip.IP, dpkt.ip6.IP6)) else None


def _options(opts: bytes) -> dict:
    columns = dict(
        mss=-1, wscale=-1, sack_permitted=False, has_ts=False, ts_val=0, ts_ecr=0, sack_count=0,
        sack=np.zeros((MAX_SACK_BLOCKS, 2), dtype=np.uint32),
    )
    blocks: list[tuple[int, int]] = []
    for option in dpkt.tcp.parse_opts(opts):
        if option is None or option[0] == dpkt.tcp.TCP_OPT_EOL:
            break
        kind, data = option
        if kind == dpkt.tcp.TCP_OPT_MSS and len(data) == 2:
            columns["mss"] = struct.unpack(">H", data)[0]
        elif kind == dpkt.tcp.TCP_OPT_WSCALE and len(data) == 1:
            columns["wscale"] = data[0]
        elif kind == dpkt.tcp.TCP_OPT_SACKOK and len(data) == 0:
            columns["sack_permitted"] = True
        elif kind == dpkt.tcp.TCP_OPT_TIMESTAMP and len(data) == 8:
            columns["has_ts"] = True
            columns["ts_val"], columns["ts_ecr"] = struct.unpack(">II", data)
        elif kind == dpkt.tcp.TCP_OPT_SACK and data and len(data) % 8 == 0:
            blocks.extend(struct.unpack(">II", data[i : i + 8]) for i in range(0, len(data), 8))
    blocks = blocks[:MAX_SACK_BLOCKS]
    columns["sack_count"] = len(blocks)
    for i, edges in enumerate(blocks):
        columns["sack"][i] = edges
    return columns


def _checksum_verifies(ip, tcp_bytes: bytes) -> bool:
    """RFC 9293 §3.1: the one's-complement sum over pseudo-header and segment is all ones."""
    if isinstance(ip, dpkt.ip.IP):
        pseudo = struct.pack(">4s4sxBH", ip.src, ip.dst, dpkt.ip.IP_PROTO_TCP, len(tcp_bytes))
    else:
        pseudo = struct.pack(">16s16sI3xB", ip.src, ip.dst, len(tcp_bytes), dpkt.ip.IP_PROTO_TCP)
    return dpkt.in_cksum(pseudo + tcp_bytes) == 0


def _header_not_captured(tcp) -> bool:
    """The snaplen cut the packet inside the fixed TCP header: neither reader has a segment to show."""
    return isinstance(tcp, bytes) and len(tcp) < dpkt.tcp.TCP.__hdr_len__


def _segment(ip, file_frame: int, ts_ns: int, ts_slack_ns: int) -> dict | None:
    """Expected columns for one IP packet, None when it is not TCP; raises Skip when dpkt cannot say."""
    tcp = ip.data
    if isinstance(ip, dpkt.ip.IP):
        if ip.p != dpkt.ip.IP_PROTO_TCP or ip.offset != 0:
            return None  # not TCP, or a non-first fragment (no TCP header in it)
        if _header_not_captured(tcp):
            return None
        if not isinstance(tcp, dpkt.tcp.TCP):
            raise Skip("IPv4 TCP header not decoded by dpkt")
        if ip.len == 0:
            raise Skip("IPv4 total length 0 (TSO): dpkt does not expose the wire length")
        tcp_len = ip.len - ip.hl * 4
        version, src, dst, ttl = 4, IPV4_MAPPED_PREFIX + ip.src, IPV4_MAPPED_PREFIX + ip.dst, ip.ttl
        first_fragment = bool(ip.mf)
    else:
        if getattr(ip, "p", ip.nxt) != dpkt.ip.IP_PROTO_TCP:
            return None
        if any(isinstance(ext, dpkt.ip6.IP6FragmentHeader) and ext.frag_off for ext in ip.all_extension_headers):
            return None  # a non-first fragment: no TCP header in it (RFC 8200 §4.5)
        if _header_not_captured(tcp):
            return None
        if not isinstance(tcp, dpkt.tcp.TCP):
            raise Skip("IPv6 TCP header not decoded by dpkt")
        if ip.plen == 0:
            raise Skip("IPv6 payload length 0 (jumbogram/TSO): dpkt does not expose the wire length")
        tcp_len = ip.plen - sum(ext.length for ext in ip.all_extension_headers)
        version, src, dst, ttl = 6, ip.src, ip.dst, ip.hlim
        first_fragment = False
    tcp_bytes = bytes(tcp)
    truncated = len(tcp_bytes) < tcp_len
    row = dict(
        file_frame=file_frame,
        ts_ns=ts_ns,
        ts_slack_ns=ts_slack_ns,
        ip_version=version,
        src=np.frombuffer(src, dtype=np.uint8),
        dst=np.frombuffer(dst, dtype=np.uint8),
        ttl=ttl,
        sport=tcp.sport,
        dport=tcp.dport,
        seq=tcp.seq,
        ack=tcp.ack,
        flags=tcp.flags,
        window=tcp.win,
        payload_len=tcp_len - tcp.off * 4,
        truncated=truncated,
        **_options(tcp.opts),
    )
    if truncated or first_fragment:
        row["checksum_verifies"] = None  # cannot be known from the capture
    else:
        row["checksum_verifies"] = _checksum_verifies(ip, tcp_bytes)
    return row


def _timestamp_ns(ts, pcapng: bool) -> tuple[int, int]:
    """(nanoseconds since the epoch, how far dpkt's value may be from the file's) for one record."""
    if isinstance(ts, Decimal):  # nanosecond pcap: dpkt keeps every digit
        return int(ts * 1_000_000_000), 0
    if not pcapng:  # microsecond pcap: float seconds still hold every microsecond
        return round(ts * 1e6) * 1000, 0
    # pcapng: dpkt computes ticks / divisor in floats, rounding twice (the tick count, then the
    # quotient), each by at most half a float step; Decimal(float) itself is exact.
    slack = math.ceil((math.ulp(ts * 1e9) + math.ulp(ts) * 1e9) / 2)
    return int((Decimal(ts) * 1_000_000_000).to_integral_value()), slack


def read_with_dpkt(path: Path) -> Reference:
    with _open_bytes(path) as f:
        head = f.read(dpkt.pcap.FileHdr.__hdr_len__)
        pcapng = head[:4] == PCAPNG_MAGIC
        # dpkt.pcap.Reader yields a record cut by the end of the file as it is: catch it by the
        # record header's caplen (read with dpkt's own header class) to compare like for like.
        record_header = None if pcapng else dpkt.pcap.MAGIC_TO_PKT_HDR[dpkt.pcap.FileHdr(head).magic]
        f.seek(0)
        reader = dpkt.pcapng.Reader(f) if pcapng else dpkt.pcap.Reader(f)
        datalink = reader.datalink()
        rows, skips, records, cut = {}, {}, 0, 0
        records_iter = iter(reader)
        while True:
            start = f.tell()
            try:
                ts, buf = next(records_iter)
            except StopIteration:
                break
            records += 1
            file_frame = records
            if record_header is not None:
                end = f.tell()
                f.seek(start)
                caplen = record_header(f.read(record_header.__hdr_len__)).caplen
                f.seek(end)
                if len(buf) < caplen:
                    skips[file_frame] = CUT_RECORD
                    cut += 1
                    continue
            try:
                ip = _network_layer(datalink, buf)
                row = _segment(ip, file_frame, *_timestamp_ns(ts, pcapng)) if ip is not None else None
            except (dpkt.UnpackError, IndexError) as err:
                skips[file_frame] = f"dpkt raised {type(err).__name__} on the link or IP header"
                continue
            except Skip as skip:
                skips[file_frame] = str(skip)
                continue
            if row is not None:
                rows[file_frame] = row
    return Reference(records - cut, rows, skips, datalink, pcapng)


# ---- the comparison ------------------------------------------------------------------------------


def _differences(ours: np.void, expected: dict) -> list[str]:
    found = []
    for column in COMPARED:
        mine, theirs = ours[column], expected[column]
        if column == "ts_ns":
            same = abs(int(mine) - int(theirs)) <= expected["ts_slack_ns"]
        else:
            same = np.array_equal(np.asarray(mine), np.asarray(theirs))
        if not same:
            found.append(f"{column}: ours {np.asarray(mine).tolist()} dpkt {np.asarray(theirs).tolist()}")
    verifies = expected["checksum_verifies"]
    if verifies is None and ours["checksum"] != CHECKSUM_UNKNOWN:
        found.append(f"checksum: ours {int(ours['checksum'])} for a segment that cannot be checked")
    if verifies is not None and (ours["checksum"] == CHECKSUM_OK) != verifies:
        found.append(f"checksum: ours {int(ours['checksum'])}, dpkt's in_cksum verifies={verifies}")
    return found


def _label(path: Path) -> str:
    """The capture's path from the project root: samples/midstream.pcap and tests/data/midstream.pcap differ."""
    return path.relative_to(ROOT).as_posix()


CHECKED = [p for p in CAPTURES if _label(p) not in EXCLUDED]


def test_exclusions_and_expected_skips_name_captures_we_ship():
    labels = {_label(p) for p in CAPTURES}
    assert set(EXCLUDED) <= labels
    assert set(EXPECTED_SKIPS) <= labels - set(EXCLUDED)


def test_every_kind_of_capture_we_ship_is_cross_checked():
    checked = {_label(p) for p in CHECKED}
    assert any(label.startswith("samples/ring-buffer/") for label in checked)
    assert any(label.endswith(".pcapng") for label in checked)
    assert any(label.endswith(".gz") for label in checked)


def test_the_excluded_pcapng_mixes_link_types_dpkt_would_read_as_the_first_one():
    path = ROOT / "tests/data/multi-if.pcapng"
    with open(path, "rb") as f:
        dpkt_link_type = linktypes.name(dpkt.pcapng.Reader(f).datalink())
    _, info = read_all(path)
    assert info.link_types[0] == dpkt_link_type
    assert len(info.link_types) == 3


@pytest.mark.parametrize("path", CHECKED, ids=_label)
def test_dpkt_decodes_every_tcp_packet_as_our_reader_does(path: Path):
    reference = read_with_dpkt(path)
    rows, info = read_all(path)
    assert len(rows) > 0

    # dpkt's pcapng reader knows only the first interface: fine only while all share its link type.
    assert info.link_types == [linktypes.name(reference.datalink)]

    skip_reasons = Counter(reference.skips.values())
    assert dict(skip_reasons) == EXPECTED_SKIPS.get(_label(path), {})

    ours = {int(r["file_frame"]): r for r in rows}
    skipped = set(reference.skips)
    assert set(ours) - skipped == set(reference.rows), "the two readers found TCP in different frames"

    mismatches = []
    for file_frame, expected in reference.rows.items():
        for difference in _differences(ours[file_frame], expected):
            mismatches.append(f"frame {file_frame}: {difference}")
    assert mismatches == []
    assert info.packets == reference.records
    if CUT_RECORD in skip_reasons:
        assert info.warnings, "a record cut by the end of the file must be reported"
