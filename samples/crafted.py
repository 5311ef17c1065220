"""Crafted-peer samples: TCP behaviours a Linux stack will not produce, spoken with raw packets.

Each scenario puts a *crafted peer* (raw IPv4 sockets, packets built with scapy) in one namespace
of a netlab ``Lab`` and, where the behaviour allows, a real Linux socket in the other.  The kernel
of the crafted side knows nothing of the crafted connection and would answer every packet with a
RST, so those RSTs are dropped by iptables in the crafted namespace; the crafted peer's own packets
carry the socket mark ``CRAFTED_MARK`` and pass (``silence_kernel_resets``).

Usage (root)::

    python3 samples/crafted.py                 # every scenario, into samples/
    python3 samples/crafted.py crafted-short-time-wait --out /tmp/x

``SCENARIOS`` maps a sample name to ``function(out_dir)`` for samples/make.py.  Every function writes
``<name>.pcap`` and ``<name>.toml``.  The expectations in the toml were written by a person reading
the capture (``tshark -r``); they stay valid because each scenario also declares the exact *shape*
of its capture (direction and flags of every frame); a new run that differs keeps the old
capture and toml and fails, so a regenerated capture can never sit next to stale expectations.
(tests/test_sample_metadata.py checks the committed captures against the declared shapes.)
"""

from __future__ import annotations

import os
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dpkt  # noqa: E402
from netlab import Lab, LabError, listener, recv_until_eof, tcp_socket  # noqa: E402

SAMPLES_DIR = Path(__file__).resolve().parent
CRAFTED_MARK = 0x2A  # SO_MARK on the crafted peer's raw socket: its RSTs pass the kernel-RST drop rule
SERVER_PORT = 8080
WINDOW = 64240

# TCP flag bits (RFC 9293 §3.1).
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, "A": ACK}


def _bits(flags: str) -> int:
    value = 0
    for letter in flags:
        value |= _LETTERS[letter]
    return value


def flag_text(bits: int) -> str:
    """tcpdump's letters: S F R P then '.' for ACK, so a SYN-ACK is 'S.'."""
    text = "".join(letter for bit, letter in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P")) if bits & bit)
    return text + ("." if bits & ACK else "")


# ---- the crafted peer --------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One segment the crafted peer received from its Linux (or crafted) partner."""

    flags: int
    seq: int
    ack: int
    payload: bytes
    options: tuple

    @property
    def end_seq(self) -> int:
        """First sequence number after this segment (SYN and FIN count one, RFC 9293 §3.4)."""
        return (self.seq + len(self.payload) + bool(self.flags & SYN) + bool(self.flags & FIN)) & 0xFFFFFFFF

    def has(self, flags: str) -> bool:
        return self.flags & _bits(flags) == _bits(flags)


class CraftedPeer:
    """A TCP endpoint with no TCB in the kernel: it sends exactly the segments it is told to.

    ``snd_nxt``/``rcv_nxt`` are only bookkeeping for the defaults of ``send``; nothing here
    retransmits, times out or answers by itself.  Runs inside a namespace (netlab peer function).
    """

    def __init__(self, local: str, lport: int, remote: str, rport: int, isn: int):
        from scapy.layers.inet import IP, TCP  # imported here: only the peer process needs scapy

        self._ip, self._tcp = IP, TCP
        self.local, self.lport, self.remote, self.rport = local, lport, remote, rport
        self.snd_nxt = isn & 0xFFFFFFFF
        self.rcv_nxt = 0
        self.ip_id = 0x1000
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.tx.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, CRAFTED_MARK)
        # A raw TCP socket gets a copy of every TCP segment the namespace receives.
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        self.sent_at: list[float] = []

    def close(self) -> None:
        self.tx.close()
        self.rx.close()

    def send(
        self,
        flags: str,
        payload: bytes = b"",
        *,
        seq: int | None = None,
        ack: int | None = None,
        options: list | None = None,
        window: int = WINDOW,
    ) -> int:
        """Send one segment; return its sequence number.  ``ack`` defaults to rcv_nxt when 'A' is set."""
        bits = _bits(flags)
        seq = self.snd_nxt if seq is None else seq & 0xFFFFFFFF
        if ack is None:
            ack = self.rcv_nxt if bits & ACK else 0
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        packet = self._ip(src=self.local, dst=self.remote, ttl=64, id=self.ip_id, flags="DF") / self._tcp(
            sport=self.lport,
            dport=self.rport,
            seq=seq,
            ack=ack & 0xFFFFFFFF,
            flags=bits,
            window=window,
            options=options or [],
        )
        if payload:
            packet = packet / payload
        self.tx.sendto(bytes(packet), (self.remote, 0))
        self.sent_at.append(time.monotonic())
        end = (seq + len(payload) + bool(bits & SYN) + bool(bits & FIN)) & 0xFFFFFFFF
        # A RST consumes no sequence space and may be sent anywhere on purpose.
        if not bits & RST and ((end - self.snd_nxt) & 0xFFFFFFFF) < (1 << 31):
            self.snd_nxt = end
        return seq

    def receive(self, want: Callable[[Received], bool] = lambda seg: True, timeout: float = 5.0) -> Received:
        """The next segment from the partner that satisfies ``want``; advances rcv_nxt over it."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"crafted peer {self.local}:{self.lport}: no expected segment within {timeout} s")
            self.rx.settimeout(left)
            try:
                data = self.rx.recv(65535)
            except socket.timeout:
                continue
            seg = self._parse(data)
            if seg is None:
                continue
            if self.rcv_nxt == 0 or ((seg.end_seq - self.rcv_nxt) & 0xFFFFFFFF) < (1 << 31):
                if not seg.flags & RST:
                    self.rcv_nxt = seg.end_seq
            if want(seg):
                return seg

    def quiet(self, seconds: float) -> list[Received]:
        """Listen without answering for ``seconds``; what arrived (rcv_nxt follows it)."""
        got: list[Received] = []
        deadline = time.monotonic() + seconds
        while True:
            try:
                got.append(self.receive(timeout=max(deadline - time.monotonic(), 0.0001)))
            except LabError:
                return got
            if time.monotonic() >= deadline:
                return got

    def _parse(self, data: bytes) -> Received | None:
        ip = dpkt.ip.IP(data)
        if socket.inet_ntoa(ip.src) != self.remote or not isinstance(ip.data, dpkt.tcp.TCP):
            return None
        tcp = ip.data
        if tcp.sport != self.rport or tcp.dport != self.lport:
            return None
        options = tuple(dpkt.tcp.parse_opts(tcp.opts))
        return Received(flags=tcp.flags, seq=tcp.seq, ack=tcp.ack, payload=bytes(tcp.data), options=options)

    # -- a few well-formed exchanges the scenarios share --------------------------------------

    def connect(self, options: list | None = None) -> Received:
        """Active open (RFC 9293 §3.5): SYN, wait for SYN-ACK, ACK it.  The SYN-ACK is returned."""
        self.send("S", options=options if options is not None else [("MSS", 1460)])
        synack = self.receive(lambda s: s.has("SA"))
        self.send("A")
        return synack

    def accept(self, options: list | None = None) -> Received:
        """Passive open: wait for a SYN, answer SYN-ACK, wait for the ACK.  The SYN is returned."""
        syn = self.receive(lambda s: s.has("S") and not s.flags & ACK)
        self.rcv_nxt = syn.end_seq
        self.send("SA", options=options if options is not None else [("MSS", 1460)])
        self.receive(lambda s: s.flags & ACK and s.ack == self.snd_nxt)
        return syn

    def send_data(self, payload: bytes) -> None:
        """Send data and wait until the partner has acknowledged all of it."""
        self.send("PA", payload)
        self.receive(lambda s: s.flags & ACK and s.ack == self.snd_nxt)

    def active_close(self) -> None:
        """FIN, wait for the partner's FIN (its ACK of ours may ride along), ACK it: TIME-WAIT."""
        self.send("FA")
        self.receive(lambda s: s.has("F"))
        self.send("A")


