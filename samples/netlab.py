"""netlab: a throw-away network of Linux namespaces for making sample captures from a real TCP stack.

The lab is two namespaces joined by a veth pair (or three, with a router in the middle), addressed
from the benchmarking ranges 198.18.0.0/15 and fd00::/8 only, with **no default route**: nothing a
scenario does can leave the machine.  Everything is torn down in ``finally``, also on Ctrl-C.

Quick use (run as root)::

    from netlab import Lab

    def server(lab_addr, port):                       # runs inside the server namespace
        import socket
        s = socket.create_server((lab_addr, port))
        conn, _ = s.accept(); conn.recv(100); conn.close()

    with Lab("demo") as lab:                          # namespaces pcc-<pid>-<n>-client / -server
        cap = lab.capture("client", "/tmp/demo.pcap") # returns once tcpdump is really listening
        srv = lab.spawn("server", server, lab.addr("server"), 8080)
        lab.wait_listening("server", 8080)
        lab.call("client", my_client_fn, ...)         # spawn + join, returns fn's return value
        srv.join()
        lab.ss("client", "after the close")           # ss -tan, also recorded in lab.snapshots
        cap.stop()                                    # or let the Lab stop it on exit

Namespaces are addressed by *role*: "client", "server" and, with ``Lab(router=True)``, "router".

===============  ==========================  ==========================  =====================
role             interface(s)                IPv4                        IPv6
===============  ==========================  ==========================  =====================
client           eth0                        198.18.0.1/24               fd00::1/64
server (direct)  eth0                        198.18.0.2/24               fd00::2/64
router           eth0 (client side),         198.18.0.254/24,            fd00::fe/64,
                 eth1 (server side)          198.18.1.254/24             fd00:1::fe/64
server (routed)  eth0                        198.18.1.2/24               fd00:1::2/64
===============  ==========================  ==========================  =====================

With ``Lab(vlan=100)`` the addresses sit on ``eth0.100`` (802.1Q) and ``lab.iface(role)`` still
names the parent ``eth0``, so a capture there shows the tags.

Functions passed to ``spawn``/``call`` run in a *forked* child that has entered the namespace with
setns(2): they may be closures or lambdas, take any arguments, and use ``lab.event()`` /
``lab.barrier(n)`` objects (multiprocessing primitives created before the fork) to synchronise.
Their return value (picklable) comes back from ``Peer.join()``; an exception in the child is
re-raised in the parent as ``LabError`` carrying the child's traceback.

Offloads (TSO/GSO/GRO, checksum) are switched off with ethtool when it is installed, so a capture
shows the segments the stack really sent, with valid checksums.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/var/run/netns")

# Address plan: see the module docstring.  Only 198.18.0.0/15 and fd00::/8, never a default route.
_DIRECT = {
    "client": {"eth0": ("198.18.0.1/24", "fd00::1/64")},
    "server": {"eth0": ("198.18.0.2/24", "fd00::2/64")},
}
_ROUTED = {
    "client": {"eth0": ("198.18.0.1/24", "fd00::1/64")},
    "router": {"eth0": ("198.18.0.254/24", "fd00::fe/64"), "eth1": ("198.18.1.254/24", "fd00:1::fe/64")},
    "server": {"eth0": ("198.18.1.2/24", "fd00:1::2/64")},
}
_ROUTES = {  # routed lab only: each end reaches the other's subnet through the router, nothing else
    "client": [("198.18.1.0/24", "198.18.0.254"), ("fd00:1::/64", "fd00::fe")],
    "server": [("198.18.0.0/24", "198.18.1.254"), ("fd00::/64", "fd00:1::fe")],
}

_lab_counter = itertools.count(1)
_mp = multiprocessing.get_context("fork")


class LabError(RuntimeError):
    """A lab command or a peer function failed; the message says which and why."""


def _run(cmd: list[str], check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def _peer_main(netns: Path, fn: Callable, args: tuple, kwargs: dict, pipe) -> None:
    # Runs in the forked child: enter the namespace, run fn, ship back its result or traceback.
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _setns(netns)
        result = fn(*args, **kwargs)
        pipe.send(("ok", result))
    except BaseException:  # noqa: BLE001 - everything must reach the parent
        pipe.send(("error", traceback.format_exc()))
    finally:
        pipe.close()


@dataclass
class Peer:
    """A function running in a namespace (a forked child process)."""

    name: str
    process: Any
    pipe: Any
    _outcome: tuple | None = None

    def join(self, timeout: float = 30.0) -> Any:
        """Wait for the function to return; give its return value or raise LabError."""
        if self._outcome is None:
            if not self.pipe.poll(timeout):
                self.kill()
                raise LabError(f"peer {self.name} did not finish within {timeout} s")
            try:
                self._outcome = self.pipe.recv()
            except EOFError:
                self._outcome = ("error", f"peer {self.name} died (exit code {self.process.exitcode})")
            self.process.join(5)
        kind, value = self._outcome
        if kind == "error":
            raise LabError(f"peer {self.name} failed:\n{value}")
        return value

    def alive(self) -> bool:
        return self.process.is_alive()

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


@dataclass
class Capture:
    """A running tcpdump or dumpcap; ``stop()`` ends it cleanly (SIGINT) so the file is complete."""

    path: Path
    process: subprocess.Popen
    tool: str
    stderr_lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def stop(self, settle: float = 0.3) -> Path:
        """Give in-flight packets ``settle`` seconds, then stop and return the capture path."""
        if self.process.poll() is None:
            time.sleep(settle)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        return self.path


@dataclass(frozen=True)
class Snapshot:
    """The kernel's own view of its sockets at a moment a scenario chose (``ss -tan``)."""

    moment: str
    namespace: str  # role: client | server | router
    output: str


