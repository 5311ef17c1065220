"""Stage 1: capture files -> batches of TCP segments (numpy arrays of SEGMENT_DTYPE).

Contract:

    capture = open_capture(paths, reader="dpkt")   # raises CaptureError for bad input
    for batch in capture.batches():                 # timestamp-ordered over all files
        ...
    capture.info                                    # CaptureInfo, complete once batches() is exhausted

Several files are one timeline merged by timestamp (a tcpdump -C/-G ring buffer).
A truncated *last* record is a warning in ``info.warnings``; everything before it is still read.
Any other damage raises CaptureError after the batches already yielded.

Within one file records keep the file's order (frame == file_frame, as Wireshark numbers them).

Readers: "dpkt" (default) frames pcap/pcapng with a tight record walk and decodes all headers with
vectorised numpy gathers (pcapcheck.capture.decode); "tshark" asks tshark (through the optional
pyshark extra) for the same fields and exists to cross-check the default one.
"""

from __future__ import annotations

import os
import stat

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaptureError, ConfigError
from ..timestamps import second


@dataclass(slots=True)
class CaptureInfo:
    paths: list[str]
    packets: int = 0  # every record read, TCP or not
    tcp_packets: int = 0
    non_tcp_packets: int = 0
    first_time: float | None = None
    last_time: float | None = None
    link_types: list[str] = field(default_factory=list)  # e.g. ["EN10MB", "LINUX_SLL2"]
    warnings: list[str] = field(default_factory=list)  # one line each, name the file
    comments: list[str] = field(default_factory=list)  # pcapng comments / interface names (untrusted text)
    formats: list[str] = field(default_factory=list)  # per file: "pcap", "pcapng", "pcap.gz", ...
    truncated_packets: int = 0  # TCP segments captured shorter than sent (snaplen)
    # Packets the capturing host reports it dropped (pcapng interface statistics isb_ifdrop +
    # isb_osdrop, summed over interfaces and files); None when no file reports any statistics.
    dropped_by_interface: int | None = None


READERS = ("dpkt", "tshark")


class Capture:
    """One or more capture files read as one timeline."""

    def __init__(self, paths: list[str], files: list, info: CaptureInfo):
        self.paths = paths
        self._files = files
        self.info = info
        self._started = False

    def batches(self) -> Iterator[np.ndarray]:
        if self._started:
            raise RuntimeError("Capture.batches() can be iterated only once")
        self._started = True
        from .merge import merge

        sources = [self._decoded(i, f) for i, f in enumerate(self._files)]
        stream = (d.segments for d in sources[0]) if len(sources) == 1 else merge(sources)
        for batch in stream:
            if len(batch):
                yield batch

    def _decoded(self, index: int, source) -> Iterator:
        try:
            for decoded in source.decoded(index):
                count_chunk(self.info, source, ChunkCounts.of(decoded))
                yield decoded
        finally:
            close_source(self.info, source)

    def single_pcap(self):
        """The one file to read, when it is a plain classic pcap file that the default reader reads
        from a regular file (what pcapcheck.parallel_read can split among processes), else None.
        Whoever reads it says so with ``claim``."""
        if self._started or len(self._files) != 1:
            return None
        from .files import CaptureFile
        from .pcap import PcapFile

        file = self._files[0]
        if not isinstance(file, CaptureFile) or type(file.fmt) is not PcapFile or file.format_name != "pcap":
            return None
        try:
            if not stat.S_ISREG(os.fstat(file.fmt.reader.raw.fileno()).st_mode):
                return None
        except (OSError, AttributeError, ValueError):  # no descriptor: not a plain file
            return None
        return file

    def claim(self) -> None:
        """The files are read elsewhere (pcapcheck.parallel_read): ``batches`` is not to be called."""
        self._started = True


@dataclass(frozen=True, slots=True)
class ChunkCounts:
    """What CaptureInfo counts of one decoded chunk."""

    records: int
    tcp: int
    truncated: int
    first_ns: int  # earliest and latest record timestamp (0 when no records)
    last_ns: int

    @classmethod
    def of(cls, decoded) -> "ChunkCounts":
        segments = decoded.segments
        first = last = 0
        if decoded.records:
            first, last = int(decoded.record_ts.min()), int(decoded.record_ts.max())
        return cls(decoded.records, len(segments), int(np.count_nonzero(segments["truncated"])), first, last)


def count_chunk(info: CaptureInfo, source, counts: ChunkCounts) -> None:
    """Add one chunk of ``source`` to ``info``."""
    info.packets += counts.records
    info.tcp_packets += counts.tcp
    info.non_tcp_packets = info.packets - info.tcp_packets
    info.truncated_packets += counts.truncated
    if counts.records:
        first, last = second(counts.first_ns), second(counts.last_ns)
        info.first_time = first if info.first_time is None else min(info.first_time, first)
        info.last_time = last if info.last_time is None else max(info.last_time, last)
    for name in source.link_names:
        if name not in info.link_types:
            info.link_types.append(name)


def close_source(info: CaptureInfo, source) -> None:
    """What ``source`` says once read (warnings, comments, drops) added to ``info``; closed."""
    info.warnings.extend(w for w in source.warnings if w not in info.warnings)
    info.comments.extend(c for c in source.comments if c not in info.comments)
    dropped = source.dropped_by_interface
    if dropped is not None:
        info.dropped_by_interface = (info.dropped_by_interface or 0) + dropped
    source.close()


def open_capture(paths: Sequence[str] | str, reader: str = "dpkt") -> Capture:
    """Open every file now (so bad headers fail before any analysis); read them in ``batches()``."""
    path_list = [paths] if isinstance(paths, str) else [str(p) for p in paths]
    if not path_list:
        raise ConfigError("no capture file given")
    if reader not in READERS:
        raise ConfigError(f"unknown reader '{reader}' (choose dpkt or tshark)")
    path_list, repeated = _once_each(path_list)
    files = []
    try:
        for path in path_list:
            if reader == "dpkt":
                from .files import open_file

                files.append(open_file(path))
            else:
                from .tshark import open_tshark_file

                files.append(open_tshark_file(path))
    except CaptureError:
        for f in files:
            f.close()
        raise
    info = CaptureInfo(paths=path_list, formats=[f.format_name for f in files])
    # Reading one file twice would double every packet: each one would look retransmitted.
    info.warnings.extend(f"{path}: given more than once; read once" for path in repeated)
    for f in files:
        for name in f.link_names:
            if name not in info.link_types:
                info.link_types.append(name)
    return Capture(path_list, files, info)


def _once_each(paths: list[str]) -> tuple[list[str], list[str]]:
    """The paths with repeats of the same file left out, and the repeated ones."""
    seen: set = set()
    kept: list[str] = []
    repeated: list[str] = []
    for path in paths:
        try:
            identity = os.stat(path)
            key = (identity.st_dev, identity.st_ino) if stat.S_ISREG(identity.st_mode) else path
        except OSError:
            key = path  # missing: opening it reports that
        if key in seen:
            repeated.append(path)
            continue
        seen.add(key)
        kept.append(path)
    return kept, repeated


__all__ = ["Capture", "CaptureInfo", "open_capture"]