def _crafted(role_fn: Callable[[CraftedPeer], object], local: str, lport: int, remote: str, rport: int, isn: int):
    """Peer-function body: open a CraftedPeer, run the scenario's script on it, close it."""
    peer = CraftedPeer(local, lport, remote, rport, isn)
    try:
        return role_fn(peer)
    finally:
        peer.close()


def silence_kernel_resets(lab: Lab, role: str, port: int) -> None:
    """Drop the RSTs the crafted side's kernel sends for a port it has no socket on.

    The crafted peer's own RSTs carry CRAFTED_MARK and are not matched.
    """
    lab.iptables(
        role, "-A", "OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "--sport", str(port),
        "-m", "mark", "!", "--mark", str(CRAFTED_MARK), "-j", "DROP",
    )


# ---- Linux socket programs (run in the other namespace) ----------------------------------------


def linux_reading_server(addr: str, port: int, connections: int = 1, linger: float = 0.0) -> list[int]:
    """Accept ``connections`` connections one after the other; read each to EOF, wait, close."""
    with listener(addr, port) as lsock:
        lsock.settimeout(15)
        sizes = []
        for _ in range(connections):
            conn, _ = lsock.accept()
            with conn:
                conn.settimeout(15)
                sizes.append(len(recv_until_eof(conn)))
                time.sleep(linger)
        return sizes


# ---- capture shape and toml ----------------------------------------------------------------------


def capture_shape(path: Path, client_port: int) -> list[str]:
    """'c S', 's S.', ... one entry per frame: who sent it (by the client's port) and its flags."""
    shape = []
    with open(path, "rb") as handle:
        for _, buf in dpkt.pcap.Reader(handle):
            eth = dpkt.ethernet.Ethernet(buf)
            tcp = eth.data.data
            if not isinstance(tcp, dpkt.tcp.TCP):
                shape.append(type(tcp).__name__.lower())  # e.g. 'udp': an end-of-capture marker
                continue
            who = "c" if tcp.sport == client_port else "s"
            shape.append(f"{who} {flag_text(tcp.flags)}")
    return shape


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value)
    if "\n" in text:
        return '"""\n' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '\n"""'
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(key: str) -> str:
    return key if key.replace("-", "").replace("_", "").isalnum() else _toml_value(key)


