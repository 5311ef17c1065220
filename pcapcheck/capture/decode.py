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

from ..segments import CHECKSUM_BAD, CHECKSUM_OK, CHECKSUM_UNKNOWN, MAX_SACK_BLOCKS, empty_batch
from . import linktypes
from .checksum import offloaded, pseudo_header_sum
from .frames import Frames

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


class _Bytes:
    """Big-endian gathers from one buffer; positions past the end read as the last byte (masked later)."""

    def __init__(self, buf: np.ndarray):
        self.buf = buf
        self.last = max(len(buf) - 1, 0)

    def u8(self, pos: np.ndarray) -> np.ndarray:
        if len(self.buf) == 0:
            return np.zeros(len(pos), dtype=np.int64)
        return self.buf[np.clip(pos, 0, self.last)].astype(np.int64)

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos) << 8) | self.u8(pos + 1)

    def u32(self, pos: np.ndarray) -> np.ndarray:
        return (self.u16(pos) << 16) | self.u16(pos + 2)

    def u32le(self, pos: np.ndarray) -> np.ndarray:
        return self.u8(pos) | (self.u8(pos + 1) << 8) | (self.u8(pos + 2) << 16) | (self.u8(pos + 3) << 24)

    def block(self, pos: np.ndarray, width: int) -> np.ndarray:
        """(len(pos), width) bytes starting at each position."""
        idx = np.clip(pos[:, None] + np.arange(width), 0, self.last)
        return self.buf[idx]


def decode(frames: Frames, file_index: int) -> Decoded:
    n = len(frames)
    segments = _decode_tcp(frames, file_index) if n else empty_batch(0)
    return Decoded(segments=segments, record_ts=frames.ts_ns, first_file_frame=frames.first_file_frame)


def _link_layer(b: _Bytes, frames: Frames) -> tuple[np.ndarray, np.ndarray]:
    """(ethertype, offset of the network header) per record; ethertype 0 = not IP."""
    off = frames.offset
    ethertype = np.zeros(len(off), dtype=np.int64)
    l3 = off.copy()
    for linktype in np.unique(frames.linktype):
        m = frames.linktype == linktype
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
    b = _Bytes(frames.buf)
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

    # IPv4 (RFC 791 §3.1)
    ihl = (b.u8(l3) & 0x0F) * 4
    total4 = b.u16(l3 + 2)
    total4 = np.where(total4 == 0, wire_left, total4)  # 0 = TSO on the sending host: trust the wire length
    frag = b.u16(l3 + 6)
    more_fragments = v4 & ((frag & 0x2000) != 0)
    ok4 = (ihl >= 20) & ((frag & 0x1FFF) == 0) & (b.u8(l3 + 9) == IPPROTO_TCP) & (total4 >= ihl)

    # IPv6 (RFC 8200 §3) and its extension headers (§4)
    plen = b.u16(l3 + 4)
    total6 = np.where(plen == 0, wire_left, plen + 40)  # 0 = jumbogram: trust the wire length
    nh = b.u8(l3 + 6)
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
    doff = (b.u8(l4 + 12) >> 4) * 4
    tcp &= (doff >= 20) & (l4 + doff <= ip_end)
    keep = np.flatnonzero(tcp)
    if len(keep) == 0:
        return empty_batch(0)
    rec, l3, l4, end, ip_end, doff, v4 = rec[keep], l3[keep], l4[keep], end[keep], ip_end[keep], doff[keep], v4[keep]
    more_fragments = more_fragments[keep]

    out = empty_batch(len(rec))
    out["file_index"] = file_index
    out["file_frame"] = frames.first_file_frame + rec
    out["frame"] = out["file_frame"]
    out["ts_ns"] = frames.ts_ns[rec]
    out["ip_version"] = np.where(v4, 4, 6)
    _addresses(b, out, l3, v4)
    out["ttl"] = np.where(v4, b.u8(l3 + 8), b.u8(l3 + 7))
    out["sport"] = b.u16(l4)
    out["dport"] = b.u16(l4 + 2)
    out["seq"] = b.u32(l4 + 4)
    out["ack"] = b.u32(l4 + 8)
    out["flags"] = ((b.u8(l4 + 12) & 0x01) << 8) | b.u8(l4 + 13)
    out["window"] = b.u16(l4 + 14)
    out["payload_len"] = ip_end - l4 - doff
    truncated = end < ip_end
    out["truncated"] = truncated
    _options(b, out, l4, doff, end)
    # A first fragment holds only part of the segment: its checksum cannot be checked.
    checkable = np.flatnonzero(~truncated & ~more_fragments)
    if len(checkable):
        out["checksum"][checkable] = _checksum_status(frames.buf, out[checkable], l4[checkable], ip_end[checkable])
    return out


