"""Make a large, realistic benchmark capture from real Linux TCP traffic (run as root).

    python3 bench/make_capture.py --packets 1000000 --out bench/work/1m.pcap
    python3 bench/make_capture.py --shape 259k --out bench/work/259k.pcap

A private namespace pair joined by veth (198.18.0.0/30, no route out; see netns.py) hosts a server
and several client processes (load.py) making many short connections; tcpdump captures the client's
veth with snaplen 128 until ``--packets`` were captured (``tcpdump -c``).  ``--shape 259k`` instead
makes exactly 25,000 connections (about 259k packets, the shape of the capture the targets were set
on) and stops the capture once they are all closed.  The namespaces are deleted however it ends.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from netns import NamespaceError, NamespacePair, namespace_pair  # noqa: E402

SHAPES = {"259k": 25_000}  # preset -> number of connections
# Conservative lower bound of packets per connection, used to size the clients' budget in -c mode.
MIN_PACKETS_PER_CONNECTION = 5


class CaptureFailed(RuntimeError):
    pass


@dataclass(slots=True)
class CaptureStats:
    out: str
    packets: int = 0
    dropped: int = 0
    connections: int = 0
    failed: int = 0
    seconds: float = 0.0
    bytes: int = 0
    notes: list[str] = field(default_factory=list)


class LineReader:
    """Collects a child's output lines on a thread, so waiting on it can have a timeout."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.seen = threading.Event()
        self.thread = threading.Thread(target=self.pump, args=(stream,), daemon=True)
        self.thread.start()

    def pump(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))
            self.seen.set()

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.lines):
                return True
            self.seen.wait(0.05)
            self.seen.clear()
        return False