def sample_toml(meta: dict, analysis: dict, connections: list[dict], findings: list[dict]) -> str:
    """The sample metadata file (format: see the samples README in the project brief)."""
    lines = ["[sample]"]
    for key in ("name", "capture", "source", "made_by", "vantage", "description", "kernel"):
        lines.append(f"{key} = {_toml_value(meta[key])}")
    if meta.get("sysctl"):
        lines += ["", "[sample.sysctl]"]
        lines += [f"{_toml_value(k)} = {_toml_value(v)}" for k, v in meta["sysctl"].items()]
    for snap in meta.get("ss", []):
        lines += ["", "[[sample.ss]]"]
        lines += [f"{k} = {_toml_value(snap[k])}" for k in ("moment", "namespace", "output")]
    if analysis:
        lines += ["", "[analysis]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in analysis.items()]
    for table, rows in (("expect.connections", connections), ("expect.findings", findings)):
        for row in rows:
            lines += ["", f"[[{table}]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"


# ---- scenarios -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One crafted sample: how to make it and what a person read in the capture."""

    name: str
    vantage: str  # where tcpdump ran
    client_port: int
    description: str
    shape: list[str]  # expected 'who flags' per frame; a run that differs writes no toml
    connections: list[dict]
    findings: list[dict]
    play: Callable[[Lab], None]  # runs the peers (capture already running)
    analysis: dict = field(default_factory=dict)
    bpf: str = "tcp"  # capture filter

    def make(self, out_dir: str | os.PathLike = SAMPLES_DIR) -> Path:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        pcap = out / f"{self.name}.pcap"
        # Capture beside the target and move it into place only once its shape is checked, so a
        # failed run never leaves a new capture next to the old expectations.
        fresh = out / f".{self.name}.new.pcap"
        try:
            with Lab(self.name) as lab:
                if (lab.addr("client"), lab.addr("server")) != (CLIENT, SERVER):
                    raise LabError(f"netlab's addresses changed; {self.name}'s expectations name {CLIENT}, {SERVER}")
                cap = lab.capture(self.vantage, fresh, bpf=self.bpf)
                self.play(lab)
                cap.stop()
                sysctls = dict(lab.sysctls)
                snapshots = list(lab.snapshots)
            shape = capture_shape(fresh, self.client_port)
            if shape != self.shape:
                raise LabError(
                    f"{self.name}: the capture's shape changed; expectations would be stale.\n"
                    f"  expected: {self.shape}\n  got:      {shape}"
                )
            fresh.replace(pcap)
        finally:
            fresh.unlink(missing_ok=True)
        meta = dict(
            name=self.name,
            capture=pcap.name,
            source="crafted",
            made_by=f"python3 samples/crafted.py {self.name}",
            vantage=self.vantage,
            description=self.description.strip(),
            kernel=platform.release(),
            sysctl=sysctls,
            ss=[dict(moment=s.moment, namespace=s.namespace, output=s.output) for s in snapshots],
        )
        toml_path = out / f"{self.name}.toml"
        toml_path.write_text(sample_toml(meta, self.analysis, self.connections, self.findings))
        return toml_path


CLIENT = "198.18.0.1"
SERVER = "198.18.0.2"


def _conn(id: int, cport: int, client_state: str, server_state: str, close: str, incarnation: int = 1) -> dict:
    return dict(
        id=id,
        client=f"{CLIENT}:{cport}",
        server=f"{SERVER}:{SERVER_PORT}",
        incarnation=incarnation,
        client_final_state=client_state,
        server_final_state=server_state,
        close=close,
    )


def _finding(rule: str, connection: int, endpoint: str, frame: int) -> dict:
    return dict(rule=rule, connection=connection, endpoint=endpoint, frame=frame)


def _with_linux_server(lab: Lab, cport: int, script: Callable[[CraftedPeer], object], isn: int, *,
                       connections: int = 1, linger: float = 0.0, moment: str = "at the end of the capture") -> None:
    """Linux listener in 'server', crafted client script in 'client'; ss of the server afterwards."""
    silence_kernel_resets(lab, "client", cport)
    server = lab.spawn("server", linux_reading_server, SERVER, SERVER_PORT, connections, linger)
    lab.wait_listening("server", SERVER_PORT)
    lab.call("client", _crafted, script, CLIENT, cport, SERVER, SERVER_PORT, isn, timeout=60)
    lab.ss("server", moment)
    server.join(30)


# crafted-option-not-negotiated ---------------------------------------------------------------


def _play_option_not_negotiated(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        peer.connect(options=[("MSS", 1460)])  # no SAckOK, no Timestamp, no WScale: nothing negotiated
        # RFC 7323 §3.2: timestamps may be sent only when both SYNs carried them.
        peer.send("PA", b"x" * 100, options=[("NOP", None), ("NOP", None), ("Timestamp", (1000, 0))])
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt)
        peer.send_data(b"y" * 100)
        peer.active_close()
        time.sleep(0.5)

    _with_linux_server(lab, 40005, script, isn=1_000_000)


# crafted-short-time-wait ---------------------------------------------------------------------


def _play_short_time_wait(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        isn = peer.snd_nxt
        peer.connect()
        peer.send_data(b"a" * 100)
        peer.active_close()  # the crafted client is now the TIME-WAIT side (RFC 9293 §3.6)
        time.sleep(1.0)
        # Same 4-tuple, 1 s later, ISN *below* the old sequence space and no timestamps: the
        # old incarnation's duplicates could be taken for new data (RFC 9293 §3.6.1, RFC 6191).
        peer.snd_nxt = (isn - 1_000_000) & 0xFFFFFFFF
        peer.rcv_nxt = 0
        peer.connect()
        peer.send_data(b"b" * 100)
        peer.active_close()
        time.sleep(0.5)

    _with_linux_server(lab, 40002, script, isn=3_000_000_000, connections=2)


# crafted-rst-instead-of-final-ack ------------------------------------------------------------


def _play_rst_instead_of_final_ack(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"c" * 100)
        peer.send("FA")
        peer.receive(lambda s: s.has("F"))
        # Where the final ACK of the server's FIN belongs (RFC 9293 §3.6, case 1), a RST.
        peer.send("RA")
        time.sleep(0.5)

    _with_linux_server(lab, 40003, script, isn=500_000)


# crafted-rst-out-of-window -------------------------------------------------------------------


def _play_rst_out_of_window(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"d" * 100)
        # 2**30 beyond RCV.NXT: far outside any window.  RFC 5961 §3.2 / RFC 9293 §3.10.7.4:
        # the receiver discards it silently; Linux does, and the connection goes on.
        peer.send("R", seq=peer.snd_nxt + (1 << 30))
        time.sleep(0.3)
        peer.send_data(b"e" * 100)
        peer.active_close()
        time.sleep(0.5)

    _with_linux_server(lab, 40007, script, isn=7_000_000)


# crafted-syn-retransmit-too-early ------------------------------------------------------------


def _play_syn_retransmit_too_early(lab: Lab) -> None:
    # The server's INPUT drops exactly one SYN (44 bytes: IPv4 + TCP + MSS option), the first.
    lab.drop_once("server", "INPUT", "-p", "tcp", "--syn", "--dport", str(SERVER_PORT), size=44)

    def script(peer: CraftedPeer) -> None:
        isn = peer.snd_nxt
        peer.send("S", options=[("MSS", 1460)])
        time.sleep(0.2)  # RFC 6298 §2.1: the initial RTO is 1 s; this peer retransmits after 200 ms
        peer.send("S", seq=isn, options=[("MSS", 1460)])
        peer.receive(lambda s: s.has("SA"))
        peer.send("A")
        peer.send_data(b"f" * 100)
        peer.active_close()
        time.sleep(0.5)

    _with_linux_server(lab, 40008, script, isn=8_000_000)


# crafted-data-after-fin ----------------------------------------------------------------------


def _play_data_after_fin(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"g" * 100)
        peer.send("FA")
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt)
        time.sleep(0.2)
        # Data in the sequence space after our own FIN (RFC 9293 §3.10.4: after CLOSE, no SEND).
        fin_end = peer.snd_nxt
        peer.send("PA", b"h" * 50)
        # Linux in CLOSE-WAIT ignores the text (RFC 9293 §3.10.7.4); its FIN follows when the app closes.
        peer.receive(lambda s: s.has("F"), timeout=3.0)
        peer.send("A", seq=fin_end)
        time.sleep(0.5)

    # The server waits 1 s after the EOF before it closes: the data arrives while it is in CLOSE-WAIT.
    _with_linux_server(lab, 40006, script, isn=6_000_000, linger=1.0)


# Linux client against a crafted server --------------------------------------------------------


def _with_linux_client(lab: Lab, cport: int, client_fn: Callable, script: Callable[[CraftedPeer], object],
                       isn: int, *client_args, moment: str = "at the end of the capture", release=None) -> None:
    """Crafted server script in 'server', Linux client program in 'client'; ss of the client once the
    crafted server is done, and only then ``release`` (an event) lets the client program finish."""
    silence_kernel_resets(lab, "server", SERVER_PORT)
    server = lab.spawn("server", _crafted, script, SERVER, SERVER_PORT, CLIENT, cport, isn)
    time.sleep(1.5)  # the crafted server imports scapy and opens its raw socket before the client connects
    client = lab.spawn("client", client_fn, cport, *client_args)
    server.join(60)
    lab.ss("client", moment)
    if release is not None:
        release.set()
    client.join(30)


# crafted-missing-fin-retransmit --------------------------------------------------------------


def _linux_client_reads_then_goes_deaf(cport: int, deaf: object, done: object) -> int:
    """Connect, read the greeting, then drop every segment this host sends to the server (the ACK
    of the server's FIN included) and wait in CLOSE-WAIT until the scenario is over."""
    import subprocess

    with tcp_socket(port=cport) as sock:
        sock.settimeout(10)
        # Delayed-ACK ("pingpong") mode from the start: Linux then holds the handshake's ACK for its
        # delayed-ACK timer, as a client on a real path would show a round trip at the server's
        # capture point; the handshake timing then tells where this capture was taken.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
        sock.connect((SERVER, SERVER_PORT))
        got = sock.recv(1000)
        time.sleep(0.2)  # the greeting's ACK has left by now
        subprocess.run(["iptables", "-I", "OUTPUT", "-p", "tcp", "--dport", str(SERVER_PORT), "-j", "DROP"], check=True)
        deaf.set()
        rest = sock.recv(1000)  # b"": the server's FIN arrived (CLOSE-WAIT); its ACK went nowhere
        done.wait(15)
        return len(got) + len(rest)


def _play_missing_fin_retransmit(lab: Lab) -> None:
    deaf, done = lab.event(), lab.event()

    def script(peer: CraftedPeer) -> None:
        peer.accept()
        peer.send_data(b"hello from the crafted server\n")
        deaf.wait(10)
        time.sleep(0.3)
        peer.send("FA")
        # RFC 9293 §3.10.4 / RFC 6298 §5: an unacknowledged FIN must be retransmitted when the RTO
        # expires.  This peer never does, for 4 s.
        peer.quiet(4.0)
        # A pcap file has no end-of-capture record: this datagram is the proof that the capture
        # was still running 4 s after the FIN (the analysis reads the capture's end from it).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as marker:
            marker.sendto(b"end of capture", (CLIENT, 9))

    _with_linux_client(lab, 40001, _linux_client_reads_then_goes_deaf, script, 100_000, deaf, done,
                       moment="after 4 s without a FIN retransmission", release=done)


# crafted-synack-bad-ack ----------------------------------------------------------------------


def _linux_client_sends_and_closes(cport: int) -> int:
    with tcp_socket(port=cport) as sock:
        sock.settimeout(10)
        sock.connect((SERVER, SERVER_PORT))
        sock.sendall(b"q" * 100)
        sock.shutdown(socket.SHUT_WR)
        return len(recv_until_eof(sock))


def _play_synack_bad_ack(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        syn = peer.receive(lambda s: s.has("S") and not s.flags & ACK)
        peer.rcv_nxt = syn.end_seq
        isn = peer.snd_nxt
        # RFC 9293 §3.8: the SYN-ACK must acknowledge ISN+1.  This one claims 1000 bytes more.
        peer.send("SA", ack=syn.seq + 1 + 1000, options=[("MSS", 1460)])
        # The client's answer, RFC 9293 §3.10.7.3: <SEQ=SEG.ACK><CTL=RST>, and it stays in SYN-SENT.
        peer.receive(lambda s: s.flags & RST)
        again = peer.receive(lambda s: s.has("S") and not s.flags & ACK and s.seq == syn.seq)
        peer.rcv_nxt = again.end_seq
        peer.send("SA", seq=isn, options=[("MSS", 1460)])
        fin = peer.receive(lambda s: s.has("F"))
        peer.rcv_nxt = fin.end_seq
        peer.send("A")
        peer.send("FA")
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt)
        time.sleep(0.5)

    _with_linux_client(lab, 40004, _linux_client_sends_and_closes, script, 4_000_000)


# crafted-fin-ack-mismatch --------------------------------------------------------------------


def _play_fin_ack_mismatch(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"i" * 100)
        peer.send("FA")
        fin = peer.receive(lambda s: s.has("F"))
        # The final ACK claims 10 bytes the server never sent: ack = FIN seq + 11, not + 1.
        peer.send("A", ack=fin.end_seq + 10)
        # RFC 9293 §3.10.7.4: an ACK of something not yet sent is answered by an ACK and dropped;
        # the server is still in LAST-ACK and retransmits its FIN, which this peer ACKs correctly.
        again = peer.receive(lambda s: s.has("F"), timeout=5.0)
        peer.send("A", ack=again.end_seq)
        time.sleep(0.5)

    _with_linux_server(lab, 40009, script, isn=9_000_000)


# crafted-time-wait-assassination -------------------------------------------------------------


def _linux_server_greets_and_closes(addr: str, port: int) -> None:
    """The Linux server closes first: it will be the TIME-WAIT side."""
    with listener(addr, port) as lsock:
        lsock.settimeout(15)
        conn, _ = lsock.accept()
        conn.sendall(b"bye\n")
        conn.close()


def _play_time_wait_assassination(lab: Lab) -> None:
    in_time_wait, looked = lab.event(), lab.event()
    cport = 40011

    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.receive(lambda s: s.has("F"))  # greeting then FIN (or both in one segment)
        peer.send("A")
        peer.send("FA")
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt)  # server now in TIME-WAIT
        in_time_wait.set()
        looked.wait(10)
        # RFC 1337: a RST (in window, seq == RCV.NXT) kills the peer's TIME-WAIT early; Linux with
        # net.ipv4.tcp_rfc1337 = 0 (default) lets it.
        peer.send("R")
        time.sleep(0.5)

    silence_kernel_resets(lab, "client", cport)
    server = lab.spawn("server", _linux_server_greets_and_closes, SERVER, SERVER_PORT)
    lab.wait_listening("server", SERVER_PORT)
    client = lab.spawn("client", _crafted, script, CLIENT, cport, SERVER, SERVER_PORT, 11_000_000)
    in_time_wait.wait(15)
    lab.ss("server", "before the RST: the server holds TIME-WAIT")
    looked.set()
    client.join(30)
    lab.ss("server", "after the RST: TIME-WAIT is gone")
    server.join(10)


# crafted-simultaneous-open -------------------------------------------------------------------


def _play_simultaneous_open(lab: Lab) -> None:
    """Crafted on both sides: each sends a SYN before it has seen the other's (RFC 9293 §3.5, fig. 8)."""
    a_sent, b_sent = lab.event(), lab.event()
    cport = 40012

    def side_a(peer: CraftedPeer) -> None:
        peer.send("S", options=[("MSS", 1460)])
        a_sent.set()
        syn = peer.receive(lambda s: s.has("S") and not s.flags & ACK)
        peer.rcv_nxt = syn.end_seq
        b_sent.wait(5)
        time.sleep(0.05)
        peer.send("SA", seq=peer.snd_nxt - 1, options=[("MSS", 1460)])
        peer.receive(lambda s: s.has("SA"))
        time.sleep(0.1)
        peer.send_data(b"j" * 100)
        peer.active_close()
        time.sleep(0.5)

    def side_b(peer: CraftedPeer) -> None:
        a_sent.wait(5)
        time.sleep(0.05)
        # B sends its own SYN without acknowledging A's: the two SYNs cross on the wire.
        peer.send("S", options=[("MSS", 1460)])
        b_sent.set()
        syn = peer.receive(lambda s: s.has("S") and not s.flags & ACK)
        peer.rcv_nxt = syn.end_seq
        peer.receive(lambda s: s.has("SA"))
        time.sleep(0.02)
        peer.send("SA", seq=peer.snd_nxt - 1, options=[("MSS", 1460)])
        peer.receive(lambda s: bool(s.payload))
        peer.send("A")
        peer.receive(lambda s: s.has("F"))
        peer.send("FA")
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt)

    silence_kernel_resets(lab, "client", cport)
    silence_kernel_resets(lab, "server", SERVER_PORT)
    b = lab.spawn("server", _crafted, side_b, SERVER, SERVER_PORT, CLIENT, cport, 12_500_000)
    time.sleep(1.5)  # both peers import scapy and open their raw sockets first
    a = lab.spawn("client", _crafted, side_a, CLIENT, cport, SERVER, SERVER_PORT, 12_000_000)
    a.join(30)
    b.join(30)


