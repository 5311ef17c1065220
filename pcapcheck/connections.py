"""Connections: segments grouped by 4-tuple *and* incarnation, with unwrapped sequence numbers.

Contract (the implementation fills ``rebuild``):

* A connection is identified by its bidirectional 4-tuple plus an incarnation number.  A new SYN
  (without ACK) on a tuple whose previous connection has closed (FIN both ways, RST, or refused),
  or a SYN whose ISN lies far outside the current sequence space, starts a new incarnation.
* ``id`` is 1-based, in order of each connection's first frame over the whole capture.
* ``incarnation`` is 1-based within the tuple; ``previous_id`` links to the incarnation before.
* The client is the endpoint that sent the first SYN without ACK.  With no such SYN seen (mid-stream
  pickup, or only a SYN-ACK seen) the roles are inferred (SYN-ACK sender is the server; otherwise
  the lower, well-known or listening-looking port is the server) and ``roles_inferred`` is True.
* Sequence numbers are unwrapped modulo 2**32 per direction, relative to that side's ISN (or its
  first seen number for a mid-stream pickup).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .segments import CHECKSUM_BAD, MAX_SACK_BLOCKS, Segment, Side


@dataclass(frozen=True, slots=True, order=True)
class Endpoint:
    addr: str
    port: int

    def __str__(self) -> str:
        return f"[{self.addr}]:{self.port}" if ":" in self.addr else f"{self.addr}:{self.port}"


@dataclass(slots=True)
class Connection:
    id: int
    client: Endpoint
    server: Endpoint
    incarnation: int
    roles_inferred: bool
    # Rows of SEGMENT_DTYPE belonging to this connection, in capture order.
    rows: np.ndarray
    # Side of each row's sender (0 = client, 1 = server), aligned with rows.
    sender: np.ndarray
    # Unwrapped seq/ack per row (int64), aligned with rows; see module docstring.
    seq: np.ndarray
    ack: np.ndarray
    client_isn: int | None = None  # unwrapped; None when the SYN was not seen
    server_isn: int | None = None
    previous_id: int | None = None  # the incarnation before on the same tuple
    flags_seen: int = 0  # OR of all flags

    @property
    def packets(self) -> int:
        return len(self.rows)

    @property
    def first_frame(self) -> int:
        return int(self.rows["frame"][0])

    @property
    def last_frame(self) -> int:
        return int(self.rows["frame"][-1])

    @property
    def start(self) -> float:
        return int(self.rows["ts_ns"][0]) / 1e9

    @property
    def end(self) -> float:
        return int(self.rows["ts_ns"][-1]) / 1e9

    def bytes_sent(self, side: Side) -> int:
        mask = self.sender == (0 if side is Side.CLIENT else 1)
        return int(self.rows["payload_len"][mask].sum())

    def packets_sent(self, side: Side) -> int:
        return int(np.count_nonzero(self.sender == (0 if side is Side.CLIENT else 1)))

    def endpoint(self, side: Side) -> Endpoint:
        return self.client if side is Side.CLIENT else self.server

    def base(self, side: Side) -> int:
        """The number relative sequence numbers of ``side`` count from (ISN, or first seen)."""
        isn = self.client_isn if side is Side.CLIENT else self.server_isn
        if isn is not None:
            return isn
        mask = self.sender == (0 if side is Side.CLIENT else 1)
        if mask.any():
            return int(self.seq[mask][0])
        other = ~mask
        # Only the peer's segments were captured: their acks are the best guess of our numbers.
        return int(self.ack[other][0]) if other.any() else 0

    def segments(self, indices: Iterable[int] | None = None) -> Iterator[Segment]:
        """Segment objects for all rows, or only for ``indices`` (the fast replay asks for few)."""
        bases = (self.base(Side.CLIENT), self.base(Side.SERVER))
        rows = self.rows
        for i in range(len(rows)) if indices is None else indices:
            yield segment_at(self, int(i), bases)


def segment_at(conn: Connection, i: int, bases: tuple[int, int]) -> Segment:
    row = conn.rows[i]
    side_index = int(conn.sender[i])
    sender = Side.CLIENT if side_index == 0 else Side.SERVER
    seq = int(conn.seq[i])
    ack = int(conn.ack[i])
    sack_blocks: tuple[tuple[int, int], ...] = ()
    count = int(row["sack_count"])
    if count:
        # SACK edges live in the peer's sequence space, like ack: unwrap them next to ack.
        raw_ack = int(row["ack"])
        sack_blocks = tuple(
            (ack + _delta(int(left), raw_ack), ack + _delta(int(right), raw_ack))
            for left, right in row["sack"][: min(count, MAX_SACK_BLOCKS)]
        )
    return Segment(
        index=i,
        frame=int(row["frame"]),
        time=int(row["ts_ns"]) / 1e9,
        sender=sender,
        seq=seq,
        ack=ack,
        rel_seq=seq - bases[side_index],
        rel_ack=ack - bases[1 - side_index],
        flags=int(row["flags"]),
        window=int(row["window"]),
        length=int(row["payload_len"]),
        mss=int(row["mss"]) if row["mss"] >= 0 else None,
        wscale=int(row["wscale"]) if row["wscale"] >= 0 else None,
        sack_permitted=bool(row["sack_permitted"]),
        ts_val=int(row["ts_val"]) if row["has_ts"] else None,
        ts_ecr=int(row["ts_ecr"]) if row["has_ts"] else None,
        sack_blocks=sack_blocks,
        truncated=bool(row["truncated"]),
        bad_checksum=int(row["checksum"]) == CHECKSUM_BAD,
    )


def _delta(raw: int, raw_reference: int) -> int:
    """Signed distance from raw_reference to raw in modulo-2**32 sequence space."""
    d = (raw - raw_reference) & 0xFFFFFFFF
    return d - (1 << 32) if d >= (1 << 31) else d


def rebuild(batches: Iterable[np.ndarray]) -> Iterator[Connection]:
    """Group segment batches (in timestamp order) into connections; yield them ordered by id."""
    raise NotImplementedError