class Lab:
    """Namespaces joined by veth, addresses from 198.18.0.0/15 and fd00::/8, no route out.

    ``Lab(name, router=False, vlan=None, offloads=False)``: ``router=True`` puts a forwarding
    namespace between client and server (a "middle" vantage point and a place for FORWARD drops);
    ``vlan=N`` carries the traffic 802.1Q-tagged with VLAN id N; ``offloads=True`` leaves
    TSO/GSO/checksum offload on (captures then show super-segments and unfinished checksums).
    """

    def __init__(self, name: str = "lab", *, router: bool = False, vlan: int | None = None, offloads: bool = False):
        self.name = name
        self.router = router
        self.vlan = vlan
        self.offloads = offloads
        self.prefix = f"pcc-{os.getpid()}-{next(_lab_counter)}"
        self.plan = _ROUTED if router else _DIRECT
        self.snapshots: list[Snapshot] = []
        self.sysctls: dict[str, str] = {}  # "role:key" -> value, for the sample's [sample.sysctl]
        self._created: list[str] = []
        self._captures: list[Capture] = []
        self._peers: list[Peer] = []
        self._links: list[tuple[str, str, str, str]] = []

    # ---- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> "Lab":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop captures, kill peers, delete the namespaces (and with them every veth)."""
        for cap in self._captures:
            try:
                cap.stop(settle=0.0)
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        for peer in self._peers:
            peer.kill()
        for ns in reversed(self._created):
            _run(["ip", "netns", "del", ns], check=False)
        self._created.clear()

    def netns(self, role: str) -> str:
        """The real namespace name of a role (unique per process and lab)."""
        if role not in self.plan:
            raise LabError(f"no namespace '{role}' in this lab (have: {', '.join(self.plan)})")
        return f"{self.prefix}-{role}"

    def _build(self) -> None:
        for role in self.plan:
            ns = self.netns(role)
            _run(["ip", "netns", "add", ns])
            self._created.append(ns)
            self.run(role, "ip", "link", "set", "lo", "up")
            # No router solicitations, no autoconf: the lab must stay silent and unrouted.
            for key in ("net.ipv6.conf.all.accept_ra", "net.ipv6.conf.default.accept_ra"):
                self.run(role, "sysctl", "-qw", f"{key}=0")
        if self.router:
            self._veth("client", "eth0", "router", "eth0")
            self._veth("router", "eth1", "server", "eth0")
            self.run("router", "sysctl", "-qw", "net.ipv4.ip_forward=1")
            self.run("router", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        else:
            self._veth("client", "eth0", "server", "eth0")
        for role, ifaces in self.plan.items():
            for iface, (v4, v6) in ifaces.items():
                dev = iface
                if self.vlan is not None:
                    dev = f"{iface}.{self.vlan}"
                    try:
                        self.run(role, "ip", "link", "add", "link", iface, "name", dev, "type", "vlan", "id", str(self.vlan))
                    except LabError:
                        raise LabError("this kernel has no 802.1Q (vlan) links; use netlab.tag_vlan() on a capture") from None
                    if not self.offloads:
                        self._no_offloads(role, dev)
                    self.run(role, "ip", "link", "set", dev, "up")
                self.run(role, "ip", "addr", "add", v4, "dev", dev)
                self.run(role, "ip", "-6", "addr", "add", v6, "dev", dev, "nodad")
        for pair in self._links:
            self._static_neighbours(*pair)
        if self.router:
            for role, routes in _ROUTES.items():
                for prefix, via in routes:
                    self.run(role, "ip", "route", "add", prefix, "via", via)

    def _veth(self, role_a: str, if_a: str, role_b: str, if_b: str) -> None:
        self._links.append((role_a, if_a, role_b, if_b))
        self.run(role_a, "ip", "link", "add", if_a, "type", "veth", "peer", "name", if_b, "netns", self.netns(role_b))
        for role, iface in ((role_a, if_a), (role_b, if_b)):
            if not self.offloads:
                self._no_offloads(role, iface)
            self.run(role, "ip", "link", "set", iface, "up")

    def _mac(self, role: str, iface: str) -> str:
        return json.loads(self.run(role, "ip", "-j", "link", "show", "dev", iface))[0]["address"]

    def _static_neighbours(self, role_a: str, if_a: str, role_b: str, if_b: str) -> None:
        # Permanent ARP/ND entries: no resolution traffic, no first packet queued behind ND,
        # so timings in the captures are the TCP stack's own.
        for (me, my_if), (peer, peer_if) in (((role_a, if_a), (role_b, if_b)), ((role_b, if_b), (role_a, if_a))):
            mac = self._mac(peer, peer_if)
            dev = my_if if self.vlan is None else f"{my_if}.{self.vlan}"
            for address in self.plan[peer][peer_if]:
                self.run(me, "ip", "neigh", "replace", address.split("/")[0], "lladdr", mac, "nud", "permanent", "dev", dev)

    def _no_offloads(self, role: str, iface: str) -> None:
        if shutil.which("ethtool"):
            self.run(role, "ethtool", "-K", iface, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off", check=False)

    # ---- addresses -------------------------------------------------------------------------

    def addr(self, role: str, family: int = 4) -> str:
        """The role's address (IPv4 by default, ``family=6`` for IPv6) on its first interface."""
        if role not in self.plan:
            raise LabError(f"no namespace '{role}' in this lab")
        v4, v6 = next(iter(self.plan[role].values()))
        return (v4 if family == 4 else v6).split("/")[0]

    def iface(self, role: str) -> str:
        """The interface to capture on in a role (the parent interface when VLAN-tagged)."""
        return next(iter(self.plan[role]))

    # ---- commands --------------------------------------------------------------------------

    def run(self, role: str, *cmd: str, check: bool = True, timeout: float = 30.0) -> str:
        """Run a command inside a role's namespace; return its stdout (LabError on failure)."""
        return _run(["ip", "netns", "exec", self.netns(role), *cmd], check=check, timeout=timeout).stdout

    def sysctl(self, role: str, key: str, value: str | int) -> None:
        """Set a sysctl in one namespace and remember it for the sample's metadata."""
        self.run(role, "sysctl", "-qw", f"{key}={value}")
        self.sysctls[f"{role}:{key}"] = str(value)

    def iptables(self, role: str, *rule: str, family: int = 4) -> None:
        """``iptables`` (or ``ip6tables`` with family=6) inside a namespace, e.g.
        ``lab.iptables("server", "-I", "INPUT", "-p", "tcp", "--syn", "-j", "DROP")``."""
        self.run(role, "ip6tables" if family == 6 else "iptables", *rule)

    def drop_once(self, role: str, chain: str, *match: str, family: int = 4, size: int | None = None) -> list[str]:
        """Insert a rule that drops exactly ONE packet matching ``match`` in ``chain``, then matches nothing.

        It uses the quota match: the rule matches while its byte budget covers the packet, so a
        budget of one packet's length (``size``, default: a pure ACK with timestamps, 52 bytes IPv4,
        72 IPv6, plus slack less than a second packet) drops the first matching packet only.
        Returns the rule so the caller may delete it with ``lab.iptables(role, "-D", *rule)``.
        """
        size = size or (52 if family == 4 else 72)
        rule = [chain, *match, "-m", "quota", "--quota", str(size + 8), "-j", "DROP"]
        self.iptables(role, "-I", *rule, family=family)
        return rule

    def counters(self, role: str, chain: str = "INPUT", family: int = 4) -> str:
        """``iptables -L chain -nvx`` in a namespace: packet counts per rule, to see a drop happened."""
        return self.run(role, "ip6tables" if family == 6 else "iptables", "-L", chain, "-nvx")

    def ss(self, role: str, moment: str, *filters: str) -> str:
        """``ss -tan [filters]`` in a namespace, recorded in ``self.snapshots``; returns the text."""
        out = self.run(role, "ss", "-tan", *filters)
        self.snapshots.append(Snapshot(moment=moment, namespace=role, output=out.rstrip()))
        return out

    def wait_listening(self, role: str, port: int, timeout: float = 5.0) -> None:
        """Poll ``ss`` until something LISTENs on ``port`` in the namespace."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.run(role, "ss", "-Htln", f"sport = :{port}").strip():
                return
            time.sleep(0.02)
        raise LabError(f"nothing listening on port {port} in {role} after {timeout} s")

    def wait_state(self, role: str, state: str, port: int, timeout: float = 10.0) -> str:
        """Poll until a socket with local or remote ``port`` is in ``state`` (ss name, e.g. 'time-wait')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run(role, "ss", "-Htan", "state", state, f"( sport = :{port} or dport = :{port} )")
            if out.strip():
                return out
            time.sleep(0.02)
        raise LabError(f"no socket on port {port} in state {state} in {role} after {timeout} s")

    # ---- peers (socket programs) ----------------------------------------------------------

    def spawn(self, role: str, fn: Callable, *args: Any, **kwargs: Any) -> Peer:
        """Run ``fn(*args, **kwargs)`` in a forked child inside the role's namespace; return at once."""
        receiver, sender = _mp.Pipe(duplex=False)
        process = _mp.Process(
            target=_peer_main, args=(NETNS_DIR / self.netns(role), fn, args, kwargs, sender), daemon=True
        )
        process.start()
        sender.close()
        peer = Peer(name=f"{role}:{getattr(fn, '__name__', 'fn')}", process=process, pipe=receiver)
        self._peers.append(peer)
        return peer

    def call(self, role: str, fn: Callable, *args: Any, timeout: float = 30.0, **kwargs: Any) -> Any:
        """``spawn`` and ``join``: run fn in the namespace and return its result."""
        return self.spawn(role, fn, *args, **kwargs).join(timeout)

    @staticmethod
    def event():
        """An Event shared with peers (create it before spawning them)."""
        return _mp.Event()

    @staticmethod
    def barrier(parties: int):
        """A Barrier shared with peers (create it before spawning them)."""
        return _mp.Barrier(parties)

    # ---- capture ---------------------------------------------------------------------------

    def capture(
        self,
        role: str,
        path: str | Path,
        *,
        iface: str | None = None,
        bpf: str = "tcp",
        tool: str = "tcpdump",
        extra: list[str] | None = None,
        ready_timeout: float = 10.0,
    ) -> Capture:
        """Start tcpdump (pcap) or dumpcap (pcapng) in a namespace and return once it is capturing.

        ``iface`` defaults to ``lab.iface(role)``; "any" gives Linux cooked (SLL2) captures with
        tcpdump. ``bpf`` is the capture filter (default "tcp": no ARP/ND noise; with a VLAN lab use
        "vlan and tcp"). ``extra`` adds tool options, e.g. ["-C", "1", "-W", "4"] for a ring buffer.
        Readiness: the tool's own "listening on"/"Capturing on" line on stderr (it prints it after
        the socket is bound and the filter attached).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        iface = iface or self.iface(role)
        if tool == "tcpdump":
            # -Z root: do not drop privileges, so tcpdump may write (and rotate) files anywhere.
            cmd = ["tcpdump", "-n", "-i", iface, "-w", str(path), "-U", "--immediate-mode", "-Z", "root"]
            ready_marks = ("listening on",)
        elif tool == "dumpcap":
            cmd = ["dumpcap", "-n", "-i", iface, "-w", str(path)]
            if path.suffix == ".pcap":
                cmd.append("-P")  # dumpcap writes pcapng unless told otherwise
            ready_marks = ("Capturing on",)
        else:
            raise LabError(f"unknown capture tool '{tool}' (tcpdump or dumpcap)")
        cmd += list(extra or [])
        if tool == "dumpcap" and bpf:
            cmd += ["-f", bpf]
        elif bpf:
            cmd += [bpf]
        process = subprocess.Popen(
            ["ip", "netns", "exec", self.netns(role), *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        cap = Capture(path=path, process=process, tool=tool)
        ready = threading.Event()

        def read_stderr() -> None:
            for line in process.stderr:
                cap.stderr_lines.append(line.rstrip())
                if any(mark in line for mark in ready_marks):
                    ready.set()

        cap._reader = threading.Thread(target=read_stderr, daemon=True)
        cap._reader.start()
        self._captures.append(cap)
        if not ready.wait(ready_timeout):
            cap.stop(settle=0.0)
            raise LabError(f"{tool} in {role} not ready after {ready_timeout} s: {' | '.join(cap.stderr_lines)}")
        time.sleep(0.1)  # the ready line precedes the first poll of the ring; give it a moment
        return cap


# ---- small socket helpers for peer functions ----------------------------------------------


def tcp_socket(family: int = 4, *, port: int | None = None, addr: str = "", linger0: bool = False) -> socket.socket:
    """A TCP socket, optionally bound to a fixed local port (so expectations are readable)."""
    s = socket.socket(socket.AF_INET6 if family == 6 else socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if linger0:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    if port is not None:
        s.bind((addr, port))
    return s


def listener(addr: str, port: int, family: int = 4, backlog: int = 8) -> socket.socket:
    """A listening socket on addr:port (SO_REUSEADDR, so back-to-back scenarios can reuse the port)."""
    s = tcp_socket(family, port=port, addr=addr)
    s.listen(backlog)
    return s


def recv_until_eof(conn: socket.socket, limit: int = 1 << 20) -> bytes:
    """Read until the peer's FIN (or the limit); the data received."""
    chunks, total = [], 0
    while total < limit:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


# ---- capture post-processing --------------------------------------------------------------

_PCAP_MAGICS = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">", b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}
_LINKTYPE_ETHERNET = 1


def tag_vlan(src: str | Path, dst: str | Path, vid: int, pcp: int = 0) -> int:
    """Copy a classic pcap of Ethernet frames, inserting an 802.1Q tag (TPID 0x8100) into each frame.

    This kernel has no vlan links, bridge VLAN filtering or tc vlan action, so a tagged sample is
    a real capture with the tag added afterwards: every byte of IP and TCP, every timestamp and
    every frame number stays what the stack produced.  Returns the number of frames written.
    """
    import struct

    data = Path(src).read_bytes()
    endian = _PCAP_MAGICS.get(data[:4])
    if endian is None:
        raise LabError(f"{src}: not a classic pcap file (tag_vlan needs pcap, not pcapng)")
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype != _LINKTYPE_ETHERNET:
        raise LabError(f"{src}: link type {linktype} is not Ethernet")
    tag = struct.pack("!HH", 0x8100, (pcp << 13) | (vid & 0x0FFF))
    out = bytearray(data[:24])
    pos, frames = 24, 0
    while pos + 16 <= len(data):
        ts_sec, ts_frac, caplen, wirelen = struct.unpack(endian + "IIII", data[pos : pos + 16])
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if caplen >= 12:
            frame = frame[:12] + tag + frame[12:]
            caplen, wirelen = caplen + 4, wirelen + 4
        out += struct.pack(endian + "IIII", ts_sec, ts_frac, caplen, wirelen) + frame
        frames += 1
    Path(dst).write_bytes(bytes(out))
    return frames


# ---- samples: what a scenario hands back, checked and written as samples/<name>.toml ------------


@dataclass(frozen=True)
class Conn:
    """One expected connection, as a person reads it from the capture ([[expect.connections]])."""

    client: str  # "198.18.0.1:40001" or "[fd00::1]:40001"
    server: str
    client_final_state: str  # RFC 9293 state name, or UNKNOWN
    server_final_state: str
    close: str  # graceful | abortive | refused | incomplete | open
    incarnation: int = 1


@dataclass(frozen=True)
class Find:
    """One expected finding ([[expect.findings]]); frame is Wireshark's frame number."""

    rule: str
    connection: int
    endpoint: str  # client | server | none
    frame: int


@dataclass
class Sample:
    """Everything a scenario knows about the capture it made; make.py checks and writes it.

    ``outline`` is the capture as the person who wrote the expectations read it: one entry per
    frame, "<c|s>:<flags>" with flags from S F R P A in that order (e.g. "c:S", "s:SA", "c:FA"),
    "c" meaning sent by the client endpoint.  make.py compares it with the capture it got and
    retries the scenario when the real stack's timing produced a different packet sequence, so
    the frame numbers in ``findings`` always describe the capture that is stored.
    """

    name: str
    captures: list[Path]  # the files written (absolute, in the scenario's work folder)
    vantage: str  # client | server | middle
    description: str
    client: str  # the client endpoint (the outline's "c"; clients of other connections count too)
    outline: list[str]
    connections: list[Conn]
    findings: list[Find] = field(default_factory=list)
    sysctl: dict[str, str] = field(default_factory=dict)
    ss: list[Snapshot] = field(default_factory=list)
    analysis: dict[str, Any] = field(default_factory=dict)
    source: str = "linux"
    folder: bool = False  # a ring buffer: the files live in samples/<name>/


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Path], Sample]  # gets an empty work folder, returns the Sample
    source: str  # "linux" | "crafted"
    summary: str


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, source: str = "linux") -> Callable:
    """Register a scenario function ``fn(workdir: Path) -> Sample`` under ``name`` (see make.py)."""

    def register(fn: Callable[[Path], Sample]) -> Callable[[Path], Sample]:
        if name in SCENARIOS:
            raise LabError(f"scenario '{name}' registered twice")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        SCENARIOS[name] = Scenario(name=name, run=fn, source=source, summary=summary)
        return fn

    return register