# crafted-fin-wait-2-timeout ------------------------------------------------------------------


def _play_fin_wait_2_timeout(lab: Lab) -> None:
    in_fin_wait_2, looked = lab.event(), lab.event()
    cport = 40041

    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"k" * 100)
        peer.send("FA")
        # The ACK of our FIN: FIN-WAIT-1 -> FIN-WAIT-2 (RFC 9293 §3.10.7.4).  Linux in CLOSE-WAIT
        # sends it on its delayed-ACK timer, without a FIN: its application has not closed yet.
        peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt and not s.flags & FIN)
        in_fin_wait_2.set()
        looked.wait(10)
        # This peer holds FIN-WAIT-2 for as long as it takes (no orphan timer): the server's FIN
        # comes 3 s later and is still acknowledged.
        peer.receive(lambda s: s.has("F"), timeout=6.0)
        peer.send("A")
        time.sleep(0.5)

    silence_kernel_resets(lab, "client", cport)
    # The server application closes 3 s after reading end-of-file: until then it is in CLOSE-WAIT.
    server = lab.spawn("server", linux_reading_server, SERVER, SERVER_PORT, 1, 3.0)
    lab.wait_listening("server", SERVER_PORT)
    client = lab.spawn("client", _crafted, script, CLIENT, cport, SERVER, SERVER_PORT, 41_000_000)
    in_fin_wait_2.wait(15)
    lab.ss("server", "the client's FIN acknowledged: the server in CLOSE-WAIT, the client in FIN-WAIT-2")
    looked.set()
    client.join(30)
    lab.ss("server", "at the end of the capture")
    server.join(10)


