"""Stage 1: capture files -> batches of TCP segments (numpy arrays of SEGMENT_DTYPE).

Contract:

    capture = open_capture(paths, reader="dpkt")   # raises CaptureError for bad input
    for batch in capture.batches():                 # timestamp-ordered over all files
        ...
    capture.info                                    # CaptureInfo, complete once batches() is exhausted

Several files are one timeline merged by timestamp (a tcpdump -C/-G ring buffer).
A truncated *last* record is a warning in ``info.warnings``; everything before it is still read.
Any other damage raises CaptureError after the batches already yielded.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
