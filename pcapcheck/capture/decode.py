"""Vectorised decode of a chunk of frames: link layer -> IPv4/IPv6 -> TCP, into SEGMENT_DTYPE rows.

Every header field is read for all records of the chunk at once with numpy gathers at computed
offsets; TCP option lists are walked
for all packets in lockstep, one option per round.
A record that is not TCP (or whose headers were not captured far enough to know) is counted and
skipped.  Layouts follow the header diagrams: Ethernet + 802.1Q/802.1ad tags, Linux cooked v1/v2,
BSD loopback, raw IP; IPv4 (RFC 791 §3.1), IPv6 (RFC 8200 §3, §4), TCP (RFC 9293 §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..segments import CHECKSUM_BAD, CHECKSUM_OK, CHECKSUM_UNKNOWN, MAX_SACK_BLOCKS, empty_batch
from . import linktypes
from .checksum import offloaded
from .frames import Frames
from .source import SLACK

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
VLAN_ETHERTYPES = (0x8100, 0x88A8, 0x9100)  # 802.1Q, 802.1ad (QinQ outer), legacy QinQ
MAX_VLAN_TAGS = 4
# BSD address families for IPv6 differ by OS: Linux 10, NetBSD/OpenBSD 24, FreeBSD 28, Darwin 30.
AF_INET = 2
AF_INET6 = (10, 24, 28, 30)

IPPROTO_TCP = 6
# IPv6 extension headers pcapcheck walks over (RFC 8200 §4; AH RFC 4302 §2.2).
HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTS, AH = 0, 43, 44, 60, 51
IPV6_EXT = (HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTS, AH)
MAX_IPV6_EXT = 8


@dataclass(slots=True)
class Decoded:
    """One chunk decoded: the TCP segments, and the timestamp of every record (TCP or not)."""

    segments: np.ndarray  # SEGMENT_DTYPE; frame == file_frame until the merge renumbers
    record_ts: np.ndarray  # int64 per record, in file order
    first_file_frame: int

    @property
    def records(self) -> int:
        return len(self.record_ts)


# Fixed-size headers are copied out of the chunk as blocks of this many bytes at most.
BLOCK = SLACK
TCP_BLOCK = 40  # a TCP header with 20 option bytes: the Linux SYN layout
IP_BLOCK = 40  # an IPv6 header, or an IPv4 header and what follows
_TCP_FIXED = [
    ("sport", ">u2"), ("dport", ">u2"), ("seq", ">u4"), ("ack", ">u4"), ("offset", "u1"), ("flags", "u1"),
    ("window", ">u2"), ("checksum", ">u2"), ("urgent", ">u2"),
]  # fmt: skip
# The two option layouts Linux sends, read off the same block: NOP NOP TS on every segment after
# the handshake, MSS SACK-permitted TS NOP WS on SYN and SYN-ACK.
TCP_HEADER = np.dtype(_TCP_FIXED + [("nop_nop_ts", ">u4"), ("ts_val", ">u4"), ("ts_ecr", ">u4"), ("rest", "V8")])
TCP_SYN_HEADER = np.dtype(
    _TCP_FIXED + [("mss_kind", ">u2"), ("mss", ">u2"), ("sack_ts", ">u4"), ("ts_val", ">u4"), ("ts_ecr", ">u4"),
                  ("nop_ws", ">u4")]
)  # fmt: skip
NOP_NOP_TS = 0x0101080A
MSS_KIND = 0x0204  # kind 2, length 4
SACK_PERMITTED_TS = 0x0402080A  # kind 4 length 2, then kind 8 length 10
NOP_WS = 0x010303  # NOP, then kind 3 length 3 (the shift is the byte after)


class _Bytes:
    """Big-endian gathers from one buffer; positions past the end read as the last byte (masked later).

    BLOCK bytes of that last byte follow the buffer (in the reader's spare bytes, or a copy), so
    fixed-size blocks (a header per record) come out of a sliding-window view in one gather, with
    the same values the byte-by-byte reads give.
    """

    def __init__(self, frames: Frames):
        buf = frames.buf
        n = len(buf)
        if frames.padded is not None and len(frames.padded) >= n + BLOCK:
            padded = frames.padded[: n + BLOCK]
        else:
            padded = np.empty(n + BLOCK, dtype=np.uint8)
            padded[:n] = buf
        padded[n:] = buf[-1] if n else 0
        self.buf = padded

    def u8(self, pos: np.ndarray) -> np.ndarray:
        return np.take(self.buf, pos, mode="clip").astype(np.int64)

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)

    def u32le(self, pos: np.ndarray) -> np.ndarray:
        return self.u8(pos) | (self.u8(pos + 1) << 8) | (self.u8(pos + 2) << 16) | (self.u8(pos + 3) << 24)

    def block(self, pos: np.ndarray, width: int) -> np.ndarray:
        """(len(pos), width) bytes starting at each position (width <= BLOCK)."""
        windows = sliding_window_view(self.buf, width)
        # A start clipped to the last window still lies at or past the end: all its bytes are the
        # last byte, as a byte-by-byte read there gives.
        return windows[np.clip(pos, 0, len(windows) - 1)]


def decode(frames: Frames, file_index: int) -> Decoded:
    n = len(frames)
    segments = _decode_tcp(frames, file_index) if n else empty_batch(0)
    return Decoded(segments=segments, record_ts=frames.ts_ns, first_file_frame=frames.first_file_frame)


def _link_layer(b: _Bytes, frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """(ethertype, offset of the network header) per record; ethertype 0 = not IP."""
    off = frames.offset
    ethertype = np.zeros(len(off), dtype=np.int64)
    l3 = off.copy()
    first = frames.linktype[0]
    # One link type per file is the rule: then every record is selected, without a mask.
    single = bool((frames.linktype == first).all())
    for linktype in [first] if single else np.unique(frames.linktype).tolist():
        m = slice(None) if single else frames.linktype == linktype
        o = off[m]
        if linktype == linktypes.EN10MB:
            ethertype[m] = b.u16(o + 12)
            l3[m] = o + 14
        elif linktype == linktypes.LINUX_SLL:
            ethertype[m] = b.u16(o + 14)  # protocol type, after 2+2+2+8 bytes of metadata
            l3[m] = o + 16
        elif linktype == linktypes.LINUX_SLL2:
            ethertype[m] = b.u16(o)  # protocol type comes first in v2
            l3[m] = o + 20
        elif linktype in (linktypes.NULL, linktypes.LOOP):
            be = b.u32(o)
            # NULL stores the family in the writer's byte order: accept either (LOOP is always BE).
            le = b.u32le(o) if linktype == linktypes.NULL else be
            v4 = (be == AF_INET) | (le == AF_INET)
            v6 = np.isin(be, AF_INET6) | np.isin(le, AF_INET6)
            ethertype[m] = np.where(v4, ETHERTYPE_IPV4, np.where(v6, ETHERTYPE_IPV6, 0))
            l3[m] = o + 4
        elif linktype in (linktypes.RAW, linktypes.IPV4, linktypes.IPV6):
            version = b.u8(o) >> 4
            ethertype[m] = np.where(version == 4, ETHERTYPE_IPV4, np.where(version == 6, ETHERTYPE_IPV6, 0))
            l3[m] = o
    for _ in range(MAX_VLAN_TAGS):
        tagged = np.isin(ethertype, VLAN_ETHERTYPES)
        if not tagged.any():
            break
        # 802.1Q tag: 2 bytes TCI, then the inner ethertype.
        ethertype[tagged] = b.u16(l3[tagged] + 2)
        l3[tagged] += 4
    return ethertype, l3


def _decode_tcp(frames: Frames, file_index: int) -> np.ndarray:
    b = _Bytes(frames)
    end_all = frames.offset + frames.caplen  # end of each record's captured bytes
    ethertype, l3_all = _link_layer(b, frames)
    version = b.u8(l3_all) >> 4
    is4 = (ethertype == ETHERTYPE_IPV4) & (version == 4) & (l3_all + 20 <= end_all)
    is6 = (ethertype == ETHERTYPE_IPV6) & (version == 6) & (l3_all + 40 <= end_all)
    rec = np.flatnonzero(is4 | is6)
    if len(rec) == 0:
        return empty_batch(0)
    l3 = l3_all[rec]
    end = end_all[rec]
    wire_left = frames.origlen[rec] - (l3 - frames.offset[rec])  # IP bytes on the wire per the record
    v4 = is4[rec]
    ip = b.block(l3, IP_BLOCK)  # every row has its IP header captured: 20 bytes (IPv4) or 40 (IPv6)
    ip_words = ip.view(">u2")

    # IPv4 (RFC 791 §3.1)
    ihl = (ip[:, 0] & 0x0F).astype(np.int64) * 4
    total4 = ip_words[:, 1].astype(np.int64)
    total4 = np.where(total4 == 0, wire_left, total4)  # 0 = TSO on the sending host: trust the wire length
    frag = ip_words[:, 3]
    more_fragments = v4 & ((frag & 0x2000) != 0)
    ok4 = (ihl >= 20) & ((frag & 0x1FFF) == 0) & (ip[:, 9] == IPPROTO_TCP) & (total4 >= ihl)

    # IPv6 (RFC 8200 §3) and its extension headers (§4)
    plen = ip_words[:, 2].astype(np.int64)
    total6 = np.where(plen == 0, wire_left, plen + 40)  # 0 = jumbogram: trust the wire length
    nh = ip[:, 6].astype(np.int64)
    ip_len = np.where(v4, total4, total6)
    l4 = np.where(v4, l3 + ihl, l3 + 40)
    alive = ~v4
    for _ in range(MAX_IPV6_EXT):
        ext = alive & np.isin(nh, IPV6_EXT)
        if not ext.any():
            break
        p = l4[ext]
        kind = nh[ext]
        hdr_len = np.where(
            kind == FRAGMENT, 8, np.where(kind == AH, (b.u8(p + 1) + 2) * 4, (b.u8(p + 1) + 1) * 8)
        )
        captured = p + 8 <= end[ext]
        non_first_fragment = (kind == FRAGMENT) & ((b.u16(p + 2) >> 3) != 0)
        nh[ext] = np.where(captured & ~non_first_fragment, b.u8(p), -1)
        l4[ext] = p + hdr_len
    ok6 = ~v4 & (nh == IPPROTO_TCP)

    ip_end = l3 + ip_len
    tcp = np.where(v4, ok4, ok6) & (l4 + 20 <= end) & (l4 + 20 <= ip_end)
    header = b.block(l4, TCP_BLOCK)
    doff = (header[:, 12] >> 4).astype(np.int64) * 4
    tcp &= (doff >= 20) & (l4 + doff <= ip_end)
    keep = np.flatnonzero(tcp)
    if len(keep) == 0:
        return empty_batch(0)
    if len(keep) < len(rec):
        rec, l3, l4, end, ip_end, doff = rec[keep], l3[keep], l4[keep], end[keep], ip_end[keep], doff[keep]
        v4, more_fragments, ip, header = v4[keep], more_fragments[keep], ip[keep], header[keep]
    fields = header.view(TCP_HEADER)[:, 0]

    out = empty_batch(len(rec))
    out["file_index"] = file_index
    out["file_frame"] = frames.first_file_frame + rec
    out["frame"] = out["file_frame"]
    out["ts_ns"] = frames.ts_ns[rec]
    out["ip_version"] = np.where(v4, 4, 6)
    _addresses(out, ip, v4)
    out["ttl"] = np.where(v4, ip[:, 8], ip[:, 7])
    out["sport"] = fields["sport"]
    out["dport"] = fields["dport"]
    out["seq"] = fields["seq"]
    out["ack"] = fields["ack"]
    out["flags"] = ((fields["offset"] & 0x01).astype(np.uint16) << 8) | fields["flags"]
    out["window"] = fields["window"]
    out["payload_len"] = ip_end - l4 - doff
    truncated = end < ip_end
    out["truncated"] = truncated
    _options(b, out, header, l4, doff, end)
    # A first fragment holds only part of the segment: its checksum cannot be checked.
    checkable = np.flatnonzero(~truncated & ~more_fragments)
    if len(checkable):
        out["checksum"][checkable] = _checksum_status(
            b.buf, ip[checkable], v4[checkable], l4[checkable], ip_end[checkable], fields["checksum"][checkable]
        )
    return out


def _addresses(out: np.ndarray, ip: np.ndarray, v4: np.ndarray) -> None:
    """Source and destination from each row's IP header block (16 bytes, see segments.py)."""
    if v4.all():
        # IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d); the rest of the 16 bytes is zero already.
        for column, at in (("src", 12), ("dst", 16)):
            out[column][:, 10:12] = 0xFF
            out[column][:, 12:] = ip[:, at : at + 4]
        return
    i4, i6 = np.flatnonzero(v4), np.flatnonzero(~v4)
    if len(i4):
        for column, at in (("src", 12), ("dst", 16)):
            addr = np.zeros((len(i4), 16), dtype=np.uint8)
            addr[:, 10:12] = 0xFF
            addr[:, 12:] = ip[i4, at : at + 4]
            out[column][i4] = addr
    if len(i6):
        out["src"][i6] = ip[i6, 8:24]
        out["dst"][i6] = ip[i6, 24:40]


def _options(b: _Bytes, out: np.ndarray, header: np.ndarray, l4: np.ndarray, doff: np.ndarray, end: np.ndarray) -> None:
    """Walk every packet's option list in lockstep, one option per round (RFC 9293 §3.1).

    Same rules as ``tcp_options.parse_options`` (the per-packet reference): EOL ends the list, NOP
    is one byte, any other option needs a length >= 2 that fits, or the walk stops there.  A list
    cut by the snaplen is walked only as far as it was captured.  The two Linux layouts, fully
    captured (``header``: TCP_BLOCK bytes per row), are read in place instead.
    """
    pos = l4 + 20
    stop = np.minimum(l4 + doff, end)
    data = header.view(TCP_HEADER)[:, 0]
    nop_nop_ts = (stop == l4 + 32) & (doff == 32) & (data["nop_nop_ts"] == NOP_NOP_TS)
    fast = np.flatnonzero(nop_nop_ts)
    if len(fast):
        out["has_ts"][fast] = True
        out["ts_val"][fast] = data["ts_val"][fast]
        out["ts_ecr"][fast] = data["ts_ecr"][fast]
    syn = header.view(TCP_SYN_HEADER)[:, 0]
    syn_layout = (
        (stop == l4 + 40) & (doff == 40) & (syn["mss_kind"] == MSS_KIND) & (syn["sack_ts"] == SACK_PERMITTED_TS)
        & ((syn["nop_ws"] >> 8) == NOP_WS)
    )  # fmt: skip
    fast = np.flatnonzero(syn_layout)
    if len(fast):
        out["mss"][fast] = syn["mss"][fast]
        out["sack_permitted"][fast] = True
        out["has_ts"][fast] = True
        out["ts_val"][fast] = syn["ts_val"][fast]
        out["ts_ecr"][fast] = syn["ts_ecr"][fast]
        out["wscale"][fast] = syn["nop_ws"][fast] & 0xFF
    rows = np.flatnonzero((pos < stop) & ~nop_nop_ts & ~syn_layout)
    pos, stop = pos[rows], stop[rows]
    sack_count = np.zeros(len(rows), dtype=np.int64)
    for _ in range(40):  # 40 option bytes at most: the walk ends in at most 40 rounds
        if len(rows) == 0:
            break
        kind = b.u8(pos)
        nop = kind == NOP
        length = b.u8(pos + 1)
        sized = (kind > NOP) & (pos + 1 < stop) & (length >= 2) & (pos + length <= stop)
        _apply_options(b, out, rows[sized], pos[sized], kind[sized], length[sized], sack_count, np.flatnonzero(sized))
        pos = np.where(nop, pos + 1, pos + length)
        going = (nop | sized) & (pos < stop)
        rows, pos, stop, sack_count = rows[going], pos[going], stop[going], sack_count[going]


NOP, MSS, WSCALE, SACK_PERMITTED, SACK, TIMESTAMP = 1, 2, 3, 4, 5, 8


def _apply_options(
    b: _Bytes,
    out: np.ndarray,
    rows: np.ndarray,
    pos: np.ndarray,
    kind: np.ndarray,
    length: np.ndarray,
    sack_count: np.ndarray,
    walkers: np.ndarray,
) -> None:
    m = (kind == MSS) & (length == 4)
    out["mss"][rows[m]] = b.u16(pos[m] + 2)
    m = (kind == WSCALE) & (length == 3)
    out["wscale"][rows[m]] = b.u8(pos[m] + 2)  # raw: a shift above 14 is itself a finding
    m = (kind == SACK_PERMITTED) & (length == 2)
    out["sack_permitted"][rows[m]] = True
    m = (kind == TIMESTAMP) & (length == 10)
    out["has_ts"][rows[m]] = True
    out["ts_val"][rows[m]] = b.u32(pos[m] + 2)
    out["ts_ecr"][rows[m]] = b.u32(pos[m] + 6)
    m = np.flatnonzero((kind == SACK) & (length > 2) & ((length - 2) % 8 == 0))
    if len(m):
        blocks = (length[m] - 2) // 8
        have = sack_count[walkers[m]]
        for j in range(MAX_SACK_BLOCKS):
            slot = have + j
            put = (j < blocks) & (slot < MAX_SACK_BLOCKS)
            r, at, sl = rows[m][put], pos[m][put] + 2 + 8 * j, slot[put]
            out["sack"][r, sl, 0] = b.u32(at)
            out["sack"][r, sl, 1] = b.u32(at + 4)
        sack_count[walkers[m]] = np.minimum(have + blocks, MAX_SACK_BLOCKS)
        out["sack_count"][rows[m]] = sack_count[walkers[m]]


def _checksum_status(
    buf: np.ndarray, ip: np.ndarray, v4: np.ndarray, start: np.ndarray, stop: np.ndarray, field: np.ndarray
) -> np.ndarray:
    """CHECKSUM_OK/BAD per fully captured segment (RFC 9293 §3.1), UNKNOWN when offloaded.

    A segment (checksum field included) is intact when the one's-complement sum of its 16-bit
    words and the pseudo-header is 0 mod 0xFFFF (``ip``: each row's IP header block, for the
    addresses; ``field``: the checksum field).
    """
    words = ip.view(">u2")

    def word_sum(first: int, last: int) -> np.ndarray:
        # Column by column: numpy's sum along a short axis costs far more than a few additions.
        total = words[:, first].astype(np.int64)
        for k in range(first + 1, last):
            total += words[:, k]
        return total

    # Addresses: IPv4 bytes 12-19 of its header, IPv6 bytes 8-39 (RFC 9293 §3.1, RFC 8200 §8.1).
    addresses = word_sum(6, 10)
    if not v4.all():
        addresses = np.where(v4, addresses, word_sum(4, 20))
    tcp_len = stop - start
    pseudo = addresses + IPPROTO_TCP + (tcp_len >> 16) + (tcp_len & 0xFFFF)
    good = (_word_sums(buf, start, stop) + pseudo) % 0xFFFF == 0
    field = field.astype(np.int64)
    return np.where(good, CHECKSUM_OK, np.where(offloaded(field, pseudo), CHECKSUM_UNKNOWN, CHECKSUM_BAD))


def _word_sums(buf: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Per range [start, stop) of buf: its sum of big-endian 16-bit words, mod 0xFFFF.

    The words are counted from each range's own start, so a byte weighs 256 at an even distance
    from it and 1 at an odd one.  The buffer's little-endian words at even offsets (summed with no
    byte swap) weigh bytes at odd offsets 256: right for a range that starts at an odd offset; for
    one at an even offset every weight is swapped, which mod 0xFFFF is a factor of 256 (256 * 256
    = 65536 = 1).  ``buf`` has bytes after every range (the decoder's padded buffer): an odd stop
    reads one.
    """
    words = buf[: len(buf) - (len(buf) & 1)].view("<u2")
    bounds = np.empty(2 * len(start), dtype=np.int64)
    bounds[0::2] = start // 2
    bounds[1::2] = (stop + 1) // 2
    # 32 bits hold the sum of 65537 words of 0xFFFF, more than an IPv4 packet has.
    longest = int((stop - start).max())
    total = np.add.reduceat(words, bounds, dtype=np.uint32 if longest <= 131072 else np.uint64)[0::2]
    total = total.astype(np.int64)
    # Take out the bytes the even-aligned words add around the range: the one before an odd
    # start (a low byte here), the one after an odd stop (a high byte here).
    odd_start = (start & 1) == 1
    total -= np.where(odd_start, buf[np.maximum(start - 1, 0)], 0)
    total -= np.where((stop & 1) == 1, buf[stop].astype(np.int64) << 8, 0)
    folded = total % 0xFFFF
    return np.where(odd_start, folded, (folded << 8) % 0xFFFF)