# crafted-data-after-rst ----------------------------------------------------------------------


def _linux_server_reads_until_reset(addr: str, port: int) -> str:
    """Accept one connection and read until the peer resets it (or ends it); how it ended."""
    with listener(addr, port) as lsock:
        lsock.settimeout(15)
        conn, _ = lsock.accept()
        with conn:
            conn.settimeout(15)
            try:
                while conn.recv(65536):
                    pass
            except ConnectionResetError:
                return "reset"
            return "eof"


def _play_data_after_rst(lab: Lab) -> None:
    reset_seen = lab.event()
    cport = 40042

    def script(peer: CraftedPeer) -> None:
        peer.connect()
        peer.send_data(b"l" * 100)
        # ABORT (RFC 9293 §3.10.4): RST with seq == the server's RCV.NXT, so the server accepts it
        # and deletes its TCB (§3.10.7.4); this peer has "deleted" its own by sending it.
        peer.send("RA")
        reset_seen.wait(5)
        time.sleep(0.5)
        # Data on the connection both sides have closed.  The server has no TCB any more and answers
        # with <SEQ=SEG.ACK><CTL=RST> (RFC 9293 §3.10.7.1), the correct reply.
        peer.send("PA", b"m" * 50)
        peer.receive(lambda s: s.flags & RST)
        time.sleep(0.5)

    silence_kernel_resets(lab, "client", cport)
    server = lab.spawn("server", _linux_server_reads_until_reset, SERVER, SERVER_PORT)
    lab.wait_listening("server", SERVER_PORT)
    client = lab.spawn("client", _crafted, script, CLIENT, cport, SERVER, SERVER_PORT, 42_000_000)
    ended = server.join(15)
    if ended != "reset":
        raise LabError(f"crafted-data-after-rst: the Linux server saw '{ended}', not the client's RST")
    lab.ss("server", "after the client's RST: no socket left")
    reset_seen.set()
    client.join(30)


# crafted-timestamps-dropped ------------------------------------------------------------------


class _TimestampClock:
    """TSopt for the crafted peer (RFC 7323 §3.2): TSval from a millisecond clock, TSecr the last
    TSval received from the partner (TS.Recent, §4.3)."""

    def __init__(self, start: int):
        self.start, self.began, self.recent = start, time.monotonic(), 0

    def option(self) -> list:
        tsval = (self.start + int((time.monotonic() - self.began) * 1000)) & 0xFFFFFFFF
        return [("NOP", None), ("NOP", None), ("Timestamp", (tsval, self.recent))]

    def heard(self, seg: Received) -> Received:
        for kind, data in seg.options:
            if kind == dpkt.tcp.TCP_OPT_TIMESTAMP and len(data) == 8:
                self.recent = int.from_bytes(data[:4], "big")
        return seg


