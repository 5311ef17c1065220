"""TCP checksum pieces shared by both readers (RFC 9293 §3.1 pseudo-header; offload detection).

A host that offloads checksumming to its NIC hands the capture point a segment whose checksum
field holds only the folded pseudo-header sum (Linux CHECKSUM_PARTIAL: the NIC adds the rest).
Such a segment is not corrupt, and its checksum verdict is unknown, not bad.
"""

from __future__ import annotations

import numpy as np

IPPROTO_TCP = 6


def pseudo_header_sum(src: np.ndarray, dst: np.ndarray, v4: np.ndarray, tcp_len: np.ndarray) -> np.ndarray:
    """Unfolded one's-complement sum of the pseudo-header, per row (16-byte address columns)."""
    first = np.where(v4, 12, 0)[:, None]  # IPv4 addresses are the last 4 of the 16 bytes
    in_address = np.arange(8) * 2 >= first

    def words(a: np.ndarray) -> np.ndarray:
        return (a[:, 0::2].astype(np.int64) * 256 + a[:, 1::2]).sum(axis=1, where=in_address)

    tcp_len = np.asarray(tcp_len, dtype=np.int64)
    return words(src) + words(dst) + IPPROTO_TCP + (tcp_len >> 16) + (tcp_len & 0xFFFF)


def fold(total: np.ndarray) -> np.ndarray:
    """One's-complement fold of a positive sum into 16 bits (0xFFFF, never 0, for a multiple)."""
    return np.where(total == 0, 0, (total - 1) % 0xFFFF + 1)


def offloaded(field: np.ndarray, pseudo: np.ndarray) -> np.ndarray:
    """The checksum field holds just the pseudo-header sum: filled in later by the NIC."""
    return field == fold(pseudo)
