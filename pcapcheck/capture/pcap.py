"""Classic libpcap files: 24-byte global header, then 16-byte record headers each followed by data.

Magic 0xa1b2c3d4 means microsecond, 0xa1b23c4d nanosecond timestamps; read in either byte order
(https://datatracker.ietf.org/doc/draft-ietf-opsawg-pcap/ §4, §5).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from typing import TypeVar

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import CaptureError
from . import linktypes
from .frames import Frames, too_long
from .source import ChunkReader, walk_chunks, with_slack

Chunk = TypeVar("Chunk")

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
        self.record_header = np.dtype([(name, order + "u4") for name in ("sec", "frac", "caplen", "origlen")])
        self.warnings: list[str] = []
        self.comments: list[str] = []

    def frames(self) -> Iterator[Frames]:
        """Frames chunk by chunk; raises CaptureError at a corrupt record after yielding the ones before."""
        return self.chunks(self.frames_at)

    def chunks(
        self, make: Callable[[memoryview, np.ndarray, int], Chunk], chunk_size: int | None = None
    ) -> Iterator[Chunk]:
        """``make(data, record positions, first frame)`` of each chunk (of ``chunk_size`` bytes,
        source.CHUNK_SIZE by default), as ``frames`` walks them (pcapcheck.parallel_read makes
        them elsewhere)."""
        yield from walk_chunks(
            self.reader, b"", self._walk, make, path=self.path, chunk_size=chunk_size,
            corrupt_at="record {frame}", cut_at="last record (frame {frame})", warnings=self.warnings,
        )  # fmt: skip

    def _walk(self, data: memoryview) -> tuple[np.ndarray, int, str | None]:
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
        found = np.asarray(positions, dtype=np.int64)
        if not len(found):
            return found, 0, None
        caplen = self._headers(np.frombuffer(data, dtype=np.uint8), found)["caplen"]
        impossible = np.flatnonzero(too_long(caplen, self.snaplen))
        if len(impossible):
            i = int(impossible[0])
            bad = int(caplen[i])
            return found[:i], int(found[i]), f"captured length {bad} is impossible (snaplen {self.snaplen})"
        if pos > len(data):  # the last record runs past the data read so far
            return found[:-1], int(found[-1]), None
        return found, pos, None

    def _headers(self, buf: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The record headers at ``pos`` (each one complete in buf), as RECORD_HEADER rows."""
        return sliding_window_view(buf, RECORD_HEADER_LEN)[pos].view(self.record_header)[:, 0]

    def frames_at(self, data: memoryview, pos: np.ndarray, first_frame: int) -> Frames:
        """The records at ``pos`` in ``data``, a chunk whose first record is ``first_frame``."""
        buf = np.frombuffer(data, dtype=np.uint8)
        headers = self._headers(buf, pos)
        return Frames(
            buf=buf,
            offset=pos + RECORD_HEADER_LEN,
            caplen=headers["caplen"].astype(np.int64),
            origlen=headers["origlen"].astype(np.int64),
            ts_ns=headers["sec"].astype(np.int64) * 1_000_000_000 + headers["frac"].astype(np.int64) * self.frac_to_ns,
            linktype=np.full(len(pos), self.linktype, dtype=np.int32),
            first_file_frame=first_frame,
            padded=with_slack(data),
        )
