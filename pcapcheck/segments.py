"""TCP segments: the columnar batch the capture stage produces, and the per-segment view replay reads.

The capture stage never builds one Python object per packet: it fills numpy structured arrays of
``SEGMENT_DTYPE`` in batches.  Later stages turn only the rows they need into ``Segment`` objects.

Addresses are 16 bytes: IPv6 as is, IPv4 as an IPv4-mapped IPv6 address (::ffff:a.b.c.d), with
``ip_version`` telling which one was on the wire.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import NamedTuple

import numpy as np

# TCP header flag bits (RFC 9293 §3.1; ECE/CWR RFC 3168; AE, ex-NS, RFC 3540/9293).
FIN = 0x001
SYN = 0x002
RST = 0x004
PSH = 0x008
ACK = 0x010
URG = 0x020
ECE = 0x040
CWR = 0x080
AE = 0x100

FLAG_LETTERS = ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "."), (URG, "U"), (ECE, "E"), (CWR, "W"))

MAX_SACK_BLOCKS = 4

# Checksum status: what could be known from the capture.
CHECKSUM_UNKNOWN = -1  # truncated packet, or offloaded (outgoing on the capturing host)
CHECKSUM_BAD = 0
CHECKSUM_OK = 1

SEGMENT_DTYPE = np.dtype(
    [
        ("frame", np.uint64),  # global frame number over the merged timeline, 1-based, counting every packet
        ("file_index", np.uint16),  # which input file (0-based, in the order given)
        ("file_frame", np.uint64),  # frame number within its file, 1-based, as Wireshark numbers it
        ("ts_ns", np.int64),  # capture timestamp, nanoseconds since the epoch
        ("ip_version", np.uint8),  # 4 or 6
        ("src", np.uint8, (16,)),
        ("dst", np.uint8, (16,)),
        ("ttl", np.uint8),  # IPv4 TTL / IPv6 hop limit: helps infer the vantage point
        ("sport", np.uint16),
        ("dport", np.uint16),
        ("seq", np.uint32),  # raw, as on the wire
        ("ack", np.uint32),
        ("flags", np.uint16),  # FIN..AE bits above
        ("window", np.uint16),  # raw, unscaled
        ("payload_len", np.uint32),  # from the IP length, not the captured length
        ("truncated", np.bool_),  # captured length shorter than the packet (snaplen)
        ("checksum", np.int8),  # CHECKSUM_*
        ("mss", np.int32),  # -1 when absent
        ("wscale", np.int16),  # -1 when absent
        ("sack_permitted", np.bool_),
        ("has_ts", np.bool_),
        ("ts_val", np.uint32),
        ("ts_ecr", np.uint32),
        ("sack_count", np.uint8),  # number of SACK blocks present (up to MAX_SACK_BLOCKS kept)
        ("sack", np.uint32, (MAX_SACK_BLOCKS, 2)),  # (left, right) raw edges
    ]
)


def empty_batch(n: int = 0) -> np.ndarray:
    """A zeroed batch with 'absent' defaults for the optional option columns."""
    batch = np.zeros(n, dtype=SEGMENT_DTYPE)
    batch["mss"] = -1
    batch["wscale"] = -1
    batch["checksum"] = CHECKSUM_UNKNOWN
    return batch


def address_text(raw: bytes | np.ndarray, ip_version: int) -> str:
    """Human form of a 16-byte address column value."""
    data = bytes(raw)
    if ip_version == 4:
        return str(ipaddress.IPv4Address(data[12:]))
    return str(ipaddress.IPv6Address(data))


def flags_text(flags: int) -> str:
    """tcpdump-like flag letters, e.g. 'S.' for SYN-ACK, 'F.' for FIN-ACK."""
    return "".join(letter for bit, letter in FLAG_LETTERS if flags & bit) or "none"


class Side(str, Enum):
    """One of the two endpoints of a connection. The client is the SYN sender (or inferred)."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> "Side":
        return Side.SERVER if self is Side.CLIENT else Side.CLIENT


class Segment(NamedTuple):
    """One segment of one connection, as replay and the checks read it.

    A NamedTuple, not a frozen dataclass: replay and the memo's checked lane build one per segment,
    and a tuple of 19 fields is built several times faster.

    ``seq`` and ``ack`` are *unwrapped* (plain integers that keep growing past 2**32) in the
    sequence space of the sender (seq) and of the receiver (ack).  ``rel_seq``/``rel_ack`` are the
    same numbers relative to the respective ISN (or to the first number seen for a mid-stream
    pickup), as Wireshark shows them.
    """

    index: int  # position in the connection, 0-based
    frame: int
    time: float  # seconds since the epoch
    sender: Side
    seq: int
    ack: int
    rel_seq: int
    rel_ack: int
    flags: int
    window: int
    length: int  # payload bytes, from the IP length
    mss: int | None = None
    wscale: int | None = None
    sack_permitted: bool = False
    ts_val: int | None = None
    ts_ecr: int | None = None
    sack_blocks: tuple[tuple[int, int], ...] = ()  # unwrapped, in the peer's sequence space (like ack)
    truncated: bool = False
    bad_checksum: bool = False

    @property
    def syn(self) -> bool:
        return bool(self.flags & SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & RST)

    @property
    def has_ack(self) -> bool:
        return bool(self.flags & ACK)

    @property
    def seg_len(self) -> int:
        """Sequence space consumed: payload plus one for SYN and one for FIN (RFC 9293 §3.4)."""
        return self.length + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    @property
    def end_seq(self) -> int:
        """First sequence number after this segment."""
        return self.seq + self.seg_len

    @property
    def flag_text(self) -> str:
        return flags_text(self.flags)
