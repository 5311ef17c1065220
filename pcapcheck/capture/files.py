"""One capture file for the default reader: recognise the format by its magic, then frame + decode."""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..errors import CaptureError
from .decode import Decoded, decode
from .pcap import MAGICS, PcapFile
from .pcapng import PcapngFile
from .source import open_stream

PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"


class CaptureFile:
    """A pcap or pcapng file opened and checked up to its first header."""

    def __init__(self, path: str, fmt: PcapFile | PcapngFile, compressed: bool):
        self.path = path
        self.fmt = fmt
        self.format_name = fmt.format + (".gz" if compressed else "")

    @property
    def link_names(self) -> list[str]:
        return self.fmt.link_names

    @property
    def warnings(self) -> list[str]:
        return self.fmt.warnings

    @property
    def comments(self) -> list[str]:
        return self.fmt.comments

    @property
    def dropped_by_interface(self) -> int | None:
        return self.fmt.dropped_by_interface

    def decoded(self, file_index: int) -> Iterator[Decoded]:
        for frames in self.fmt.frames():
            yield decode(frames, file_index)

    def close(self) -> None:
        self.fmt.reader.close()


def open_file(path: str) -> CaptureFile:
    reader = open_stream(path)
    try:
        head = reader.read_exact(4)
        if not head:
            raise CaptureError(path, "empty file")
        if len(head) < 4:
            raise CaptureError(path, f"truncated file header ({len(head)} bytes)")
        magic = struct.unpack("<I", head)[0]
        if magic in MAGICS:
            fmt: PcapFile | PcapngFile = PcapFile(path, reader, head)
        elif head == PCAPNG_MAGIC:
            fmt = PcapngFile(path, reader, head)
        else:
            raise CaptureError(path, f"not a pcap or pcapng file (magic 0x{magic:08x})")
    except CaptureError:
        reader.close()
        raise
    return CaptureFile(path, fmt, reader.compressed)
