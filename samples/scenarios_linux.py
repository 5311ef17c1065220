"""Sample scenarios played by the real Linux TCP stack in throw-away namespaces (see netlab.py).

Each scenario is one function registered with ``@scenario(name)``: it builds a Lab, runs a client
and a server *script* (the small vocabulary below), captures, and returns a ``Sample`` whose
expectations (connections, findings, frame numbers) were written by reading the capture with
``tshark -r``.  The ``outline`` is that reading: make.py re-runs a scenario whose real packet
sequence came out different, so the frame numbers stay true.

Script steps (tuples), run in order on the connected socket:

    ("send", b"...")      write bytes                  ("recv",)      read once (data expected)
    ("eof",)              read until the peer's FIN     ("sleep", s)   pause s seconds
    ("shutdown",)         shutdown(SHUT_WR): send FIN   ("close",)     close()
    ("linger0",)          SO_LINGER {1, 0}: close() will send RST
    ("set", event)        tell the lab a moment came    ("wait", event) wait for the lab's go
                                                        (or a lab.barrier(n) shared by peers)
    ("hold",)             keep the socket as it is until the lab ends the peer

Client ports are pinned (40001, 40002, ...) and the server listens on 8080, so the expectations
read like the capture.  Delays are the scripts' own sleeps (no netem on this kernel); loss is an
iptables rule that drops exactly one packet (``Lab.drop_once``) placed where a real network would
lose it: after the capture point, before the receiving stack.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

from netlab import (
    Conn,
    Find,
    Lab,
    Sample,
    listener,
    scenario,
    tag_vlan,
    tcp_socket,
)

PORT = 8080
REQUEST = b"GET /state HTTP/1.0\r\n\r\n"
REPLY = b"HTTP/1.0 200 OK\r\n\r\nESTABLISHED\n"
SETTLE = 0.3  # after the last packet, before the capture stops: retransmissions and ACKs arrive


# ---- peers --------------------------------------------------------------------------------


def act(sock: socket.socket, script: list[tuple]) -> list[str]:
    """Run a script on a connected socket; return a log of what happened (for failures)."""
    log = []
    for op, *arg in script:
        try:
            if op == "send":
                sock.sendall(arg[0])
            elif op == "recv":
                log.append(f"recv {len(sock.recv(65536))}")
            elif op == "eof":
                while sock.recv(65536):
                    pass
                log.append("eof")
            elif op == "sleep":
                time.sleep(arg[0])
            elif op == "shutdown":
                sock.shutdown(socket.SHUT_WR)
            elif op == "close":
                sock.close()
            elif op == "linger0":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            elif op == "set":
                arg[0].set()
            elif op == "wait":
                # Event.wait gives False on timeout; Barrier.wait gives the party's index (or raises).
                if arg[0].wait(arg[1] if len(arg) > 1 else 20) is False:
                    raise TimeoutError("the lab never gave the go")
            elif op == "hold":
                time.sleep(60)
            else:
                raise ValueError(f"unknown script step {op!r}")
        except (ConnectionResetError, BrokenPipeError) as err:
            log.append(f"{op}: {type(err).__name__}")  # the peer reset us: what some scenarios want
    return log


def serve(addr: str, port: int, family: int, scripts: list[list[tuple]]) -> list[str]:
    """Listen on addr:port and run one script per accepted connection, in order."""
    ls = listener(addr, port, family)
    log = []
    for script in scripts:
        conn, _ = ls.accept()
        log += act(conn, script)
    return log


def connect(addr: str, port: int, family: int, cport: int, script: list[tuple], timeout: float | None = None) -> list[str]:
    """Connect from the pinned local port cport, then run the script."""
    sock = tcp_socket(family, port=cport)
    sock.settimeout(timeout)
    try:
        sock.connect((addr, port))
    except ConnectionRefusedError:
        return ["refused"]
    except (TimeoutError, socket.timeout):
        sock.close()
        return ["connect timed out"]
    sock.settimeout(None)
    return act(sock, script)


def ep(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def conversation(
    lab: Lab,
    cport: int,
    client_script: list[tuple],
    server_scripts: list[list[tuple]] | None,
    *,
    family: int = 4,
    timeout: float | None = None,
) -> tuple:
    """Start the server (if any), wait until it listens, start the client; return both peers."""
    addr = lab.addr("server", family)
    server = None
    if server_scripts is not None:
        server = lab.spawn("server", serve, addr, PORT, family, server_scripts)
        lab.wait_listening("server", PORT)
    client = lab.spawn("client", connect, addr, PORT, family, cport, client_script, timeout)
    return client, server


# The two everyday scripts: one request, one reply, then the client (or server) closes first.
def client_closes_first(pause: float = 0.1) -> tuple[list, list]:
    client = [("send", REQUEST), ("recv",), ("sleep", pause), ("close",)]
    server = [("recv",), ("sleep", 0.05), ("send", REPLY), ("eof",), ("sleep", pause), ("close",)]
    return client, server


GRACEFUL_OUTLINE = ["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "c:FA", "s:A", "s:FA", "c:A"]
GRACEFUL_TEXT = """The client connects from port {cport}, sends one request (frame 4), the server
acknowledges it (5) and replies (6), the client acknowledges (7).  The client closes first: FIN
(8), the server's kernel acknowledges it at once (9), the server application reads the end of
stream and closes: FIN (10), the client acknowledges it (11) and sits in TIME-WAIT until the
capture ends.  A clean graceful close: no findings."""


def graceful(lab: Lab, work: Path, name: str, cport: int, *, family: int = 4, vantage: str = "client",
             capture_file: str | None = None, tool: str = "tcpdump", iface: str | None = None,
             extra: list[str] | None = None) -> tuple[list[Path], str, str]:
    """Run the client-closes-first conversation with a capture; return (files, client, server)."""
    path = work / (capture_file or f"{name}.pcap")
    cap = lab.capture({"client": "client", "server": "server", "middle": "router"}[vantage], path,
                      tool=tool, iface=iface, extra=extra)
    client_script, server_script = client_closes_first()
    client, server = conversation(lab, cport, client_script, [server_script], family=family)
    client.join()
    server.join()
    lab.ss("client", "after the close: the client holds TIME-WAIT")
    cap.stop(SETTLE)
    return [path], ep(lab.addr("client", family), cport), ep(lab.addr("server", family), PORT)


# ---- 1. graceful close, client first --------------------------------------------------------


@scenario("graceful-client-close")
def graceful_client_close(work: Path) -> Sample:
    """Request, reply, the client closes first; clean four-way close, client in TIME-WAIT."""
    with Lab() as lab:
        files, client, server = graceful(lab, work, "graceful-client-close", 40001)
        return Sample(
            name="graceful-client-close", captures=files, vantage="client", client=client,
            description=GRACEFUL_TEXT.format(cport=40001),
            outline=GRACEFUL_OUTLINE,
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 2. graceful close, server first --------------------------------------------------------


@scenario("graceful-server-close")
def graceful_server_close(work: Path) -> Sample:
    """Request, reply, the server closes first; the server ends in TIME-WAIT."""
    name, cport = "graceful-server-close", 40002
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("server", path)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("recv",), ("eof",), ("sleep", 0.1), ("close",)],
            [[("recv",), ("sleep", 0.05), ("send", REPLY), ("sleep", 0.1), ("close",)]],
        )
        c.join(), s.join()
        lab.ss("server", "after the close: the server holds TIME-WAIT")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="server", client=client,
            description="""Captured at the server.  The client sends a request (frame 4), the server
