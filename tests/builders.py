"""Build small conversations for unit tests of replay and checks, without a capture file.

    conv = Conversation()
    conv.client("S").server("SA").client("A").client("FA").server("A").server("FA").client("A")
    conn = conv.connection()

Each call sends one segment: flags in tcpdump letters (S=SYN, A=ACK, F=FIN, R=RST, P=PSH), with
``seq``/``ack`` following each side's next sequence number unless given, ``length`` payload bytes,
``dt`` seconds after the previous segment.  End-to-end behaviour is proven on real captures in
samples/; this builder is for the corners a unit test wants to pin down.
"""

from __future__ import annotations

import ipaddress

import numpy as np

from pcapcheck.connections import Connection, Endpoint
from pcapcheck.segments import ACK, FIN, PSH, RST, SYN, URG, empty_batch

LETTERS = {"S": SYN, "A": ACK, "F": FIN, "R": RST, "P": PSH, "U": URG}


def _addr16(addr: str) -> bytes:
    ip = ipaddress.ip_address(addr)
    return ip.packed if ip.version == 6 else b"\x00" * 10 + b"\xff\xff" + ip.packed


class Conversation:
    def __init__(
        self,
        client: tuple[str, int] = ("198.18.0.1", 40000),
        server: tuple[str, int] = ("198.18.0.2", 8080),
        client_isn: int = 1000,
        server_isn: int = 5000,
        start: float = 1_700_000_000.0,
    ):
        self.endpoints = (Endpoint(*client), Endpoint(*server))
        self.next_seq = [client_isn, server_isn]
        self.isn = [client_isn, server_isn]
        self.time = start
        self.frame = 0
        self.records: list[dict] = []

    def client(self, flags: str, **kw) -> "Conversation":
        return self.send(0, flags, **kw)

    def server(self, flags: str, **kw) -> "Conversation":
        return self.send(1, flags, **kw)

    def skip_frame(self, n: int = 1) -> "Conversation":
        """Frames that belong to other traffic (frame numbers are global)."""
        self.frame += n
        return self

    def send(
        self,
        side: int,
        flags: str,
        *,
        length: int = 0,
        seq: int | None = None,
        ack: int | None = None,
        dt: float = 0.001,
        window: int = 64240,
        mss: int | None = None,
        wscale: int | None = None,
        sack_permitted: bool = False,
        ts: tuple[int, int] | None = None,
    ) -> "Conversation":
        bits = 0
        for letter in flags:
            bits |= LETTERS[letter]
        seq = self.next_seq[side] if seq is None else seq
        if ack is None:
            ack = self.next_seq[1 - side] if bits & ACK else 0
        consumed = length + (1 if bits & SYN else 0) + (1 if bits & FIN else 0)
        self.next_seq[side] = max(self.next_seq[side], seq + consumed)
        self.time += dt
        self.frame += 1
        self.records.append(
            dict(
                side=side, flags=bits, seq=seq, ack=ack, length=length, time=self.time, frame=self.frame,
                window=window, mss=mss, wscale=wscale, sack_permitted=sack_permitted, ts=ts,
            )
        )
        return self

    def rows(self) -> np.ndarray:
        batch = empty_batch(len(self.records))
        for i, r in enumerate(self.records):
            src, dst = self.endpoints[r["side"]], self.endpoints[1 - r["side"]]
            row = batch[i]
            row["frame"] = r["frame"]
            row["file_frame"] = r["frame"]
            row["ts_ns"] = round(r["time"] * 1e9)
            row["ip_version"] = ipaddress.ip_address(src.addr).version
            row["src"] = np.frombuffer(_addr16(src.addr), dtype=np.uint8)
            row["dst"] = np.frombuffer(_addr16(dst.addr), dtype=np.uint8)
            row["ttl"] = 64
            row["sport"], row["dport"] = src.port, dst.port
            row["seq"] = r["seq"] & 0xFFFFFFFF
            row["ack"] = r["ack"] & 0xFFFFFFFF
            row["flags"] = r["flags"]
            row["window"] = r["window"]
            row["payload_len"] = r["length"]
            if r["mss"] is not None:
                row["mss"] = r["mss"]
            if r["wscale"] is not None:
                row["wscale"] = r["wscale"]
            row["sack_permitted"] = r["sack_permitted"]
            if r["ts"] is not None:
                row["has_ts"] = True
                row["ts_val"], row["ts_ecr"] = r["ts"]
        return batch

    def connection(self, id: int = 1, incarnation: int = 1, previous_id: int | None = None) -> Connection:
        """The Connection the rebuilder would make, built directly (seq numbers already unwrapped)."""
        rows = self.rows()
        saw_syn = [any(r["side"] == s and r["flags"] & SYN for r in self.records) for s in (0, 1)]
        flags_seen = 0
        for r in self.records:
            flags_seen |= r["flags"]
        return Connection(
            id=id,
            client=self.endpoints[0],
            server=self.endpoints[1],
            incarnation=incarnation,
            roles_inferred=not saw_syn[0],
            rows=rows,
            sender=np.array([r["side"] for r in self.records], dtype=np.uint8),
            seq=np.array([r["seq"] for r in self.records], dtype=np.int64),
            ack=np.array([r["ack"] for r in self.records], dtype=np.int64),
            client_isn=self.isn[0] if saw_syn[0] else None,
            server_isn=self.isn[1] if saw_syn[1] else None,
            previous_id=previous_id,
            flags_seen=flags_seen,
        )
