"""Classic libpcap files: 24-byte global header, then 16-byte record headers each followed by data.

Magic 0xa1b2c3d4 means microsecond, 0xa1b23c4d nanosecond timestamps; read in either byte order
(https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/ §4, §5).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from ..errors import CaptureError
from . import linktypes
from .frames import Frames, gather_u32, too_long
from .source import ChunkReader, walk_chunks

HEADER_LEN = 24
RECORD_HEADER_LEN = 16

# Magic as read little-endian -> (file is little-endian, nanosecond resolution)
MAGICS = {
    0xA1B2C3D4: (True, False),
    0xD4C3B2A1: (False, False),
    0xA1B23C4D: (True, True),
    0x4D3CB2A1: (False, True),
}


class PcapFile:
    format = "pcap"
    dropped_by_interface: int | None = None  # the pcap format records no drop statistics

    def __init__(self, path: str, reader: ChunkReader, head: bytes):
        self.path = path
        self.reader = reader
        header = head + reader.read_exact(HEADER_LEN - len(head))
        if len(header) < HEADER_LEN:
            raise CaptureError(path, f"truncated pcap file header ({len(header)} of {HEADER_LEN} bytes)")
        self.little, nanos = MAGICS[struct.unpack_from("<I", header)[0]]
        order = "<" if self.little else ">"
        _, _major, _minor, _zone, _sigfigs, self.snaplen, network = struct.unpack(order + "IHHiIII", header)
        # The upper bits of the link-type field may carry the FCS length (pcap draft §4).
        linktype = linktypes.canonical(network & 0xFFFF)
        if linktype not in linktypes.SUPPORTED:
            raise CaptureError(path, f"unsupported link type {network & 0xFFFF} ({linktypes.name(network & 0xFFFF)})")
        self.linktype = linktype
        self.link_names = [linktypes.name(linktype)]
        self.frac_to_ns = 1 if nanos else 1000
        self.caplen_at = struct.Struct(order + "I").unpack_from
        self.warnings: list[str] = []
        self.comments: list[str] = []

    def frames(self) -> Iterator[Frames]:
        """Frames chunk by chunk; raises CaptureError at a corrupt record after yielding the ones before."""
        yield from walk_chunks(
            self.reader, b"", self._walk, self._frames, path=self.path,
            corrupt_at="record {frame}", cut_at="last record (frame {frame})", warnings=self.warnings,
        )

    def _walk(self, data: bytes) -> tuple[list[int], int, str | None]:
        """Record header positions of the complete records in ``data`` (the tight loop of the reader).

        The loop only hops from header to header; whether each hop was sane (no impossible
        captured length, the last record complete) is checked afterwards for all at once.
        """
        positions: list[int] = []
        append = positions.append
        caplen_at = self.caplen_at
        last_header = len(data) - RECORD_HEADER_LEN
        pos = 0
        while pos <= last_header:
            append(pos)
            pos += RECORD_HEADER_LEN + caplen_at(data, pos + 8)[0]
        if not positions:
            return positions, 0, None
        buf = np.frombuffer(data, dtype=np.uint8)
        caplen = gather_u32(buf, np.asarray(positions, dtype=np.int64) + 8, self.little)
        impossible = np.flatnonzero(too_long(caplen, self.snaplen))
        if len(impossible):
            i = int(impossible[0])
            bad = int(caplen[i])
            return positions[:i], positions[i], f"captured length {bad} is impossible (snaplen {self.snaplen})"
        if pos > len(data):  # the last record runs past the data read so far
            return positions[:-1], positions[-1], None
        return positions, pos, None

    def _frames(self, data: bytes, positions: list[int], first_frame: int) -> Frames:
        buf = np.frombuffer(data, dtype=np.uint8)
        pos = np.asarray(positions, dtype=np.int64)
        sec = gather_u32(buf, pos, self.little)
        frac = gather_u32(buf, pos + 4, self.little)
        return Frames(
            buf=buf,
            offset=pos + RECORD_HEADER_LEN,
            caplen=gather_u32(buf, pos + 8, self.little),
            origlen=gather_u32(buf, pos + 12, self.little),
            ts_ns=sec * 1_000_000_000 + frac * self.frac_to_ns,
            linktype=np.full(len(pos), self.linktype, dtype=np.int32),
            first_file_frame=first_frame,
        )
