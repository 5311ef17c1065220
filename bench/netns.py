"""A private pair of network namespaces joined by one veth link, with no route anywhere else.

    with namespace_pair(f"pcb-{os.getpid()}") as pair:
        subprocess.run(pair.client_exec(["ping", "-c1", pair.server_ip]))

The client side is 198.18.0.1/30 and the server side 198.18.0.2/30 (RFC 2544 benchmarking range):
neither namespace has a default route, so no packet can leave the pair.  Both namespaces, and with
them the veth link, are always deleted on the way out, along with any process still inside them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CLIENT_IP = "198.18.0.1"
SERVER_IP = "198.18.0.2"
PREFIX = 30


class NamespaceError(RuntimeError):
    """Setting up the namespace pair failed (not root, iproute2 missing, name taken)."""


@dataclass(frozen=True, slots=True)
class NamespacePair:
    client_ns: str
    server_ns: str
    client_if: str  # the veth end inside the client namespace: the capture point
    server_if: str
    client_ip: str = CLIENT_IP
    server_ip: str = SERVER_IP

    def client_exec(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.client_ns, *argv]

    def server_exec(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.server_ns, *argv]


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def in_ns(ns: str, *argv: str, check: bool = True) -> None:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)} in {ns}: {done.stderr.strip()}")


def tune(ns: str, ifname: str) -> None:
    # Segments as they would be on a wire: no TSO/GSO super-packets, no GRO merging on receive.
    if shutil.which("ethtool"):
        in_ns(ns, "ethtool", "-K", ifname, "tso", "off", "gso", "off", "gro", "off", check=False)
    # Room for hundreds of thousands of short connections: wide ephemeral range, TIME-WAIT reuse
    # for outgoing connections (Linux tcp_tw_reuse, RFC 6191-style timestamps check), deep backlogs.
    for key, value in (
        ("net.ipv4.ip_local_port_range", "1024 65535"),
        ("net.ipv4.tcp_tw_reuse", "1"),
        ("net.core.somaxconn", "8192"),
        ("net.ipv4.tcp_max_syn_backlog", "8192"),
        ("net.ipv6.conf.all.disable_ipv6", "1"),  # keeps IPv6 ND/MLD chatter out of the capture
    ):
        in_ns(ns, "sysctl", "-q", "-w", f"{key}={value}", check=False)


def kill_inside(ns: str) -> None:
    """End whatever is still running in ``ns`` (only processes this benchmark started live there)."""
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    for pid in (int(p) for p in done.stdout.split() if p.isdigit()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def delete(ns: str) -> None:
    kill_inside(ns)
    for _ in range(20):  # bounded: a namespace with a dying process inside can take a moment
        if subprocess.run(["ip", "netns", "delete", ns], capture_output=True).returncode == 0:
            return
        if ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout:
            return
        time.sleep(0.1)


@contextmanager
def namespace_pair(tag: str) -> Iterator[NamespacePair]:
    """Create ``<tag>-c`` and ``<tag>-s`` joined by veth ``<tag>-c``/``<tag>-s``; delete them afterwards."""
    if os.geteuid() != 0:
        raise NamespaceError("network namespaces need root (run make_capture.py as root)")
    if shutil.which("ip") is None:
        raise NamespaceError("'ip' (iproute2) not found")
    pair = NamespacePair(f"{tag}-c", f"{tag}-s", f"{tag}-c", f"{tag}-s")
    if len(pair.client_if) > 15:
        raise NamespaceError(f"interface name {pair.client_if!r} longer than 15 characters")
    created: list[str] = []
    try:
        for ns in (pair.client_ns, pair.server_ns):
            ip("netns", "add", ns)
            created.append(ns)
        ip("link", "add", pair.client_if, "type", "veth", "peer", "name", pair.server_if)
        ip("link", "set", pair.client_if, "netns", pair.client_ns)
        ip("link", "set", pair.server_if, "netns", pair.server_ns)
        for ns, ifname, addr in (
            (pair.client_ns, pair.client_if, pair.client_ip),
            (pair.server_ns, pair.server_if, pair.server_ip),
        ):
            in_ns(ns, "ip", "addr", "add", f"{addr}/{PREFIX}", "dev", ifname)
            in_ns(ns, "ip", "link", "set", "lo", "up")
            in_ns(ns, "ip", "link", "set", ifname, "up")
            tune(ns, ifname)
        yield pair
    finally:
        for ns in created:
            delete(ns)
        # If moving the link into a namespace failed, the veth is still in ours: remove it too.
        subprocess.run(["ip", "link", "delete", pair.client_if], capture_output=True)
