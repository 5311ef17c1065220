"""The traffic the benchmark capture is made of: many short request/response TCP connections.

Run inside the private network namespaces that ``make_capture.py`` creates, never elsewhere:

    python3 load.py server --address 198.18.0.2 --seconds 600
    python3 load.py client --server 198.18.0.2 --connections 10000 --first 0 --seed 1

Each connection is one ``Exchange``: connect, send a small request, receive a response, close.
Who closes first varies the way it does in real test runs, so the capture holds every kind of
teardown a Linux stack produces (RFC 9293 §3.6):

- ``client``: the client reads the whole response and closes first (active close on the client);
- ``server``: the server sends the response and closes at once; the client closes on EOF;
- ``half``:   the client shuts down its sending side after the request (HTTP/1.0 style half-close);
- ``abort``:  the client closes with SO_LINGER 0, which sends RST instead of FIN.

The request's first line tells the server what to do: ``<request bytes> <response bytes> <close>\\n``.
"""

from __future__ import annotations

import argparse
import random
import selectors
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass

# Several listening ports spread the 4-tuples, so a long run reuses a tuple in TIME-WAIT rarely.
SERVER_PORTS = tuple(range(8080, 8088))
CLOSES = ("client", "server", "half", "abort")
# Roughly what a suite of HTTP-ish integration tests does: mostly tidy closes, a few resets.
CLOSE_WEIGHTS = (45, 40, 12, 3)
HEADER_MAX = 64


@dataclass(frozen=True, slots=True)
class Exchange:
    request_len: int
    response_len: int
    close: str
    port: int

    def request(self) -> bytes:
        header = f"{self.request_len} {self.response_len} {self.close}\n".encode()
        return header + b"q" * max(0, self.request_len - len(header))


def exchange_for(index: int, seed: int) -> Exchange:
    """The exchange of connection number ``index``; the same index and seed always give the same one."""
    rng = random.Random(seed * 1_000_003 + index)
    request_len = rng.randint(40, 300)
    # Most responses fit one segment; some carry a few KB, i.e. several full-size segments.
    response_len = rng.randint(2_000, 8_000) if rng.random() < 0.08 else rng.randint(64, 600)
    close = rng.choices(CLOSES, weights=CLOSE_WEIGHTS)[0]
    return Exchange(request_len, response_len, close, SERVER_PORTS[index % len(SERVER_PORTS)])


def parse_header(line: bytes) -> tuple[int, int, str]:
    request_len, response_len, close = line.decode().split()
    if close not in CLOSES:
        raise ValueError(f"unknown close mode {close!r}")
    return int(request_len), int(response_len), close


# --------------------------------------------------------------------------------------- client


def run_exchange(ex: Exchange, server: str, timeout: float) -> None:
    with socket.create_connection((server, ex.port), timeout=timeout) as sock:
        sock.sendall(ex.request())
        if ex.close == "half":
            sock.shutdown(socket.SHUT_WR)
        received = 0
        if ex.close in ("server", "half"):
            # The server closes first: read until its FIN.
            while chunk := sock.recv(65536):
                received += len(chunk)
        else:
            while received < ex.response_len:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += len(chunk)
        if ex.close == "abort":
            # linger on, timeout 0: close() discards the connection with RST (RFC 9293 §3.10.4 ABORT).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class StopFlag:
    """Set by SIGTERM: the client finishes the exchange in flight, then reports its counts."""

    raised = False

    @classmethod
    def set(cls, *_: object) -> None:
        cls.raised = True


def run_client(server: str, first: int, connections: int, seed: int, seconds: float) -> tuple[int, int]:
    """Make ``connections`` exchanges one after the other; returns (completed, failed)."""
    deadline = time.monotonic() + seconds
    done = failed = 0
    for index in range(first, first + connections):
        if StopFlag.raised or time.monotonic() > deadline:
            break
        try:
            run_exchange(exchange_for(index, seed), server, timeout=5.0)
            done += 1
        except OSError:
            failed += 1
    return done, failed


# --------------------------------------------------------------------------------------- server


@dataclass(slots=True)
class ServerConn:
    sock: socket.socket
    inbuf: bytearray
    request_len: int = -1
    response_len: int = 0
    close: str = ""
    outbuf: bytes = b""
    responded: bool = False
    peer_closed: bool = False


class Server:
    """A single-threaded selectors server; several processes share the ports with SO_REUSEPORT."""

    def __init__(self, address: str) -> None:
        self.selector = selectors.DefaultSelector()
        for port in SERVER_PORTS:
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            lsock.bind((address, port))
            lsock.listen(4096)
            lsock.setblocking(False)
            self.selector.register(lsock, selectors.EVENT_READ, None)

    def serve(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data is None:
                    self.accept(key.fileobj)
                else:
                    self.service(key.data)

    def accept(self, lsock) -> None:
        for _ in range(64):  # drain the backlog a little at a time so reads are not starved
            try:
                sock, _ = lsock.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, ServerConn(sock, bytearray()))

    def finish(self, conn: ServerConn) -> None:
        self.selector.unregister(conn.sock)
        conn.sock.close()

    def service(self, conn: ServerConn) -> None:
        if conn.outbuf:
            self.flush(conn)
            return
        try:
            chunk = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:  # reset by an aborting client
            self.finish(conn)
            return
        if not chunk:
            conn.peer_closed = True
        conn.inbuf += chunk
        if conn.request_len < 0 and b"\n" in conn.inbuf[:HEADER_MAX]:
            line = bytes(conn.inbuf[: conn.inbuf.index(b"\n")])
            conn.request_len, conn.response_len, conn.close = parse_header(line)
        if conn.request_len < 0 or len(conn.inbuf) < conn.request_len:
            if conn.peer_closed:
                self.finish(conn)
            return
        if not conn.responded:
            if conn.close == "half" and not conn.peer_closed:
                return  # a half-closing client is answered once its FIN arrived
            conn.responded = True
            conn.outbuf = b"r" * conn.response_len
            self.flush(conn)
            return
        if conn.peer_closed:
            self.finish(conn)

    def flush(self, conn: ServerConn) -> None:
        try:
            sent = conn.sock.send(conn.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self.finish(conn)
            return
        conn.outbuf = conn.outbuf[sent:]
        if conn.outbuf:
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return
        self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
        if conn.close in ("server", "half") or conn.peer_closed:
            self.finish(conn)


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    srv = sub.add_parser("server")
    srv.add_argument("--address", required=True)
    srv.add_argument("--seconds", type=float, default=600.0)
    cli = sub.add_parser("client")
    cli.add_argument("--server", required=True)
    cli.add_argument("--connections", type=int, required=True)
    cli.add_argument("--first", type=int, default=0)
    cli.add_argument("--seed", type=int, default=1)
    cli.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.role == "server":
        server = Server(args.address)
        print("ready", flush=True)
        server.serve(args.seconds)
        return 0
    signal.signal(signal.SIGTERM, StopFlag.set)
    done, failed = run_client(args.server, args.first, args.connections, args.seed, args.seconds)
    print(f"done {done} failed {failed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
