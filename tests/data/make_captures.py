"""Regenerate the reader's test captures in tests/data/ (run as root: python3 tests/data/make_captures.py).

Real traffic comes from a real Linux stack in throw-away network namespaces (samples/netlab.py:
198.18.0.0/15 and fd00::/8, no route out, deleted afterwards), captured by tcpdump and dumpcap.
Other link types and formats are *re-framings* of that same capture (the IP packets byte for
byte, with a different link header or file header), and editcap conversions.  Only the corner
cases a stack will not produce on demand (IP options, IPv6 extension headers, sequence
wraparound, incarnation corners, odd TCP options) are crafted with scapy.  Every file is checked
against tshark by tests/test_tshark_crosscheck.py.

Steps: ``real`` (needs root and namespaces), ``editcap``, ``reframe``, ``crafted``; default all.
The real captures are committed: making them again gives new ports, ISNs and timestamps, so the
expectations written in tests/test_capture_*.py, test_connections_rebuild.py and test_flows.py
(read from tshark's view of these files) must then be re-read too.  The derived steps are
deterministic given the real capture.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "samples"))

BASE_TIME = 1_750_000_000


# ---- real traffic ------------------------------------------------------------------------------


def real_captures() -> None:
    from netlab import Lab, listener, recv_until_eof, tcp_socket

    def serve_echo(addr, port, family, count):
        s = listener(addr, port, family)
        for _ in range(count):
            conn, _ = s.accept()
            try:
                data = recv_until_eof(conn)
                conn.sendall(data[:200])
            except OSError:
                pass
            conn.close()

    def serve_close_first(addr, port, count):
        s = listener(addr, port)
        for _ in range(count):
            conn, _ = s.accept()
            conn.recv(100)
            conn.sendall(b"r" * 300)
            conn.close()

    def clients(server4, server6):
        # 1. graceful, client closes first (shutdown after the request), IPv4
        c = tcp_socket(4)
        c.connect((server4, 8080))
        c.sendall(b"q" * 1000)
        c.shutdown(socket.SHUT_WR)
        recv_until_eof(c)
        c.close()
        # 2. the same tuple twice: the server closes first, so its TIME-WAIT holds the tuple and
        #    the second SYN (higher ISN) reopens it: two incarnations
        for _ in range(2):
            c = tcp_socket(4, port=40001)
            c.connect((server4, 8081))
            c.sendall(b"q" * 100)
            recv_until_eof(c)
            c.close()
            time.sleep(0.05)
        # 3. refused
        c = tcp_socket(4)
        try:
            c.connect((server4, 8089))
        except OSError:
            pass
        c.close()
        # 4. abortive close (SO_LINGER 0)
        c = tcp_socket(4, linger0=True)
        c.connect((server4, 8080))
        c.sendall(b"q" * 100)
        time.sleep(0.05)
        c.close()
        # 5. IPv6
        c = tcp_socket(6)
        c.connect((server6, 8080))
        c.sendall(b"q" * 500)
        c.shutdown(socket.SHUT_WR)
        recv_until_eof(c)
        c.close()
        time.sleep(0.2)

    with Lab("rdr") as lab:
        s4, s6 = lab.addr("server"), lab.addr("server", 6)
        eth = lab.capture("client", HERE / "real-eth.pcap")
        any2 = lab.capture("client", HERE / "real-sll2.pcap", iface="any")
        any1 = lab.capture("client", HERE / "real-sll.pcap", iface="any", extra=["-y", "LINUX_SLL"])
        peers = [
            lab.spawn("server", serve_echo, s4, 8080, 4, 2),
            lab.spawn("server", serve_close_first, s4, 8081, 2),
            lab.spawn("server", serve_echo, s6, 8080, 6, 1),
        ]
        lab.wait_listening("server", 8080)
        lab.wait_listening("server", 8081)
        lab.call("client", clients, s4, s6)
        for p in peers:
            p.join()
        for cap in (eth, any2, any1):
            cap.stop()

    def local_pair():
        srv = socket.create_server(("127.0.0.1", 9000))
        cli = socket.create_connection(("127.0.0.1", 9000))
        conn, _ = srv.accept()
        cli.sendall(b"l" * 50)
        conn.recv(100)
        cli.close()
        conn.close()
        time.sleep(0.1)

    def one_remote(server4):
        c = tcp_socket(4)
        c.connect((server4, 8080))
        c.sendall(b"q" * 10)
        c.shutdown(socket.SHUT_WR)
        recv_until_eof(c)
        c.close()
        time.sleep(0.2)

    with Lab("rdr2") as lab:
        s4 = lab.addr("server")
        lab.run("client", "ip", "link", "set", "lo", "up")
        # dumpcap: one pcapng section, two interfaces (eth0 and lo)
        cap = lab.capture("client", HERE / "real-2if.pcapng", tool="dumpcap", extra=["-i", "lo"])
        srv = lab.spawn("server", serve_echo, s4, 8080, 4, 1)
        lab.wait_listening("server", 8080)
        lab.call("client", local_pair)
        lab.call("client", one_remote, s4)
        srv.join()
        cap.stop()


def editcap_variants() -> None:
    src = HERE / "real-eth.pcap"
    subprocess.run(["editcap", "-F", "pcapng", src, HERE / "real-eth.pcapng"], check=True)
    subprocess.run(["editcap", "-F", "nsecpcap", src, HERE / "real-eth-nsec.pcap"], check=True)
    with open(src, "rb") as f, open(HERE / "real-eth.pcap.gz", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as g:  # byte-for-byte repeatable
            shutil.copyfileobj(f, g)
    # Ring buffer: three files of at most 12 packets each (tcpdump -C style names).
    for old in HERE.glob("ring_*.pcap"):
        old.unlink()
    subprocess.run(["editcap", "-F", "pcap", "-c", "12", src, HERE / "ring.pcap"], check=True)
    # Snaplen 68: headers only, payload cut.
    subprocess.run(["editcap", "-s", "68", src, HERE / "real-eth-snap68.pcap"], check=True)
    # The last record cut short, as when tcpdump is killed mid-write.
    data = src.read_bytes()
    (HERE / "cut-last-record.pcap").write_bytes(data[:-7])


# ---- re-framing: the same IP packets under other link layers and file headers --------------------


def read_pcap(path: Path) -> tuple[list[tuple[int, int, bytes, int]], int]:
    """(ts_sec, ts_usec, frame, origlen) records and the link type of a little-endian usec pcap."""
    data = path.read_bytes()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", path
    linktype = struct.unpack_from("<I", data, 20)[0]
    out, pos = [], 24
    while pos + 16 <= len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        out.append((sec, usec, data[pos + 16 : pos + 16 + incl], orig))
        pos += 16 + incl
    return out, linktype


def write_pcap(path: Path, linktype: int, records, *, big_endian=False, nanos=False, snaplen=262144) -> None:
    e = ">" if big_endian else "<"
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = [struct.pack(e + "IHHiII", magic, 2, 4, 0, 0, snaplen) + struct.pack(e + "I", linktype)]
    for sec, frac, frame, orig in records:
        out.append(struct.pack(e + "IIII", sec, frac, len(frame), orig) + frame)
    path.write_bytes(b"".join(out))


def reframings() -> None:
    records, linktype = read_pcap(HERE / "real-eth.pcap")
    assert linktype == 1
    ip_only = [(s, u, f[14:], o - 14) for s, u, f, o in records]

    def family(ip: bytes, v6: int) -> int:
        return 2 if ip[0] >> 4 == 4 else v6

    write_pcap(HERE / "raw101.pcap", 101, ip_only)
    write_pcap(HERE / "raw228-ipv4.pcap", 228, [r for r in ip_only if r[2][0] >> 4 == 4])
    write_pcap(HERE / "raw229-ipv6.pcap", 229, [r for r in ip_only if r[2][0] >> 4 == 6])
    write_pcap(
        HERE / "null-le.pcap", 0, [(s, u, struct.pack("<I", family(f, 30)) + f, o + 4) for s, u, f, o in ip_only]
    )
    write_pcap(
        HERE / "null-be.pcap",
        0,
        [(s, u, struct.pack(">I", family(f, 24)) + f, o + 4) for s, u, f, o in ip_only],
        big_endian=True,
    )
    write_pcap(HERE / "loop108.pcap", 108, [(s, u, struct.pack(">I", family(f, 24)) + f, o + 4) for s, u, f, o in ip_only])
    write_pcap(HERE / "big-endian-nsec.pcap", 1, [(s, u * 1000 + 123, f, o) for s, u, f, o in records], big_endian=True, nanos=True)
    # 802.1Q and QinQ (802.1ad outer tag 0x88a8 + 802.1Q inner)
    dot1q = lambda vid: struct.pack("!HH", 0x8100, vid)
    write_pcap(HERE / "vlan.pcap", 1, [(s, u, f[:12] + dot1q(100) + f[12:], o + 4) for s, u, f, o in records])
    qinq = struct.pack("!HH", 0x88A8, 200) + dot1q(100)
    write_pcap(HERE / "qinq.pcap", 1, [(s, u, f[:12] + qinq + f[12:], o + 8) for s, u, f, o in records])


# ---- crafted corners (scapy) ---------------------------------------------------------------------


def conversation(l3, client, server, cport, sport, cisn, sisn, *, data=(300, 200), options=True, close=True):
    """A complete TCP conversation as scapy packets (handshake, data each way, FIN both ways)."""
    from scapy.all import TCP

    syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None), ("WScale", 7)]
    synack_opts = [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (5000, 1000)), ("NOP", None), ("WScale", 9)]
    ts = lambda a, b: [("NOP", None), ("NOP", None), ("Timestamp", (a, b))] if options else []
    c, s = l3(client, server), l3(server, client)
    C, S = cisn, sisn
    pk = [
        c / TCP(sport=cport, dport=sport, flags="S", seq=C, window=64240, options=syn_opts if options else []),
        s / TCP(sport=sport, dport=cport, flags="SA", seq=S, ack=C + 1, window=65160, options=synack_opts if options else []),
        c / TCP(sport=cport, dport=sport, flags="A", seq=C + 1, ack=S + 1, window=502, options=ts(1001, 5000)),
        c / TCP(sport=cport, dport=sport, flags="PA", seq=C + 1, ack=S + 1, window=502, options=ts(1002, 5000)) / (b"c" * data[0]),
        s / TCP(sport=sport, dport=cport, flags="A", seq=S + 1, ack=C + 1 + data[0], window=509, options=ts(5001, 1002)),
        s / TCP(sport=sport, dport=cport, flags="PA", seq=S + 1, ack=C + 1 + data[0], window=509, options=ts(5002, 1002)) / (b"s" * data[1]),
    ]
    cn, sn = C + 1 + data[0], S + 1 + data[1]
    if close:
        pk += [
            c / TCP(sport=cport, dport=sport, flags="FA", seq=cn, ack=sn, window=502, options=ts(1003, 5002)),
            s / TCP(sport=sport, dport=cport, flags="FA", seq=sn, ack=cn + 1, window=509, options=ts(5003, 1003)),
            c / TCP(sport=cport, dport=sport, flags="A", seq=cn + 1, ack=sn + 1, window=502, options=ts(1004, 5003)),
        ]
    for p in pk:  # sequence numbers live modulo 2**32
        p[TCP].seq %= 2**32
        p[TCP].ack %= 2**32
    return pk


def write_scapy(path: Path, packets, linktype: int = 1, start: float = BASE_TIME, step_us: int = 1000) -> None:
    """Raw packet bytes into a little-endian usec pcap with regular timestamps."""
    records = []
    for i, p in enumerate(packets):
        frame = bytes(p)
        t_us = i * step_us
        records.append((int(start) + t_us // 1_000_000, t_us % 1_000_000, frame, len(frame)))
    write_pcap(path, linktype, records)


def crafted() -> None:
    from scapy.all import AH, IP, TCP, UDP, Ether, IPOption_RR, IPOption_Timestamp, IPv6
    from scapy.all import IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, Raw

    eth = lambda: Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    v4 = lambda a, b: eth() / IP(src=a, dst=b, ttl=64)

    # Sequence wraparound on both sides: ISNs just below 2**32, data crossing the wrap.
    write_scapy(HERE / "seq-wrap.pcap", conversation(v4, "198.18.0.1", "198.18.0.2", 40000, 80, 2**32 - 100, 2**32 - 50))

    # IPv4 with options (record route, timestamp) on every packet, plus a non-first fragment.
    v4opt = lambda a, b: eth() / IP(src=a, dst=b, options=[IPOption_RR(routers=["198.18.0.9"]), IPOption_Timestamp(flg=0)])
    pk = conversation(v4opt, "198.18.0.1", "198.18.0.2", 40010, 80, 1000, 2000)
    pk.insert(4, eth() / IP(src="198.18.0.1", dst="198.18.0.2", proto=6, frag=100) / Raw(b"x" * 40))
    pk.insert(5, eth() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=53, dport=53) / Raw(b"dns"))
    write_scapy(HERE / "ipv4-options.pcap", pk)

    # IPv6 extension headers: hop-by-hop + destination options + routing (type 0, no segments
    # left) + atomic fragment + AH on the data segments; a non-first fragment to skip.
    def v6ext(a, b):
        return eth() / IPv6(src=a, dst=b) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=[], segleft=0) / IPv6ExtHdrFragment(offset=0, m=0, id=7)

    pk = conversation(v6ext, "fd00::1", "fd00::2", 40020, 443, 7000, 9000)
    ah_tcp = TCP(sport=40020, dport=443, flags="A", seq=7001, ack=9001)
    # scapy checksums TCP under AH wrongly: take the sum computed without the AH in between.
    good_sum = IPv6(bytes(IPv6(src="fd00::1", dst="fd00::2") / ah_tcp))[TCP].chksum
    ah_tcp.chksum = good_sum
    pk.insert(3, eth() / IPv6(src="fd00::1", dst="fd00::2") / AH(nh=6, payloadlen=4, spi=1, seq=1, icv=b"\x00" * 12) / ah_tcp)
    pk.insert(4, eth() / IPv6(src="fd00::1", dst="fd00::2") / IPv6ExtHdrFragment(offset=10, m=0, nh=6, id=8) / Raw(b"y" * 24))
    write_scapy(HERE / "ipv6-ext.pcap", pk)

    # Incarnations on one tuple: a retransmitted SYN (same ISN, not new); a second connection after
    # a graceful close; a third after a RST-refused attempt; a SYN far outside the space of an open one.
    a, b = "198.18.0.1", "198.18.0.2"
    first = conversation(v4, a, b, 40030, 80, 1000, 2000)
    first.insert(1, first[0].copy())  # retransmitted SYN
    second = conversation(v4, a, b, 40030, 80, 500_000, 600_000)
    refused = [
        v4(a, b) / TCP(sport=40030, dport=80, flags="S", seq=900_000),
        v4(b, a) / TCP(sport=80, dport=40030, flags="RA", seq=0, ack=900_001),
    ]
    open_one = conversation(v4, a, b, 40030, 80, 1_200_000, 1_300_000, close=False)
    far = conversation(v4, a, b, 40030, 80, 1_200_000 + 2**31, 3_000_000)
    write_scapy(HERE / "incarnations.pcap", first + second + refused + open_one + far)

    # Mid-stream pickups: data without a SYN (roles from ports); a SYN-ACK without SYN.
    mid = conversation(v4, "198.18.0.3", "198.18.0.4", 50000, 8443, 10_000, 20_000)[3:]
    mid_synack = conversation(v4, "198.18.0.5", "198.18.0.6", 50001, 5432, 30_000, 40_000)[1:]
    write_scapy(HERE / "midstream.pcap", mid + mid_synack)

    # TCP options: SACK blocks, unusual order, malformed lists, EOL padding, and a bad checksum.
    a, b = "198.18.0.7", "198.18.0.8"
    opt = [
        v4(a, b) / TCP(sport=40040, dport=80, flags="S", seq=100, options=[("WScale", 14), ("NOP", None), ("MSS", 536), ("SAckOK", b""), ("EOL", None)]),
        v4(b, a) / TCP(sport=80, dport=40040, flags="SA", seq=200, ack=101, options=[("MSS", 9000), ("Timestamp", (7, 9))]),
        v4(a, b) / TCP(sport=40040, dport=80, flags="A", seq=101, ack=201, options=[("NOP", None), ("NOP", None), ("SAck", (250, 300, 400, 500))]),
        v4(a, b) / TCP(sport=40040, dport=80, flags="A", seq=101, ack=201, options=[("Timestamp", (11, 12)), ("SAck", (250, 300))]),
        v4(a, b) / TCP(sport=40040, dport=80, flags="A", seq=101, ack=201, dataofs=7) / Raw(b"\x02\x01\xff\xff\x08\x0a\x00\x00"),  # length 1: stops the walk
        v4(a, b) / TCP(sport=40040, dport=80, flags="A", seq=101, ack=201, dataofs=6) / Raw(b"\x13\x12\x00\x00"),  # MD5 option cut short
        v4(a, b) / TCP(sport=40040, dport=80, flags="PA", seq=101, ack=201, chksum=0x1234) / (b"z" * 11),
        v4(a, b) / TCP(sport=40040, dport=80, flags="AE", seq=112, ack=201, options=[("NOP", None), ("NOP", None), ("Timestamp", (13, 12))]) / b"odd",
    ]
    write_scapy(HERE / "tcp-options.pcap", opt)

    # pcapng with three interfaces, each its own link type and timestamp resolution.
    pk = conversation(v4, "198.18.0.9", "198.18.0.10", 40050, 80, 5000, 6000)
    pk6 = conversation(lambda x, y: IPv6(src=x, dst=y), "fd00::9", "fd00::10", 40051, 80, 5000, 6000)
    raw4 = conversation(lambda x, y: IP(src=x, dst=y), "198.18.0.11", "198.18.0.12", 40052, 80, 7000, 8000)
    write_pcapng_multi(HERE / "multi-if.pcapng", [(1, 6, pk), (101, 9, pk6), (228, 0x94, raw4)])


def write_pcapng_multi(path: Path, interfaces) -> None:
    """One section; interface i has (linktype, if_tsresol byte, packets); EPBs interleaved by time."""

    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = len(body) + 12
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    def option(code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + option(1, b"crafted by make_captures.py") + option(0, b""))]
    events = []
    for iface, (linktype, tsresol, packets) in enumerate(interfaces):
        out.append(block(1, struct.pack("<HHI", linktype, 0, 262144) + option(2, f"if{iface}".encode()) + option(9, bytes([tsresol])) + option(0, b"")))
        for i, p in enumerate(packets):
            t_ns = BASE_TIME * 10**9 + i * 3_000_000 + iface * 1_000_000 + 777
            events.append((t_ns, iface, tsresol, bytes(p)))
    for t_ns, iface, tsresol, frame in sorted(events, key=lambda e: e[0]):
        if tsresol & 0x80:
            units = (t_ns << (tsresol & 0x7F)) // 10**9
        else:
            units = t_ns * 10 ** (tsresol) // 10**9
        body = struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(frame), len(frame)) + frame
        out.append(block(6, body))
    path.write_bytes(b"".join(out))


if __name__ == "__main__":
    steps = sys.argv[1:] or ["real", "editcap", "reframe", "crafted"]
    if "real" in steps:
        real_captures()
    if "editcap" in steps:
        editcap_variants()
    if "reframe" in steps:
        reframings()
    if "crafted" in steps:
        crafted()
    total = sum(p.stat().st_size for p in HERE.iterdir() if p.is_file())
    print(f"tests/data: {total} bytes")