def _play_timestamps_dropped(lab: Lab) -> None:
    def script(peer: CraftedPeer) -> None:
        ts = _TimestampClock(start=500_000)
        # Both SYNs carry TSopt: timestamps are negotiated (RFC 7323 §3.2).
        peer.send("S", options=[("MSS", 1460)] + ts.option())
        ts.heard(peer.receive(lambda s: s.has("SA")))
        peer.send("A", options=ts.option())
        peer.send("PA", b"n" * 100, options=ts.option())
        ts.heard(peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt))
        time.sleep(0.1)
        # RFC 7323 §3.2: once negotiated, TSopt MUST be in every non-RST segment.  Not in this one.
        peer.send("PA", b"o" * 100)
        ts.heard(peer.receive(lambda s: s.flags & ACK and s.ack == peer.snd_nxt, timeout=3.0))
        time.sleep(0.1)
        peer.send("FA", options=ts.option())
        ts.heard(peer.receive(lambda s: s.has("F")))
        peer.send("A", options=ts.option())
        time.sleep(0.5)

    _with_linux_server(lab, 40043, script, isn=43_000_000)


# ---- the registry ----------------------------------------------------------------------------------

_HANDSHAKE = ["c S", "s S.", "c ."]
_CLIENT_CLOSES = ["c F.", "s F.", "c ."]

