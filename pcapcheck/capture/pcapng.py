"""pcapng files: a walk over blocks (draft-ietf-opsawg-pcapng).

Each section starts with a Section Header Block (its byte-order magic decides the endianness);
Interface Description Blocks give each interface its link type, snaplen and timestamp resolution
(``if_tsresol``, §4.2) and offset (``if_tsoffset``); packets come in Enhanced (EPB), Simple (SPB)
or obsolete Packet Blocks.  Every other block is skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import CaptureError
from . import linktypes
from .frames import MAX_RECORD, Frames
from .source import ChunkReader

SHB = 0x0A0D0D0A
IDB = 0x00000001
PB = 0x00000002  # obsolete Packet Block
SPB = 0x00000003
EPB = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_END = 0
OPT_COMMENT = 1
IF_NAME = 2
IF_DESCRIPTION = 3
IF_TSRESOL = 9
IF_TSOFFSET = 14

MAX_BLOCK = MAX_RECORD + 4096  # a packet block holds at most one record plus its options
MAX_SHB = 1 << 20  # section headers carry only options


@dataclass(slots=True)
class Interface:
    linktype: int
    snaplen: int
    units_per_second: int = 1_000_000  # if_tsresol default: microseconds
    offset_s: int = 0  # if_tsoffset

    def to_ns(self, units: int) -> int:
        if self.units_per_second == 1_000_000_000:
            ns = units
        else:
            ns = units * 1_000_000_000 // self.units_per_second
        ns += self.offset_s * 1_000_000_000
        # Keep nonsense timestamps of a damaged file inside int64.
        return max(min(ns, 1 << 62), -(1 << 62))


def tsresol_units(value: int) -> int:
    """Units per second from an if_tsresol byte: MSB clear = 10**-n, MSB set = 2**-n (§4.2)."""
    n = value & 0x7F
    if value & 0x80:
        return 1 << min(n, 63)
    return 10 ** min(n, 18)


class PcapngFile:
    format = "pcapng"

    def __init__(self, path: str, reader: ChunkReader, head: bytes):
        self.path = path
        self.reader = reader
        self.head = head
        self.order = "<"
        self.interfaces: list[Interface] = []
        self.link_names: list[str] = []
        self.warnings: list[str] = []
        self.comments: list[str] = []
        # Validate the first section header now, so a bad header fails before any analysis.
        first = head + reader.read_exact(12 - len(head))
        if len(first) < 12:
            raise CaptureError(path, f"truncated pcapng section header ({len(first)} of 12 bytes)")
        bom = first[8:12]
        if bom not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
            raise CaptureError(path, "not a pcapng file (bad byte-order magic in the section header)")
        self.head = first

    def frames(self) -> Iterator[Frames]:
        data = self.head
        next_frame = 1
        while True:
            chunk = self.reader.read()
            data = data + chunk if data else chunk
            if not data:
                break
            rows, stop, corrupt = self._walk(data)
            if rows:
                yield self._frames(data, rows, next_frame)
                next_frame += len(rows)
            if corrupt is not None:
                raise CaptureError(self.path, f"block at packet {next_frame}: {corrupt}")
            data = data[stop:]
            if not chunk:
                if data:
                    self.warnings.append(
                        f"{self.path}: last block (before frame {next_frame}) is cut short "
                        f"({len(data)} bytes); the packets before it were analysed"
                    )
                break
        if self.reader.cut_short:
            self.warnings.append(f"{self.path}: compressed file ends early; the packets before the end were analysed")

    def _walk(self, data: bytes) -> tuple[list[tuple], int, str | None]:
        rows: list[tuple] = []
        end = len(data)
        pos = 0
        while pos + 12 <= end:
            if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
                bom = data[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    self.order = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    self.order = ">"
                else:
                    return rows, pos, "bad byte-order magic in a section header"
            order = self.order
            btype, blen = struct.unpack_from(order + "II", data, pos)
            if blen < 12 or blen % 4 or blen > (MAX_SHB if btype == SHB else MAX_BLOCK):
                return rows, pos, f"impossible block length {blen}"
            if pos + blen > end:
                break
            body = pos + 8
            if btype == SHB:
                # A new section: interface ids start again from zero.
                self.interfaces = []
            elif btype == IDB:
                problem = self._interface(data, body, pos + blen - 4)
                if problem:
                    return rows, pos, problem
            elif btype in (EPB, PB):
                if blen < 32:
                    return rows, pos, f"packet block too short ({blen} bytes)"
                if btype == EPB:
                    iface_id, hi, lo, caplen, origlen = struct.unpack_from(order + "IIIII", data, body)
                else:
                    iface_id, _drops, hi, lo, caplen, origlen = struct.unpack_from(order + "HHIIII", data, body)
                if iface_id >= len(self.interfaces):
                    return rows, pos, f"packet on undeclared interface {iface_id}"
                if caplen > blen - 32:
                    return rows, pos, f"captured length {caplen} exceeds its block"
                iface = self.interfaces[iface_id]
                rows.append((body + 20, caplen, origlen, iface.to_ns((hi << 32) | lo), iface.linktype))
            elif btype == SPB:
                if not self.interfaces:
                    return rows, pos, "simple packet block before any interface"
                (origlen,) = struct.unpack_from(order + "I", data, body)
                iface = self.interfaces[0]
                caplen = min(origlen, blen - 16, iface.snaplen or origlen)
                # SPBs carry no timestamp (§4.4); they sort at the epoch.
                rows.append((body + 4, caplen, origlen, 0, iface.linktype))
            pos += blen
        return rows, pos, None

    def _interface(self, data: bytes, body: int, end: int) -> str | None:
        linktype, _reserved, snaplen = struct.unpack_from(self.order + "HHI", data, body)
        linktype = linktypes.canonical(linktype)
        if linktype not in linktypes.SUPPORTED:
            return f"unsupported link type {linktype} ({linktypes.name(linktype)})"
        iface = Interface(linktype, snaplen)
        for code, value in self._options(data, body + 8, end):
            if code == IF_TSRESOL and value:
                iface.units_per_second = tsresol_units(value[0])
            elif code == IF_TSOFFSET and len(value) == 8:
                iface.offset_s = struct.unpack(self.order + "q", value)[0]
            elif code in (IF_NAME, IF_DESCRIPTION, OPT_COMMENT):
                self.comments.append(value.decode("utf-8", "replace"))
        self.interfaces.append(iface)
        name = linktypes.name(linktype)
        if name not in self.link_names:
            self.link_names.append(name)
        return None

    def _options(self, data: bytes, pos: int, end: int) -> Iterator[tuple[int, bytes]]:
        while pos + 4 <= end:
            code, length = struct.unpack_from(self.order + "HH", data, pos)
            if code == OPT_END:
                return
            value = data[pos + 4 : pos + 4 + length]
            if pos + 4 + length > end:
                return  # malformed option list: keep what was read
            yield code, value
            pos += 4 + ((length + 3) & ~3)

    def _frames(self, data: bytes, rows: list[tuple], first_frame: int) -> Frames:
        table = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return Frames(
            buf=np.frombuffer(data, dtype=np.uint8),
            offset=table[:, 0],
            caplen=table[:, 1],
            origlen=table[:, 2],
            ts_ns=table[:, 3],
            linktype=table[:, 4].astype(np.int32),
            first_file_frame=first_frame,
        )