acknowledges (5), replies (6), the client acknowledges (7).  The server closes first: FIN (8);
the client's kernel acknowledges at once (9); the client application reads the end of stream and
closes: FIN (10); the server acknowledges (11) and holds TIME-WAIT.  Clean.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "s:FA", "c:A", "c:FA", "s:A"],
            connections=[Conn(client, server, "CLOSED", "TIME-WAIT", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 3. abortive close with SO_LINGER {1, 0} ------------------------------------------------


@scenario("abortive-linger0")
def abortive_linger0(work: Path) -> Sample:
    """The client sets SO_LINGER {1,0} and closes: RST instead of FIN."""
    name, cport = "abortive-linger0", 40003
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("recv",), ("sleep", 0.1), ("linger0",), ("close",)],
            [[("recv",), ("sleep", 0.05), ("send", REPLY), ("eof",), ("close",)]],
        )
        c.join(), s.join()
        lab.ss("client", "after the RST: nothing left of the connection")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Request (frame 4) and reply (6) as usual, then the client application sets
SO_LINGER {on, 0 s} and closes: Linux sends RST+ACK (frame 8) instead of a FIN and the server's
read fails with ECONNRESET.  Both ends are CLOSED at once; abortive-close names the client's RST.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "c:RA"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "abortive")],
            findings=[Find("abortive-close", 1, "client", 8)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 4. close with unread data ---------------------------------------------------------------


@scenario("close-unread-data")
def close_unread_data(work: Path) -> Sample:
    """The server closes without reading the request: the kernel sends RST (RFC 2525 §2.17)."""
    name, cport = "close-unread-data", 40004
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("eof",), ("sleep", 0.1), ("close",)],
            [[("sleep", 0.2), ("close",)]],
        )
        c.join(), s.join()
        lab.ss("server", "after the server's close: no socket (RST sent, no FIN-WAIT)")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The client sends a request (frame 4) which the server's kernel acknowledges
(5), but the server application closes its socket 0.2 s later without reading it.  Closing with
unread data makes Linux send RST+ACK (frame 6, RFC 2525 §2.17 / RFC 9293 §3.10.4 ABORT
semantics) instead of a FIN.  The client's read ends with ECONNRESET.  abortive-close names the
server's RST.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:RA"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "abortive")],
            findings=[Find("abortive-close", 1, "server", 6)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 5./6. the final ACK lost once ---------------------------------------------------------


def _lost_final_ack(lab: Lab, work: Path, name: str, cport: int, *, half_close: bool = False,
                    lose_ack: bool = True) -> tuple[list[Path], str, str]:
    """Client closes first; its final ACK (the ACK of the server's FIN) is lost before the server.

    half_close: the client shuts down its sending side and keeps the socket until the server's
    FIN, instead of close() - so the socket is not an orphan while in FIN-WAIT-2.
    """
    closing = [("shutdown",), ("eof",), ("close",)] if half_close else [("close",)]
    path = work / f"{name}.pcap"
    cap = lab.capture("client", path)
    got_request, armed = lab.event(), lab.event()
    c, s = conversation(
        lab, cport,
        [("send", REQUEST), ("wait", armed), *closing, ("sleep", 1.0)],
        [[("recv",), ("set", got_request), ("eof",), ("sleep", 0.1), ("close",)]],
    )
    got_request.wait(10)
    time.sleep(0.1)  # the server's ACK of the request has gone by
    # From now on the first pure ACK from the client is lost between the capture and the
    # server's stack: that is the client's ACK of the server's FIN.
    if lose_ack:
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--tcp-flags", "ALL", "ACK")
    armed.set()
    s.join()
    time.sleep(0.05)
    lab.ss("client", "just after the server's FIN was answered (and that answer lost)")
    lab.ss("server", "just after the server's FIN was answered (and that answer lost)")
    time.sleep(0.75)  # the server's FIN retransmission (RTO >= 200 ms) and its answer
    lab.ss("client", "after the retransmitted FIN was answered")
    lab.ss("server", "after the retransmitted FIN was answered")
    c.join()
    cap.stop(SETTLE)
    return [path], ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)