_LIST = [
    Scenario(
        name="crafted-missing-fin-retransmit",
        vantage="server",
        client_port=40001,
        description="""
Crafted server, Linux client.  The Linux client connects (frame 1); the crafted server answers with
a SYN-ACK offering only MSS, so no timestamps, SACK or window scaling are in use (frame 2).  The
client socket has TCP_QUICKACK off, so Linux holds the handshake's ACK about 200 ms (frame 3) - the
round trip a server-side capture shows.  The server sends a 30-byte greeting (frame 4), which the client ACKs (frame 5).  Then iptables in the
client's namespace starts dropping everything the client sends, and the crafted server sends its
FIN (frame 6).  The client's kernel received it and ACKed it (ss shows CLOSE-WAIT), but that ACK
never reached the wire.  The server's FIN stays unacknowledged and the crafted server never
retransmits it although the capture runs 4 s more (RFC 9293 §3.10.4, RFC 6298 §5: an unACKed FIN
is retransmitted when the RTO expires; Linux would have done so after about 200 ms).  Frame 7 is a
UDP datagram (server to client port 9) sent 4 s after the FIN only to mark that the capture was
still running then; it belongs to no TCP connection.
Captured on the server's interface.  The client never closes within the capture, so it is in
CLOSE-WAIT for about 4 s at the end; that is too short for a CLOSE-WAIT leak.
""",
        shape=_HANDSHAKE + ["s P.", "c .", "s F.", "udp"],
        bpf="tcp or udp port 9",
        connections=[_conn(1, 40001, "CLOSE-WAIT", "FIN-WAIT-1", "open")],
        findings=[_finding("missing-fin-retransmit", 1, "server", 6)],
        play=_play_missing_fin_retransmit,
    ),
    Scenario(
        name="crafted-short-time-wait",
        vantage="client",
        client_port=40002,
        description="""
Crafted client, Linux server.  First incarnation (frames 1-8): handshake with ISN 3000000000 and no
timestamps, 100 bytes, the client closes first (FIN frame 6), the server answers FIN+ACK (frame 7)
and the client sends the final ACK (frame 8): the client is in TIME-WAIT.  One second later
(frame 9) the crafted client sends a new SYN on the same 4-tuple with ISN 2999000000, *below* the
old incarnation's sequence space, and without timestamps.  RFC 9293 §3.6.1 / RFC 6191 allow a new
incarnation from TIME-WAIT only when the new ISN is above the old sequence space or timestamps
prove it newer; here neither holds, so the client cut its TIME-WAIT (60 s under the linux
profile) short.  The Linux server had closed its side (LAST-ACK -> CLOSED at frame 8), so its
listener accepts the SYN (frame 10); the second incarnation closes gracefully like the first
(frames 14-16).  The first incarnation's client TIME-WAIT ended with the new SYN, so its final
state is CLOSED.
""",
        shape=(_HANDSHAKE + ["c P.", "s ."] + _CLIENT_CLOSES) * 2,
        connections=[
            _conn(1, 40002, "CLOSED", "CLOSED", "graceful"),
            _conn(2, 40002, "TIME-WAIT", "CLOSED", "graceful", incarnation=2),
        ],
        findings=[_finding("short-time-wait", 2, "client", 9)],
        play=_play_short_time_wait,
    ),
    Scenario(
        name="crafted-rst-instead-of-final-ack",
        vantage="client",
        client_port=40003,
        description="""
Crafted client, Linux server.  Handshake, 100 bytes from the client (frame 4, ACKed in frame 5),
the client closes first (FIN frame 6), the Linux server reads EOF, closes and sends FIN+ACK
(frame 7, now LAST-ACK).  Where the client's final ACK belongs (RFC 9293 §3.6, it must ACK the
FIN and enter TIME-WAIT) the crafted client sends RST+ACK with seq = RCV.NXT of the server
(frame 8).  The server leaves LAST-ACK for CLOSED on the RST; its FIN was never acknowledged.
Both endpoints end CLOSED.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c F.", "s F.", "c R."],
        connections=[_conn(1, 40003, "CLOSED", "CLOSED", "abortive")],
        findings=[_finding("rst-instead-of-final-ack", 1, "client", 8)],
        play=_play_rst_instead_of_final_ack,
    ),
    Scenario(
        name="crafted-synack-bad-ack",
        vantage="client",
        client_port=40004,
        description="""
Crafted server, Linux client.  The client's SYN (frame 1) has ISN x; the crafted server's SYN-ACK
(frame 2) acknowledges x+1001 instead of x+1.  The Linux client, in SYN-SENT, answers exactly as
RFC 9293 §3.10.7.3 says for an unacceptable ACK: a RST with seq = SEG.ACK (frame 3) - that RST is
correct and is not a violation.  It stays in SYN-SENT and, as Linux does after an unacceptable
SYN-ACK (tcp_rcv_synsent_state_process re-arms the retransmit timer at TCP_TIMEOUT_MIN, "previous
FIN/ACK or RST/ACK might be ignored"), retransmits the same SYN about 10 ms later (frame 4).  That
quick retransmission answers a segment; it is not an RTO-driven early retransmission, so a correct
analysis reports no syn-retransmit-too-early.  The server now answers with a correct SYN-ACK
(frame 5, same ISN), the handshake completes (frame 6), the client sends 100 bytes and its FIN
(frames 7-8), the server ACKs and sends its FIN (frames 9-10) and the client ACKs it (frame 11).
The SYN-ACK's ack is no sign of capture loss either: the client's own RST says it never sent
what frame 2 acknowledges, so a correct analysis reports no capture-gap.
""",
        shape=["c S", "s S.", "c R"] + _HANDSHAKE + ["c P.", "c F.", "s .", "s F.", "c ."],
        connections=[_conn(1, 40004, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("synack-bad-ack", 1, "server", 2)],
        play=_play_synack_bad_ack,
    ),
    Scenario(
        name="crafted-option-not-negotiated",
        vantage="client",
        client_port=40005,
        description="""
Crafted client, Linux server.  Neither SYN carries the timestamp option (frames 1-2, MSS only), so
timestamps were not negotiated.  The client's first data segment (frame 4) nevertheless carries a
timestamp option (TSval 1000, TSecr 0): RFC 7323 §3.2 allows TSopt only when both SYNs had it.
Linux ignores the option and ACKs the data (frame 5).  The second data segment has no options
(frame 6); the client closes first (frames 8-10), a graceful close.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c P.", "s ."] + _CLIENT_CLOSES,
        connections=[_conn(1, 40005, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("option-not-negotiated", 1, "client", 4)],
        play=_play_option_not_negotiated,
    ),
    Scenario(
        name="crafted-data-after-fin",
        vantage="client",
        client_port=40006,
        description="""
Crafted client, Linux server.  Handshake, 100 bytes (frame 4, ACKed in frame 5), the client's FIN
(frame 6, seq 101 relative), which the server ACKs after its delayed-ACK timer (frame 7, ack 102).
200 ms later the crafted client sends 50 bytes at seq 102, after its own FIN (frame 8): a sender
must not send after CLOSE (RFC 9293 §3.10.4).  The Linux server, in CLOSE-WAIT, ignores the text
(RFC 9293 §3.10.7.4, "this should not occur since a FIN has been received"): no ACK covers it.
The server application closes 1 s after its EOF: FIN (frame 9, ack still 102), which the client
ACKs (frame 10).  The 50 bytes are never acknowledged; the client never retransmits them.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c F.", "s .", "c P.", "s F.", "c ."],
        connections=[_conn(1, 40006, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("data-after-fin", 1, "client", 8)],
        play=_play_data_after_fin,
    ),
    Scenario(
        name="crafted-rst-out-of-window",
        vantage="client",
        client_port=40007,
        description="""
Crafted client, Linux server.  Handshake, 100 bytes (frames 4-5), then a bare RST (frame 6) whose
seq is 2**30 beyond the server's RCV.NXT, far outside its receive window.  RFC 9293 §3.10.7.4 and
RFC 5961 §3.2: an out-of-window RST is discarded silently; Linux does exactly that (no reply, no
state change).  300 ms later the client sends 100 more bytes (frame 7, ACKed in frame 8) and the
connection closes gracefully, client first (frames 9-11).
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c R", "c P.", "s ."] + _CLIENT_CLOSES,
        connections=[_conn(1, 40007, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("rst-out-of-window", 1, "client", 6)],
        play=_play_rst_out_of_window,
    ),
    Scenario(
        name="crafted-syn-retransmit-too-early",
        vantage="client",
        client_port=40008,
        description="""
Crafted client, Linux server.  The client's first SYN (frame 1) is dropped by iptables in the
server's namespace (after this capture point), so nothing answers it.  The crafted client
retransmits the SYN, same ISN, after 200 ms (frame 2), although RFC 6298 §2.1 sets the initial
RTO to 1 s (2.5 s before RFC 6298; Linux TCP_TIMEOUT_INIT is 1 s).  The server answers the second
SYN (frame 3); 100 bytes follow and the client closes first, gracefully (frames 7-9).
""",
        shape=["c S"] + _HANDSHAKE + ["c P.", "s ."] + _CLIENT_CLOSES,
        connections=[_conn(1, 40008, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("syn-retransmit-too-early", 1, "client", 2)],
        play=_play_syn_retransmit_too_early,
    ),
    Scenario(
        name="crafted-fin-ack-mismatch",
        vantage="client",
        client_port=40009,
        description="""
Crafted client, Linux server.  Handshake, 100 bytes, the client's FIN (frame 6) and the server's
FIN+ACK (frame 7, server in LAST-ACK).  The client's final ACK (frame 8) acknowledges FIN seq + 11
(relative ack 12) instead of FIN seq + 1: it claims ten bytes the server never sent.  RFC 9293
§3.10.7.4: an ACK of something not yet sent is answered with an ACK and dropped - Linux sends that
ACK (frame 9, correct behaviour, not a finding) and stays in LAST-ACK, so it retransmits its FIN
after about 200 ms (frame 10); the client ACKs that one correctly (frame 11).  Graceful in the end.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c F.", "s F.", "c .", "s .", "s F.", "c ."],
        connections=[_conn(1, 40009, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("fin-ack-mismatch", 1, "client", 8)],
        play=_play_fin_ack_mismatch,
    ),
    Scenario(
        name="crafted-time-wait-assassination",
        vantage="server",
        client_port=40011,
        description="""
Crafted client, Linux server; the server closes first.  Handshake, the server's 4-byte greeting
(frame 4) and FIN (frame 5), the client ACKs both (frame 6) and sends its own FIN (frame 7), which
the server ACKs (frame 8): the Linux server is in TIME-WAIT (ss before the RST) and the client,
having had its FIN acknowledged, is CLOSED.  The crafted client then sends a RST with seq equal to
the server's RCV.NXT (frame 9).  Linux (net.ipv4.tcp_rfc1337 = 0, the default) lets the RST end
TIME-WAIT at once - the RFC 1337 "TIME-WAIT assassination" (ss after the RST shows no socket).
The close itself was graceful; the RST only ended TIME-WAIT, so both end CLOSED.
""",
        shape=_HANDSHAKE + ["s P.", "s F.", "c .", "c F.", "s .", "c R"],
        connections=[_conn(1, 40011, "CLOSED", "CLOSED", "graceful")],
        findings=[_finding("time-wait-assassination", 1, "client", 9)],
        play=_play_time_wait_assassination,
    ),
    Scenario(
        name="crafted-simultaneous-open",
        vantage="client",
        client_port=40012,
        description="""
Crafted on both sides (Linux never opens simultaneously on its own).  198.18.0.1:40012 sends a SYN
(frame 1); 198.18.0.2:8080 sends its own SYN without acknowledging the first (frame 2), as if the
two had crossed.  Each then answers the other's SYN with a SYN-ACK carrying its original ISN
(frames 3-4) - RFC 9293 §3.5, figure 8, simultaneous connection synchronisation: both go
SYN-SENT -> SYN-RECEIVED -> ESTABLISHED.  The first SYN's sender is the client.  100 bytes
(frames 5-6), then the client closes first, gracefully (frames 7-9).  Legal, hence only an info.
""",
        shape=["c S", "s S", "c S.", "s S.", "c P.", "s ."] + _CLIENT_CLOSES,
        connections=[_conn(1, 40012, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("simultaneous-open", 1, "none", 2)],
        play=_play_simultaneous_open,
    ),
    Scenario(
        name="crafted-fin-wait-2-timeout",
        vantage="client",
        client_port=40041,
        description="""
Crafted client, Linux server; the client closes first and holds FIN-WAIT-2 past the timer.
Handshake (frames 1-3, MSS only), 100 bytes (frame 4, ACKed in frame 5), the client's FIN (frame 6,
seq 101 relative): the client is in FIN-WAIT-1.  The Linux server reads end-of-file but its
application waits 3 s before it closes, so the kernel ACKs the FIN alone on its delayed-ACK timer
about 40 ms later (frame 7, ack 102): the server is in CLOSE-WAIT (ss) and the client in FIN-WAIT-2
(RFC 9293 §3.10.7.4).  Nothing is sent for 3 s.  Then the server closes: FIN+ACK (frame 8, seq 1,
ack 102, LAST-ACK), and the client ACKs it (frame 9, ack 2): it still held FIN-WAIT-2 about 3 s
after frame 7 and goes to TIME-WAIT.  [analysis] sets fin-wait-2-timeout.fin_wait_2 = 2 s (a
stand-in for the linux profile's tcp_fin_timeout of 60 s, to keep the capture short), so the rule
fires at frame 7, the ACK that moved the client into FIN-WAIT-2, on the evidence of frame 9.
The server sat in CLOSE-WAIT from frame 6 to its FIN at frame 8, about 3 s: far below
close-wait-leak's default threshold (60 s, not overridden here), so no close-wait-leak.  The close
itself is graceful: FIN both ways, both acknowledged; the client is in TIME-WAIT at the end (the
capture stops about 0.5 s after frame 9), the server CLOSED.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c F.", "s .", "s F.", "c ."],
        analysis={"params": {"fin-wait-2-timeout.fin_wait_2": 2.0}},
        connections=[_conn(1, 40041, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("fin-wait-2-timeout", 1, "client", 7)],
        play=_play_fin_wait_2_timeout,
    ),
    Scenario(
        name="crafted-data-after-rst",
        vantage="client",
        client_port=40042,
        description="""
Crafted client, Linux server.  Handshake (frames 1-3, MSS only), 100 bytes (frame 4, ACKed in
frame 5).  The crafted client then aborts (RFC 9293 §3.10.4 ABORT) with RST+ACK, seq 101 relative
= the server's RCV.NXT (frame 6): the server accepts it (§3.10.7.4, RFC 5961 §3.2 exact match),
its reading application gets ECONNRESET and exits, and ss shows no socket left.  The RST was sent
in ESTABLISHED without a FIN: abortive-close (client, frame 6).  About 0.5 s later the client
sends 50 bytes on the same connection, seq 101 again (a RST takes no sequence space) (frame 7):
data after its own RST had closed the connection - data-after-rst (client, frame 7); no grace
applies, the RST was the client's own.  The server has no TCB (and no listener) any more and
answers as RFC 9293 §3.10.7.1 says for the CLOSED state: <SEQ=SEG.ACK><CTL=RST>, a bare RST with
seq 1 relative (frame 8).  That RST is correct and no finding.  One connection (no new SYN), both
ends CLOSED since frame 6, close abortive.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c R.", "c P.", "s R"],
        connections=[_conn(1, 40042, "CLOSED", "CLOSED", "abortive")],
        findings=[_finding("abortive-close", 1, "client", 6), _finding("data-after-rst", 1, "client", 7)],
        play=_play_data_after_rst,
    ),
    Scenario(
        name="crafted-timestamps-dropped",
        vantage="client",
        client_port=40043,
        description="""
Crafted client, Linux server.  The client's SYN carries MSS and TSopt (TSval 500000, TSecr 0)
(frame 1); the Linux SYN-ACK answers with TSopt (TSecr 500000) (frame 2): both SYNs carry it, so
timestamps are negotiated (RFC 7323 §3.2).  The handshake ACK (frame 3) and the first 100 bytes
(frame 4) carry TSopt; the server ACKs with TSopt (frame 5).  About 100 ms later the client sends
100 more bytes with no options at all (frame 6): RFC 7323 §3.2, "the TSopt MUST be sent in every
non-<RST> segment" - timestamps-dropped (client, frame 6).  Linux 6.18 does not drop it (the RFC's
receiver rule, "SHOULD silently drop", is not what Linux does) and ACKs it (frame 7, ack 201 relative)
with TSecr still frame 4's TSval - the TS-less segment did not update TS.Recent.  The server sends TSopt in
every segment.  The client closes first with TSopt again (FIN frame 8, server FIN+ACK frame 9, final
ACK frame 10): a graceful close, client TIME-WAIT, server CLOSED.
""",
        shape=_HANDSHAKE + ["c P.", "s .", "c P.", "s ."] + _CLIENT_CLOSES,
        connections=[_conn(1, 40043, "TIME-WAIT", "CLOSED", "graceful")],
        findings=[_finding("timestamps-dropped", 1, "client", 6)],
        play=_play_timestamps_dropped,
    ),
]

SCENARIOS: dict[str, Callable[[str | os.PathLike], Path]] = {s.name: s.make for s in _LIST}


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Make the crafted-peer samples (root; network namespaces).")
    parser.add_argument("names", nargs="*", help=f"scenarios (default: all): {', '.join(SCENARIOS)}")
    parser.add_argument("--out", default=str(SAMPLES_DIR), help="output folder (default: samples/)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    if os.geteuid() != 0:
        print("crafted.py: needs root (network namespaces, raw sockets, iptables)", file=sys.stderr)
        return 2
    failed = 0
    for name in args.names or list(SCENARIOS):
        try:
            path = SCENARIOS[name](args.out)
            print(f"{name}: wrote {path}")
        except LabError as err:
            failed += 1
            print(f"{name}: FAILED: {err}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