def _addresses(b: _Bytes, out: np.ndarray, l3: np.ndarray, v4: np.ndarray) -> None:
    i4, i6 = np.flatnonzero(v4), np.flatnonzero(~v4)
    if len(i4):
        # IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d), see segments.py
        for column, at in (("src", 12), ("dst", 16)):
            addr = np.zeros((len(i4), 16), dtype=np.uint8)
            addr[:, 10:12] = 0xFF
            addr[:, 12:] = b.block(l3[i4] + at, 4)
            out[column][i4] = addr
    if len(i6):
        out["src"][i6] = b.block(l3[i6] + 8, 16)
        out["dst"][i6] = b.block(l3[i6] + 24, 16)


def _options(b: _Bytes, out: np.ndarray, l4: np.ndarray, doff: np.ndarray, end: np.ndarray) -> None:
    """Walk every packet's option list in lockstep, one option per round (RFC 9293 §3.1).

    Same rules as ``tcp_options.parse_options`` (the per-packet reference): EOL ends the list, NOP
    is one byte, any other option needs a length >= 2 that fits, or the walk stops there.  A list
    cut by the snaplen is walked only as far as it was captured.
    """
    pos = l4 + 20
    stop = np.minimum(l4 + doff, end)
    # Fast path for the Linux data-segment layout, NOP NOP TS: most segments of a bulk transfer.
    nop_nop_ts = (stop == l4 + 32) & (doff == 32) & (b.u32(pos) == 0x0101080A)
    fast = np.flatnonzero(nop_nop_ts)
    if len(fast):
        out["has_ts"][fast] = True
        out["ts_val"][fast] = b.u32(l4[fast] + 24)
        out["ts_ecr"][fast] = b.u32(l4[fast] + 28)
    rows = np.flatnonzero((pos < stop) & ~nop_nop_ts)
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


def _checksum_status(buf: np.ndarray, seg: np.ndarray, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """CHECKSUM_OK/BAD per fully captured segment (RFC 9293 §3.1), UNKNOWN when offloaded.

    The one's-complement sum of 16-bit words is the sum of (high byte * 256 + low byte); bytes at
    even distance from the segment start are high bytes.  Sums over byte ranges come from
    ``np.add.reduceat`` on the even- and odd-positioned bytes of the buffer, so no per-packet loop.
    A segment (checksum field included) is intact when that sum is 0 mod 0xFFFF.
    """
    even = np.append(buf[0::2], np.uint8(0))
    odd = np.append(buf[1::2], np.uint8(0))
    sum_even = _range_sums(even, (start + 1) // 2, (stop + 1) // 2)
    sum_odd = _range_sums(odd, start // 2, stop // 2)
    starts_even = start % 2 == 0
    total = np.where(starts_even, sum_even * 256 + sum_odd, sum_odd * 256 + sum_even)
    pseudo = pseudo_header_sum(seg["src"], seg["dst"], seg["ip_version"] == 4, stop - start)
    good = (total + pseudo) % 0xFFFF == 0
    field = (buf[start + 16].astype(np.int64) << 8) | buf[start + 17]
    return np.where(good, CHECKSUM_OK, np.where(offloaded(field, pseudo), CHECKSUM_UNKNOWN, CHECKSUM_BAD))


def _range_sums(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Sum of values[lo:hi] for each (lo, hi); ranges are non-empty and in increasing order."""
    idx = np.empty(2 * len(lo), dtype=np.int64)
    idx[0::2] = lo
    idx[1::2] = hi
    return np.add.reduceat(values, idx, dtype=np.int64)[0::2]