@scenario("lost-final-ack")
def lost_final_ack(work: Path) -> Sample:
    """The client's final ACK is lost once; the server retransmits its FIN, TIME-WAIT re-ACKs: clean."""
    name, cport = "lost-final-ack", 40005
    with Lab() as lab:
        files, client, server = _lost_final_ack(lab, work, name, cport)
        return Sample(
            name=name, captures=files, vantage="client", client=client,
            description="""The client sends a request (frame 4) and closes first: FIN (6), ACKed by
the server (7); the server closes: FIN (8); the client's final ACK (9) is captured leaving the
client but an iptables rule in the server namespace drops it before the server's stack (a loss
after the capture point).  The server, in LAST-ACK, retransmits its FIN after its RTO (10); the
client, in TIME-WAIT, acknowledges it again (11, RFC 9293 §3.10.7.4 TIME-WAIT: "the only thing
that can arrive in this state is a retransmission of the remote FIN. Acknowledge it, and restart
the 2 MSL timeout").  This is TCP working as designed: no finding.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "c:FA", "s:A", "s:FA", "c:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("tw-not-kept-rst")
def tw_not_kept_rst(work: Path) -> Sample:
    """tcp_max_tw_buckets=0 and a lost final ACK: the retransmitted FIN is answered by RST."""
    name, cport = "tw-not-kept-rst", 40006
    with Lab() as lab:
        lab.sysctl("client", "net.ipv4.tcp_max_tw_buckets", 0)
        files, client, server = _lost_final_ack(lab, work, name, cport, half_close=True)
        return Sample(
            name=name, captures=files, vantage="client", client=client,
            description="""As lost-final-ack, but the client namespace has net.ipv4.tcp_max_tw_buckets=0,
so Linux keeps no TIME-WAIT state: once the client sends its final ACK (9) the connection is
gone ("TCP: time wait bucket table overflow").  The ACK is lost before the server (iptables drop
after the capture point), the server retransmits its FIN (10) and the client, having no
connection, answers with RST (11) - the failure TIME-WAIT exists to prevent (RFC 9293 §3.6.1,
RFC 1337).  The server's close fails; its side is torn down by the RST, so the close is counted
abortive.  Exactly one finding: rst-answers-fin-retransmit on the client's RST; it is the
specific form of (and replaces) abortive-close for that RST.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "c:FA", "s:A", "s:FA", "c:A", "s:FA", "c:R"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "abortive")],
            findings=[Find("rst-answers-fin-retransmit", 1, "client", 11)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("tw-buckets-zero-orphan")
def tw_buckets_zero_orphan(work: Path) -> Sample:
    """tcp_max_tw_buckets=0 and close(): the orphaned FIN-WAIT-2 socket is gone, the server's FIN gets RST."""
    name, cport = "tw-buckets-zero-orphan", 40026
    with Lab() as lab:
        lab.sysctl("client", "net.ipv4.tcp_max_tw_buckets", 0)
        files, client, server = _lost_final_ack(lab, work, name, cport, lose_ack=False)
        return Sample(
            name=name, captures=files, vantage="client", client=client,
            description="""Found while making tw-not-kept-rst: the client namespace has
net.ipv4.tcp_max_tw_buckets=0 and the client application close()s (not shutdown) after its
request.  Its FIN (6) is acknowledged (7), which puts the now orphaned socket in FIN-WAIT-2; Linux
moves an orphan in FIN-WAIT-2 to a TIME-WAIT bucket (tcp_time_wait(sk, TCP_FIN_WAIT2, ...)) and,
with no bucket allowed, destroys it.  The server's FIN (8) therefore finds no connection and is
answered by RST (9) where the final ACK belonged.  Nothing is lost on the wire.  Finding:
rst-instead-of-final-ack on the client's RST (the specific form of abortive-close for it).""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "c:FA", "s:A", "s:FA", "c:R"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "abortive")],
            findings=[Find("rst-instead-of-final-ack", 1, "client", 9)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 7. half-close with data flowing on -----------------------------------------------------


@scenario("half-close-data")
def half_close_data(work: Path) -> Sample:
    """The client shuts down its sending side; the server keeps sending, then closes."""
    name, cport = "half-close-data", 40007
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        chunk = b"line of data after the client's FIN\n"
        server_script = [("recv",), ("eof",), ("sleep", 0.1)]
        for _ in range(3):
            server_script += [("send", chunk), ("sleep", 0.1)]
        server_script += [("close",)]
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("sleep", 0.1), ("shutdown",), ("eof",), ("sleep", 0.1), ("close",)],
            [server_script],
        )
        s.join()
        lab.ss("client", "after the server's FIN")
        c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The client sends a request (frame 4, ACKed in 5) and shuts down its
sending side: FIN (6), ACKed (7).  The half-closed connection goes on: the server, in
CLOSE-WAIT, sends three more data segments (8, 10, 12), each acknowledged by the client in
FIN-WAIT-2 (9, 11, 13) - legal, RFC 9293 §3.6 ("a TCP endpoint ... may continue to receive").
The server then closes: FIN (14), ACKed by the client (15), which holds TIME-WAIT.  Clean:
data after the *peer's* FIN is not data-after-fin.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "c:FA", "s:A",
                     "s:PA", "c:A", "s:PA", "c:A", "s:PA", "c:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 8. CLOSE-WAIT leak -------------------------------------------------------------------------


@scenario("close-wait-leak")
def close_wait_leak(work: Path) -> Sample:
    """The server never closes after the client's FIN: CLOSE-WAIT for the rest of the capture."""
    name, cport, probe_port = "close-wait-leak", 40008, 40032
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("server", path)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("sleep", 0.1), ("close",)],
            [[("recv",), ("hold",)]],
        )
        c.join()
        time.sleep(1.5)
        lab.ss("server", "1.5 s after the client's FIN: the server application never closed")
        lab.ss("client", "1.5 s after its FIN: the client waits for the server's FIN")
        time.sleep(1.7)
        # A pcap file does not record when the capture stopped: only a later packet proves the
        # leak lasted.  A second, ordinary connection (to port 8081) 3.2 s later is that proof.
        client_script, server_script = client_closes_first()
        probe_server = lab.spawn("server", serve, lab.addr("server"), PORT + 1, 4, [server_script])
        lab.wait_listening("server", PORT + 1)
        lab.call("client", connect, lab.addr("server"), PORT + 1, 4, probe_port, client_script)
        probe_server.join()
        lab.ss("server", "at the end of the capture: still CLOSE-WAIT")
        cap.stop(SETTLE)  # before the server process ends (its exit would close the socket)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        probe_client, probe = ep(lab.addr("client"), probe_port), ep(lab.addr("server"), PORT + 1)
        return Sample(
            name=name, captures=[path], vantage="server", client=client,
            description="""Captured at the server.  The client sends a request (frame 4, ACKed in 5)
and closes: FIN (6), acknowledged by the server's kernel (7).  The server application read the
request but never calls close(): its socket stays in CLOSE-WAIT while the client waits in
FIN-WAIT-2.  3.2 s later a second, unrelated connection (client port 40032 to server port 8081,
frames 8-18, a clean graceful close) shows the capture was still running - a pcap file has no
end-of-capture time, only its last packet - so the server was in CLOSE-WAIT for more than 3 s.
With "close-wait-leak.threshold" = 2.0 s that is a close-wait-leak of the server on connection
1, evidenced by the client's FIN (frame 6).  The client's 3 s in FIN-WAIT-2 is far below the
linux profile's 60 s tcp_fin_timeout: no fin-wait-2-timeout.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "c:FA", "s:A"] + GRACEFUL_OUTLINE,
            connections=[Conn(client, server, "FIN-WAIT-2", "CLOSE-WAIT", "open"),
                         Conn(probe_client, probe, "TIME-WAIT", "CLOSED", "graceful")],
            findings=[Find("close-wait-leak", 1, "server", 6)],
            analysis={"params": {"close-wait-leak.threshold": 2.0}},
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 9. connection refused --------------------------------------------------------------------


def _refused(work: Path, name: str, cport: int, family: int) -> Sample:
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, _ = conversation(lab, cport, [], None, family=family)
        log = c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client", family), cport), ep(lab.addr("server", family), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description=f"""Nothing listens on port {PORT} in the server namespace.  The client's SYN
(frame 1) is answered by RST+ACK (frame 2, RFC 9293 §3.10.7.1: a segment to a CLOSED port gets
a reset; ack = ISN+1) and connect() fails with ECONNREFUSED (client saw: {log[0]}).  One
connection-refused note on the server's RST; nothing was established, so no abortive-close.""",
            outline=["c:S", "s:RA"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "refused")],
            findings=[Find("connection-refused", 1, "server", 2)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("refused")
def refused(work: Path) -> Sample:
    """SYN to a port with no listener: RST+ACK."""
    return _refused(work, "refused", 40009, 4)


@scenario("ipv6-refused")
def ipv6_refused(work: Path) -> Sample:
    """IPv6 SYN to a port with no listener: RST+ACK."""
    return _refused(work, "ipv6-refused", 40020, 6)


# ---- 10. SYN without answer -------------------------------------------------------------------


def _syn_no_answer(work: Path, name: str, cport: int, linear: bool) -> Sample:
    with Lab() as lab:
        if not linear:
            lab.sysctl("client", "net.ipv4.tcp_syn_retries", 2)
            lab.sysctl("client", "net.ipv4.tcp_syn_linear_timeouts", 0)
        lab.iptables("server", "-I", "INPUT", "-p", "tcp", "--dport", str(PORT), "--syn", "-j", "DROP")
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, s = conversation(lab, cport, [], [[("close",)]], timeout=3.5)
        time.sleep(0.5)
        lab.ss("client", "0.5 s after connect(): SYN-SENT")
        log = c.join()
        lab.ss("client", "after connect() timed out at 3.5 s")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        if linear:
            timing = """Linux's default net.ipv4.tcp_syn_linear_timeouts=4 (kernel 6.5 on) retransmits the
first four SYNs at a *linear* 1 s interval before backing off exponentially: the client's SYN
(frame 1) is repeated after 1 s (2), 2 s (3) and 3 s (4).  Each retransmission waits a full
initial RTO of 1 s (RFC 6298 §2.1), so none is too early; the missing doubling (§5.5) is a
deliberate Linux choice for SYNs and not a finding in the linux profile."""
            outline = ["c:S", "c:S", "c:S", "c:S"]
        else:
            timing = """With net.ipv4.tcp_syn_linear_timeouts=0 (Linux's default of 4 would space the
first retries linearly, see syn-linear-timeouts) the client's SYN (frame 1) is retransmitted
after the initial RTO of 1 s (frame 2, RFC 6298 §2.1) and again after 2 s more (frame 3, the
doubled back-off of §5.5)."""
            outline = ["c:S", "c:S", "c:S"]
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description=f"""A listener exists but an iptables rule in the server namespace drops every
SYN to port {PORT} after the capture point.  {timing}  The application's connect() timeout of
3.5 s ends the attempt (client saw: {log[0]}) - closing a SYN-SENT socket sends nothing.
handshake-incomplete on the first SYN.  Final states are those the capture shows: the client
still SYN-SENT; the server CLOSED - the SYNs never reached its stack, so no TCB for this
connection ever existed there (its listening socket is in LISTEN, but that is not this
connection's endpoint).""",
            outline=outline,
            connections=[Conn(client, server, "SYN-SENT", "CLOSED", "incomplete")],
            findings=[Find("handshake-incomplete", 1, "none", 1)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("syn-no-answer")
def syn_no_answer(work: Path) -> Sample:
    """SYNs dropped at the server: retransmitted after 1 s and 2 s more, then the client gives up."""
    return _syn_no_answer(work, "syn-no-answer", 40010, linear=False)


@scenario("syn-linear-timeouts")
def syn_linear_timeouts(work: Path) -> Sample:
    """SYNs dropped, Linux default tcp_syn_linear_timeouts=4: retries 1 s apart, no doubling."""
    return _syn_no_answer(work, "syn-linear-timeouts", 40027, linear=True)


# ---- 11. lost third handshake ACK ---------------------------------------------------------------


@scenario("lost-handshake-ack")
def lost_handshake_ack(work: Path) -> Sample:
    """The client's handshake ACK is lost; the server retransmits its SYN-ACK, the client re-ACKs."""
    name, cport = "lost-handshake-ack", 40011
    with Lab() as lab:
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--tcp-flags", "ALL", "ACK")
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, s = conversation(
            lab, cport,
            [("recv",), ("sleep", 0.1), ("close",)],
            [[("send", b"220 ready\r\n"), ("eof",), ("sleep", 0.1), ("close",)]],
        )
        time.sleep(0.3)
        lab.ss("server", "0.3 s after the SYN: the server still in SYN-RECV (its ACK was lost)")
        lab.ss("client", "0.3 s after the SYN: the client ESTABLISHED, waiting for the greeting")
        s.join(), c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The server speaks first, so the client has nothing to send after the
handshake.  Its ACK (frame 3) is dropped before the server's stack, which stays in SYN-RECEIVED
and retransmits the SYN-ACK after 1 s (frame 4, RFC 6298 §2.1 / RFC 9293 §3.8.1).  The client,
ESTABLISHED, answers the duplicate SYN-ACK with an ACK (5, RFC 9293 §3.10.7.4: an unacceptable
segment is answered with an ACK); now the server accepts the connection and sends its greeting
(6), ACKed (7).  The client closes: FIN (8), ACK (9), the server's FIN (10), final ACK (11).
Recovery by design: clean.""",
            outline=["c:S", "s:SA", "c:A", "s:SA", "c:A", "s:PA", "c:A", "c:FA", "s:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("lost-handshake-ack-data")
def lost_handshake_ack_data(work: Path) -> Sample:
    """The client's handshake ACK is lost; its first data segment completes the handshake."""
    name, cport = "lost-handshake-ack-data", 40021
    with Lab() as lab:
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--tcp-flags", "ALL", "ACK")
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        client_script, server_script = client_closes_first()
        c, s = conversation(lab, cport, [("sleep", 0.1)] + client_script, [server_script])
        s.join(), c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The client's handshake ACK (frame 3) is dropped before the server's stack.
0.1 s later, well before the server's SYN-ACK timer, the client sends its request (4); its ACK
field acknowledges the SYN-ACK, which completes the server's handshake (RFC 9293 §3.10.7.4,
SYN-RECEIVED: an acceptable ACK moves to ESTABLISHED) and the data is accepted (5).  Then reply
(6, 7) and a normal client-first close (8-11).  Clean.""",
            outline=GRACEFUL_OUTLINE,
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 20. SYN answered late (first SYN lost) -----------------------------------------------------


@scenario("syn-answered-late")
def syn_answered_late(work: Path) -> Sample:
    """The first SYN is lost; the retransmission 1 s later is answered and all proceeds normally."""
    name, cport = "syn-answered-late", 40023
    with Lab() as lab:
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--syn", size=60)
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        client_script, server_script = client_closes_first()
        c, s = conversation(lab, cport, client_script, [server_script])
        s.join(), c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The client's first SYN (frame 1) is dropped before the server's stack.
Linux retransmits it after the initial RTO of 1 s (frame 2, RFC 6298 §2.1, same ISN), the
server answers (3) and the connection runs its course: request, reply and a client-first close
(4-12).  A SYN retransmitted after 1 s is not too early: clean.""",
            outline=["c:S"] + GRACEFUL_OUTLINE,
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 12. simultaneous close ----------------------------------------------------------------------


@scenario("simultaneous-close")
def simultaneous_close(work: Path) -> Sample:
    """Both ends send FIN before receiving the other's (first FINs lost once each way): CLOSING on both."""
    name, cport = "simultaneous-close", 40012
    with Lab() as lab:
        # On veth a FIN is delivered within microseconds, so two shutdown() calls released by a
        # barrier never cross (tried: the second FIN always acknowledges the first).  Losing the
        # first FIN of each side after the capture point makes each side send its FIN without
        # having received the other's, which is what "simultaneous" means to the state machine.
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--tcp-flags", "FIN", "FIN")
        lab.drop_once("client", "INPUT", "-p", "tcp", "--dport", str(cport), "--tcp-flags", "FIN", "FIN")
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        both = lab.barrier(2)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("recv",), ("wait", both), ("shutdown",), ("eof",), ("sleep", 0.2), ("close",)],
            [[("recv",), ("sleep", 0.05), ("send", REPLY), ("wait", both), ("sleep", 0.05), ("shutdown",),
              ("eof",), ("sleep", 0.2), ("close",)]],
        )
        time.sleep(0.2)
        lab.ss("client", "both FINs sent, neither received: FIN-WAIT-1")
        lab.ss("server", "both FINs sent, neither received: FIN-WAIT-1")
        c.join(), s.join()
        lab.ss("client", "after the retransmitted FINs: TIME-WAIT")
        lab.ss("server", "after the retransmitted FINs: TIME-WAIT")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Request (4) and reply (6) as usual.  Then both applications shut down their
