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

from .segments import Segment, Side


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

    def segments(self, indices: Iterable[int] | None = None) -> Iterator[Segment]:
        """Segment objects for all rows, or only for ``indices`` (the fast replay asks for few)."""
        raise NotImplementedError  # filled by the connection rebuilder


def rebuild(batches: Iterable[np.ndarray]) -> Iterator[Connection]:
    """Group segment batches (in timestamp order) into connections; yield them ordered by id."""
    raise NotImplementedError