def start_tcpdump(pair: NamespacePair, out: Path, limit: int, snaplen: int) -> tuple[subprocess.Popen, LineReader]:
    argv = [
        "tcpdump", "-n", "-i", pair.client_if, "-w", str(out), "-s", str(snaplen), "-c", str(limit),
        "-B", "131072",  # 128 MiB kernel buffer: a burst of short connections must not be dropped
        "-Z", "root",  # keep write access to bench/work
    ]  # fmt: skip
    proc = subprocess.Popen(pair.client_exec(argv), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    reader = LineReader(proc.stderr)
    if not reader.wait_for("listening on", timeout=15):
        proc.kill()
        raise CaptureFailed("tcpdump did not start: " + " | ".join(reader.lines[-3:]))
    return proc, reader


def start_servers(pair: NamespacePair, count: int, seconds: float) -> list[subprocess.Popen]:
    argv = [sys.executable, str(HERE / "load.py"), "server", "--address", pair.server_ip, "--seconds", str(seconds)]
    servers = [
        subprocess.Popen(pair.server_exec(argv), stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    for proc in servers:
        if proc.stdout.readline().strip() != "ready":
            raise CaptureFailed("load server did not start")
    return servers


def start_clients(
    pair: NamespacePair, count: int, connections: int, seed: int, seconds: float
) -> list[subprocess.Popen]:
    share, rest = divmod(connections, count)
    clients, first = [], 0
    for i in range(count):
        n = share + (1 if i < rest else 0)
        argv = [
            sys.executable, str(HERE / "load.py"), "client", "--server", pair.server_ip,
            "--connections", str(n), "--first", str(first), "--seed", str(seed), "--seconds", str(seconds),
        ]  # fmt: skip
        clients.append(subprocess.Popen(pair.client_exec(argv), stdout=subprocess.PIPE, text=True))
        first += n
    return clients


def tcpdump_counts(lines: list[str]) -> tuple[int, int]:
    """(captured, dropped by kernel) from tcpdump's closing statistics."""
    text = "\n".join(lines)
    captured = re.search(r"(\d+) packets? captured", text)
    dropped = re.search(r"(\d+) packets? dropped by kernel", text)
    return (int(captured.group(1)) if captured else 0, int(dropped.group(1)) if dropped else 0)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_capture(
    out: Path,
    packets: int,
    connections: int | None = None,
    clients: int = 3,
    servers: int = 1,
    seed: int = 1,
    snaplen: int = 128,
    max_seconds: float | None = None,
    progress=None,
) -> CaptureStats:
    """Capture ``packets`` packets (or, with ``connections``, that many whole connections) into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # ~3k connections/s is a pessimistic rate on 2 busy cores; never run unbounded.
    if max_seconds is None:
        max_seconds = 60 + (connections or packets / 10) / 1_000
    budget = connections if connections is not None else packets // MIN_PACKETS_PER_CONNECTION + 1
    stats = CaptureStats(out=str(out))
    started = time.monotonic()
    with namespace_pair(f"pcb-{os.getpid()}") as pair:
        tcpdump, tcpdump_err = start_tcpdump(pair, out, packets, snaplen)
        running: list[subprocess.Popen] = [tcpdump]
        try:
            running += start_servers(pair, servers, max_seconds + 30)
            load = start_clients(pair, clients, budget, seed, max_seconds)
            running += load
            deadline = started + max_seconds
            next_report = time.monotonic() + 5
            while time.monotonic() < deadline:
                if tcpdump.poll() is not None:
                    break  # -c reached
                if all(c.poll() is not None for c in load):
                    time.sleep(1.0)  # let the last FINs, ACKs and RSTs reach the capture
                    break
                if progress and time.monotonic() > next_report:
                    size = out.stat().st_size if out.exists() else 0
                    progress(f"{time.monotonic() - started:6.0f} s  {size / 1e6:8.1f} MB written")
                    next_report += 5
                time.sleep(0.2)
            else:
                stats.notes.append(f"stopped by the {max_seconds:.0f} s time limit")
            for proc in load:
                stop(proc)
            # SIGINT makes tcpdump flush its buffer and print its statistics.
            stop(tcpdump, signal.SIGINT)
            tcpdump_err.thread.join(5)
            for proc in load:
                match = re.search(r"done (\d+) failed (\d+)", proc.stdout.read() if proc.stdout else "")
                if match:
                    stats.connections += int(match.group(1))
                    stats.failed += int(match.group(2))
        finally:
            for proc in running:
                stop(proc, timeout=5)
    stats.packets, stats.dropped = tcpdump_counts(tcpdump_err.lines)
    stats.seconds = time.monotonic() - started
    stats.bytes = out.stat().st_size if out.exists() else 0
    if connections is None and stats.packets < packets:
        stats.notes.append(f"only {stats.packets} of {packets} packets captured")
    if stats.dropped:
        stats.notes.append(f"{stats.dropped} packets dropped by the kernel: the capture has gaps")
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, help="stop after this many packets (tcpdump -c)")
    parser.add_argument("--shape", choices=sorted(SHAPES), help="preset: 259k = 25,000 whole connections")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--clients", type=int, default=3, help="client processes (default 3)")
    parser.add_argument("--servers", type=int, default=1, help="server processes (default 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snaplen", type=int, default=128)
    parser.add_argument("--max-seconds", type=float, help="hard time limit (default from the size)")
    args = parser.parse_args(argv)
    if (args.packets is None) == (args.shape is None):
        parser.error("give exactly one of --packets N or --shape")
    if args.packets is not None and args.packets < 1:
        parser.error("--packets must be positive")
    connections = SHAPES[args.shape] if args.shape else None
    # With a shape, -c is only a safety net far above the expected count.
    packets = args.packets if args.packets is not None else connections * 40
    try:
        stats = make_capture(
            args.out, packets, connections, args.clients, args.servers, args.seed, args.snaplen,
            args.max_seconds, progress=lambda line: print(line, file=sys.stderr, flush=True),
        )  # fmt: skip
    except (NamespaceError, CaptureFailed, OSError) as err:
        print(f"make_capture: error: {err}", file=sys.stderr)
        return 2
    print(
        f"{stats.out}: {stats.packets} packets, {stats.connections} connections "
        f"made ({stats.failed} failed), {stats.bytes / 1e6:.1f} MB in {stats.seconds:.1f} s, "
        f"{stats.dropped} dropped by kernel"
    )
    for note in stats.notes:
        print(f"make_capture: note: {note}", file=sys.stderr)
    return 0 if stats.packets else 2


if __name__ == "__main__":
    sys.exit(main())