sending side, the server 50 ms after the client.  The client's FIN (frame 8) is lost before the
server's stack and the server's FIN (9, ack=24: it has not seen the client's FIN) before the
client's, so each side is in FIN-WAIT-1 having sent a FIN without receiving the other's - a
simultaneous close (RFC 9293 §3.6, case 2).  The client retransmits its FIN first (10); the
server, in FIN-WAIT-1, receives it and goes to CLOSING, acknowledging it (11) - which moves the
client to FIN-WAIT-2.  The server's FIN retransmission (12) then reaches the client, which goes
to TIME-WAIT and acknowledges it (13); that ACK takes the server from CLOSING to TIME-WAIT.
Both end in TIME-WAIT.  Note: a veth link cannot make the FINs cross on their own (the kernel
delivers within microseconds), hence the two one-shot iptables drops.  One simultaneous-close
note on the second FIN (9); the two losses are after the capture point and recovered: clean.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A",
                     "c:FA", "s:FA", "c:FA", "s:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "TIME-WAIT", "graceful")],
            findings=[Find("simultaneous-close", 1, "none", 9)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- a lost FIN, retransmitted ---------------------------------------------------------------------


@scenario("lost-fin-retransmitted")
def lost_fin_retransmitted(work: Path) -> Sample:
    """The client's FIN is lost once and retransmitted after the RTO; then a normal close."""
    name, cport = "lost-fin-retransmitted", 40028
    with Lab() as lab:
        lab.drop_once("server", "INPUT", "-p", "tcp", "--sport", str(cport), "--tcp-flags", "FIN", "FIN")
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        client_script, server_script = client_closes_first()
        c, s = conversation(lab, cport, client_script, [server_script])
        s.join(), c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Request (4) and reply (6).  The client's FIN (8) is dropped before the
server's stack; the client retransmits it after its RTO (9, about 200 ms: Linux's RTO floor),
the server acknowledges (10), closes (FIN 11) and the client's final ACK (12) leaves it in
TIME-WAIT.  A FIN retransmitted as RFC 9293 §3.10.8 requires: clean, no missing-fin-retransmit.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "c:FA", "c:FA", "s:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 13. capture started mid-stream ----------------------------------------------------------------


@scenario("midstream")
def midstream(work: Path) -> Sample:
    """tcpdump starts after the handshake and two exchanges; the rest is a normal close."""
    name, cport = "midstream", 40013
    with Lab() as lab:
        path = work / f"{name}.pcap"
        talked, go = lab.event(), lab.event()
        exchange = [("send", REQUEST), ("recv",), ("sleep", 0.1)]
        answer = [("recv",), ("sleep", 0.05), ("send", REPLY)]
        c, s = conversation(
            lab, cport,
            exchange * 2 + [("set", talked), ("wait", go)] + exchange * 2 + [("close",)],
            [answer * 4 + [("eof",), ("sleep", 0.1), ("close",)]],
        )
        talked.wait(10)
        lab.ss("client", "before the capture started: ESTABLISHED")
        cap = lab.capture("client", path)
        go.set()
        s.join(), c.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The handshake and two request/reply exchanges happen before tcpdump starts.
The capture begins with the third request (frame 1): the connection's first frame is mid-stream,
so its ISNs are unknown and the roles are inferred (port 8080 is the server).  Two exchanges
(1-8) and a client-first close (9-12) follow.  One capture-midstream note on frame 1; the close
itself is complete and graceful, the client ends in TIME-WAIT.""",
            outline=["c:PA", "s:A", "s:PA", "c:A"] * 2 + ["c:FA", "s:A", "s:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            findings=[Find("capture-midstream", 1, "none", 1)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 14. legal TIME-WAIT reuse -------------------------------------------------------------------


def reconnect(addr: str, port: int, cport: int, scripts: list[list[tuple]], gap: float) -> list[str]:
    """Connect from the same pinned port once per script, gap seconds apart."""
    log = []
    for i, script in enumerate(scripts):
        if i:
            time.sleep(gap)
        log += connect(addr, port, 4, cport, script)
    return log


@scenario("tw-reuse-client")
def tw_reuse_client(work: Path) -> Sample:
    """The client reconnects from its port while in TIME-WAIT (tcp_tw_reuse=1, timestamps): legal."""
    name, cport = "tw-reuse-client", 40014
    with Lab() as lab:
        lab.sysctl("client", "net.ipv4.tcp_tw_reuse", 1)
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        client_script, server_script = client_closes_first()
        s = lab.spawn("server", serve, lab.addr("server"), PORT, 4, [server_script, server_script])
        lab.wait_listening("server", PORT)
        c = lab.spawn("client", reconnect, lab.addr("server"), PORT, cport, [client_script, client_script], 2.1)
        time.sleep(1.0)
        lab.ss("client", "1 s after the first close: TIME-WAIT on 40014")
        s.join(), c.join()
        lab.ss("client", "after the second close: TIME-WAIT again (the first one was reused)")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Two incarnations of 198.18.0.1:40014 -> 198.18.0.2:8080.  The first is a
clean client-first close (frames 1-11) leaving the client in TIME-WAIT.  2.1 s later - long
before 2*MSL - the client binds port 40014 again and connects: with net.ipv4.tcp_tw_reuse=1 and
timestamps on both connections Linux reuses the TIME-WAIT tuple for an outgoing connection once
the last timestamp is more than 1 s old (the RFC 6191 / RFC 7323 §5.8 condition: the new SYN's
TSval is larger than any the old incarnation used, so old duplicates are rejected by PAWS).
The new SYN (frame 12) is a time-wait-reuse note (info) for the client, not short-time-wait.
The first incarnation's client TIME-WAIT ends with that SYN (CLOSED); the second closes
cleanly (12-22) with the client in TIME-WAIT.
The finding belongs to connection 2, whose SYN (its first frame) evidences it; connection 1's
TIME-WAIT ends with that SYN (Linux kills the TIME-WAIT socket it reuses), so its TIME-WAIT
holder's final state is CLOSED.""",
            outline=GRACEFUL_OUTLINE * 2,
            connections=[Conn(client, server, "CLOSED", "CLOSED", "graceful"),
                         Conn(client, server, "TIME-WAIT", "CLOSED", "graceful", incarnation=2)],
            findings=[Find("time-wait-reuse", 2, "client", 12)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("tw-reuse-server")
def tw_reuse_server(work: Path) -> Sample:
    """The server closed first (TIME-WAIT); a new SYN on the same tuple is accepted (RFC 6191)."""
    name, cport = "tw-reuse-server", 40024
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("server", path)
        client_script = [("send", REQUEST), ("recv",), ("eof",), ("sleep", 0.1), ("close",)]
        server_script = [("recv",), ("sleep", 0.05), ("send", REPLY), ("sleep", 0.1), ("close",)]
        s = lab.spawn("server", serve, lab.addr("server"), PORT, 4, [server_script, server_script])
        lab.wait_listening("server", PORT)
        c = lab.spawn("client", reconnect, lab.addr("server"), PORT, cport, [client_script, client_script], 1.1)
        time.sleep(0.8)
        lab.ss("server", "after the first close: the server holds TIME-WAIT")
        s.join(), c.join()
        lab.ss("server", "after the second close: TIME-WAIT again, for the second incarnation")
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="server", client=client,
            description="""Captured at the server.  First incarnation: request, reply, and the server
closes first (FIN 8), so the server holds TIME-WAIT after frame 11.  1.1 s later the client,
CLOSED since its LAST-ACK, connects again from the same port 40024.  The SYN (frame 12) reaches
the server's TIME-WAIT socket; its timestamp is newer than the last one seen (and its ISN beyond
the old RCV.NXT), so Linux accepts it as a new incarnation (RFC 6191; RFC 9293 §3.6.1 allows a
SYN in TIME-WAIT with a larger sequence number).  time-wait-reuse (info) for the server on frame
12.  The second incarnation repeats the same pattern (12-22); the server ends in TIME-WAIT.
The finding belongs to connection 2, whose SYN (its first frame) evidences it; connection 1's
TIME-WAIT ends with that SYN (Linux kills the TIME-WAIT socket it reuses), so its TIME-WAIT
holder's final state is CLOSED.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "s:FA", "c:A", "c:FA", "s:A"] * 2,
            connections=[Conn(client, server, "CLOSED", "CLOSED", "graceful"),
                         Conn(client, server, "CLOSED", "TIME-WAIT", "graceful", incarnation=2)],
            findings=[Find("time-wait-reuse", 2, "server", 12)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 15.-18. the same graceful close in other shapes: IPv6, VLAN, pcapng, SLL2, middle -------------


def _graceful_variant(work: Path, name: str, cport: int, text: str, *, lab_kw: dict | None = None,
                      vantage: str = "client", **capture_kw) -> Sample:
    with Lab(**(lab_kw or {})) as lab:
        family = capture_kw.pop("family", 4)
        files, client, server = graceful(lab, work, name, cport, family=family, vantage=vantage, **capture_kw)
        return Sample(
            name=name, captures=files, vantage=vantage, client=client,
            description=text + "\n\n" + GRACEFUL_TEXT.format(cport=cport),
            outline=GRACEFUL_OUTLINE,
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("ipv6-graceful")
def ipv6_graceful(work: Path) -> Sample:
    """Graceful client-first close over IPv6 (fd00::1 -> fd00::2)."""
    return _graceful_variant(work, "ipv6-graceful", 40015, "IPv6: [fd00::1]:40015 -> [fd00::2]:8080.", family=6)


@scenario("vlan-graceful")
def vlan_graceful(work: Path) -> Sample:
    """Graceful close with 802.1Q VLAN 100 tags on every frame (tag added to the real capture)."""
    name, cport = "vlan-graceful", 40016
    sample = _graceful_variant(
        work, name, cport,
        """Every frame carries an 802.1Q tag, VLAN 100.  This kernel has no vlan link type (no 8021q,
no bridge VLAN filtering, no tc vlan action), so the capture was taken on the veth untagged and
netlab.tag_vlan() then inserted the 4-byte tag after the MAC addresses of each frame; IP, TCP,
timestamps and frame numbers are exactly what the stack produced.""",
        capture_file=f"{name}-untagged.pcap",
    )
    tagged = work / f"{name}.pcap"
    tag_vlan(sample.captures[0], tagged, 100)
    sample.captures[0].unlink()
    sample.captures = [tagged]
    return sample


@scenario("pcapng-dumpcap")
def pcapng_dumpcap(work: Path) -> Sample:
    """Graceful close captured by dumpcap: pcapng with interface description blocks."""
    name = "pcapng-dumpcap"
    return _graceful_variant(work, name, 40017, "Captured with dumpcap (pcapng, one interface, eth0).",
                             tool="dumpcap", capture_file=f"{name}.pcapng")


@scenario("any-sll2")
def any_sll2(work: Path) -> Sample:
    """Graceful close captured with tcpdump -i any: Linux cooked v2 (SLL2) frames."""
    return _graceful_variant(work, "any-sll2", 40018,
                             "Captured with tcpdump -i any -y LINUX_SLL2: link type 276 (Linux cooked v2) headers.",
                             iface="any", extra=["-y", "LINUX_SLL2"])


@scenario("middle-graceful")
def middle_graceful(work: Path) -> Sample:
    """Graceful close captured on a router between the two hosts (middle vantage point)."""
    return _graceful_variant(
        work, "middle-graceful", 40025,
        """Captured in a router namespace between client (198.18.0.1) and server (198.18.1.2), on the
router's client-side interface: every segment is seen once, after the client's stack and before
the server's (SYN -> SYN-ACK and SYN-ACK -> ACK gaps are both a forwarding hop; TTL 64 from the
client, 63 from the server).""",
        lab_kw={"router": True}, vantage="middle",
    )


# ---- 19. a ring buffer of several files ------------------------------------------------------------


@scenario("ring-buffer")
def ring_buffer(work: Path) -> Sample:
    """dumpcap -b filesize:1 ring: one connection of 10 exchanges spread over several files."""
    name, cport = "ring-buffer", 40019
    with Lab() as lab:
        base = work / "ring.pcapng"
        # tcpdump 4.99.3 only rotates in units of 1 MB (-C); dumpcap's filesize is in kB.
        cap = lab.capture("client", base, tool="dumpcap", extra=["-b", "filesize:1", "-b", "files:9"])
        # The client pauses 0.25 s (longer than any delayed ACK) so its ACK of each reply is a
        # segment of its own; the server answers within 20 ms, less than the 40 ms minimum delayed
        # ACK, so once Linux sees the interactive pattern its ACK rides on the reply.
        exchange = [("send", REQUEST), ("recv",), ("sleep", 0.25)]
        answer = [("recv",), ("sleep", 0.02), ("send", REPLY)]
        c, s = conversation(lab, cport, exchange * 10 + [("close",)],
                            [answer * 10 + [("eof",), ("sleep", 0.1), ("close",)]])
        s.join(), c.join()
        cap.stop(SETTLE)
        # dumpcap names the files ring_00001_<time>.pcapng, ...; keep that order, shorter names.
        parts = sorted(work.glob("ring_*.pcapng"))
        files = [part.rename(work / f"part{i}.pcapng") for i, part in enumerate(parts)]
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=files, vantage="client", client=client, folder=True,
            description=f"""A dumpcap ring buffer (-b filesize:1 -b files:9: a new pcapng file once
1 kB is written) holding one connection: handshake (1-3), ten request/reply exchanges (4-34) and
a client-first close (35-38).  The first exchange has a separate ACK from the server (5, Linux's
quick-ACK start); afterwards the server's reply carries its ACK (delayed ACK, interactive mode),
so each later exchange is request, reply, client ACK.  The {len(files)} files part0.pcapng ...
part{len(files) - 1}.pcapng are one timeline: frame numbers are global over the files merged by
time (file order = time order), and the connection crosses every file boundary.  Clean; the
client ends in TIME-WAIT.""",
            outline=(["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A"] + ["c:PA", "s:PA", "c:A"] * 9
                     + ["c:FA", "s:A", "s:FA", "c:A"]),
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- 20. a connection still open when the capture ends ----------------------------------------------


@scenario("open-at-end")
def open_at_end(work: Path) -> Sample:
    """The capture stops while the connection is still ESTABLISHED."""
    name, cport = "open-at-end", 40022
    with Lab() as lab:
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        done = lab.event()
        c, s = conversation(lab, cport, [("send", REQUEST), ("recv",), ("set", done), ("hold",)],
                            [[("recv",), ("sleep", 0.05), ("send", REPLY), ("hold",)]])
        done.wait(10)
        time.sleep(0.2)
        lab.ss("client", "when the capture stops: ESTABLISHED")
        cap.stop(SETTLE)  # the peers are killed by the lab afterwards, unseen
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Handshake, one request (4) and its reply (6), then nothing: the capture ends
while both applications still hold the connection open.  Both ends ESTABLISHED, close "open";
being open at the end of a capture is not a fault and not a capture-quality problem: clean.""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A"],
            connections=[Conn(client, server, "ESTABLISHED", "ESTABLISHED", "open")],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- FIN-WAIT-2 timed out by the kernel (tcp_fin_timeout) ------------------------------------------


@scenario("fin-wait-2-orphan-timeout")
def fin_wait_2_orphan_timeout(work: Path) -> Sample:
    """tcp_fin_timeout=1: the orphaned client drops FIN-WAIT-2; the server's late FIN gets RST."""
    name, cport = "fin-wait-2-orphan-timeout", 40029
    with Lab() as lab:
        lab.sysctl("client", "net.ipv4.tcp_fin_timeout", 1)
        path = work / f"{name}.pcap"
        cap = lab.capture("client", path)
        c, s = conversation(
            lab, cport,
            [("send", REQUEST), ("recv",), ("sleep", 0.1), ("close",)],
            [[("recv",), ("sleep", 0.05), ("send", REPLY), ("eof",), ("sleep", 2.5), ("close",)]],
        )
        c.join()
        time.sleep(0.5)
        lab.ss("client", "0.5 s after the client's close: orphaned, FIN-WAIT-2")
        time.sleep(1.5)
        lab.ss("client", "2 s after the client's close: tcp_fin_timeout (1 s) has removed the socket")
        lab.ss("server", "2 s after the client's close: the server still in CLOSE-WAIT")
        s.join()
        cap.stop(SETTLE)
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The client namespace has net.ipv4.tcp_fin_timeout=1.  Request (4), reply (6);
the client application close()s: FIN (8), acknowledged (9), and the orphaned socket waits in
FIN-WAIT-2.  Linux keeps an orphan there only tcp_fin_timeout seconds (as a FIN-WAIT-2
"timewait" socket), then forgets it silently - nothing is sent.  The server application closes
2.5 s after reading the end of stream: its FIN (10) finds no connection and is answered by RST
(11) where the final ACK belonged.  With the default linux profile (fin_wait_2 = 60 s) that
RST is rst-instead-of-final-ack on the client; silence while the state was dropped is no
evidence, so no fin-wait-2-timeout; the server's 2.5 s in CLOSE-WAIT is far below the default
close-wait-leak threshold (60 s).""",
            outline=["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A", "c:FA", "s:A", "s:FA", "c:R"],
            connections=[Conn(client, server, "CLOSED", "CLOSED", "abortive")],
            findings=[Find("rst-instead-of-final-ack", 1, "client", 11)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


# ---- capture-quality samples from a real stack -------------------------------------------------------


@scenario("capture-gap")
def capture_gap(work: Path) -> Sample:
    """A segment missing from the capture (not from the network): the ACK covers data never seen."""
    name, cport = "capture-gap", 40030
    with Lab() as lab:
        full = work / f"{name}-full.pcap"
        cap = lab.capture("client", full)
        exchange = [("send", REQUEST), ("recv",), ("sleep", 0.25)]
        answer = [("recv",), ("sleep", 0.02), ("send", REPLY)]
        c, s = conversation(lab, cport, exchange * 3 + [("close",)],
                            [answer * 3 + [("eof",), ("sleep", 0.1), ("close",)]])
        s.join(), c.join()
        cap.stop(SETTLE)
        # The packet reached the server (the exchange went on), only the capture lost it - as a
        # capture buffer overflow does.  editcap deletes frame 8, the second request.
        path = work / f"{name}.pcap"
        lab.run("client", "editcap", str(full), str(path), "8")
        full.unlink()
        client, server = ep(lab.addr("client"), cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""Three request/reply exchanges and a client-first close, captured at the
client; then frame 8 of the original capture - the second request, 23 bytes - was deleted with
editcap, as a capture that dropped a packet (the network delivered it: the server answered).
In the stored file the server's reply (frame 8) acknowledges 23 bytes of client data the
capture never showed: capture-gap (info) on that frame.  Nothing else is wrong: the exchanges
and the graceful close are clean, and no violation may be reported because of the gap.""",
            outline=(["c:S", "s:SA", "c:A", "c:PA", "s:A", "s:PA", "c:A"] + ["s:PA", "c:A"]
                     + ["c:PA", "s:PA", "c:A"] + ["c:FA", "s:A", "s:FA", "c:A"]),
            connections=[Conn(client, server, "TIME-WAIT", "CLOSED", "graceful")],
            findings=[Find("capture-gap", 1, "none", 8)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )


@scenario("one-direction")
def one_direction(work: Path) -> Sample:
    """Only the client's packets captured (BPF 'src host'): a one-sided view of a graceful close."""
    name, cport = "one-direction", 40031
    with Lab() as lab:
        path = work / f"{name}.pcap"
        client_addr = lab.addr("client")
        cap = lab.capture("client", path, bpf=f"tcp and src host {client_addr}")
        client_script, server_script = client_closes_first()
        c, s = conversation(lab, cport, client_script, [server_script])
        s.join(), c.join()
        lab.ss("client", "after the close: the client holds TIME-WAIT")
        cap.stop(SETTLE)
        client, server = ep(client_addr, cport), ep(lab.addr("server"), PORT)
        return Sample(
            name=name, captures=[path], vantage="client", client=client,
            description="""The graceful client-first close of graceful-client-close, but captured with
the filter "tcp and src host 198.18.0.1": only the client's six segments are in the file (SYN 1,
ACK 2, request 3, ACK of the reply 4, FIN 5, final ACK 6).  Their ACK numbers show the server's
side went on (the ACK in 4 covers a 31-byte reply; the ACK in 6 is one more than the FIN's,
with no data between: the server's FIN), so the client ends in TIME-WAIT, but nothing the
server sent is visible: its state is UNKNOWN.  One capture-one-direction note on the first
frame and nothing else - in particular no handshake-incomplete or missing-fin-retransmit for
packets the capture simply does not contain.""",
            outline=["c:S", "c:A", "c:PA", "c:A", "c:FA", "c:A"],
            connections=[Conn(client, server, "TIME-WAIT", "UNKNOWN", "graceful")],
            findings=[Find("capture-one-direction", 1, "none", 1)],
            sysctl=lab.sysctls, ss=lab.snapshots,
        )