@dataclass(frozen=True)
class Frame:
    """One TCP frame of a capture as tshark decodes it (relative seq/ack)."""

    number: int
    time: float
    src: str  # "addr:port" / "[addr]:port"
    dst: str
    flags: str  # letters from S F R P A, in that order
    seq: int
    ack: int
    length: int


_FLAG_BITS = (("S", 0x02), ("F", 0x01), ("R", 0x04), ("P", 0x08), ("A", 0x10))


def read_frames(paths: list[Path]) -> list[Frame]:
    """Decode TCP frames with tshark (several files merged by time with mergecap, as one timeline)."""
    paths = [Path(p) for p in paths]
    fields = ["frame.number", "frame.time_epoch", "ip.src", "ipv6.src", "ip.dst", "ipv6.dst",
              "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq", "tcp.ack", "tcp.len"]
    cmd = ["tshark", "-n", "-Y", "tcp", "-T", "fields", "-E", "separator=|"]
    for f in fields:
        cmd += ["-e", f]
    if len(paths) == 1:
        out = _run(cmd + ["-r", str(paths[0])]).stdout
    else:
        merge = subprocess.run(["mergecap", "-F", "pcapng", "-w", "-", *map(str, paths)], capture_output=True, check=True)
        proc = subprocess.run(cmd + ["-r", "-"], input=merge.stdout, capture_output=True, check=True)
        out = proc.stdout.decode()
    frames = []
    for line in out.splitlines():
        num, t, s4, s6, d4, d6, sp, dp, fl, seq, ack, ln = line.split("|")
        src = s4 if s4 else f"[{s6}]"
        dst = d4 if d4 else f"[{d6}]"
        bits = int(fl, 16)
        flags = "".join(letter for letter, bit in _FLAG_BITS if bits & bit)
        frames.append(Frame(int(num), float(t), f"{src}:{sp}", f"{dst}:{dp}", flags, int(seq or 0), int(ack or 0), int(ln or 0)))
    return frames


def _clients(client: str | set[str] | list[str]) -> set[str]:
    return {client} if isinstance(client, str) else set(client)


def outline_of(frames: list[Frame], client: str | set[str] | list[str]) -> list[str]:
    """'c:FLAGS' for a frame sent by a client endpoint (one, or the clients of all connections)."""
    clients = _clients(client)
    return [f"{'c' if f.src in clients else 's'}:{f.flags}" for f in frames]


def describe_frames(frames: list[Frame], client: str | set[str] | list[str]) -> str:
    """A tcpdump-like reading of the capture, one line per frame, for the sample's toml."""
    if not frames:
        return ""
    clients = _clients(client)
    t0 = frames[0].time
    lines = []
    for f in frames:
        arrow = "c>s" if f.src in clients else "s>c"
        lines.append(f"{f.number:3d} {f.time - t0:9.6f} {arrow} {f.flags:<4} seq={f.seq} ack={f.ack} len={f.length}")
    return "\n".join(lines)
