"""A hand-built AnalysisResult for the report tests (no tests here: the test_reports_* files use it).

Each connection is a script of segments with the states a person expects each endpoint to be in
after it, so the reports are tested on real Segment/Step/Transition objects without the replay.
"""

from __future__ import annotations

from pcapcheck.analysis import AnalysisResult, ConnectionReport
from pcapcheck.capture import CaptureInfo
from pcapcheck.catalogue import RuleSpec
from pcapcheck.config import Config
from pcapcheck.findings import Finding, Severity
from pcapcheck.profiles import PROFILES
from pcapcheck.replay.model import State, Step, Transition
from pcapcheck.segments import Side
from tests.builders import Conversation

C, S = Side.CLIENT, Side.SERVER
CL, LI, SS, SR, ES = State.CLOSED, State.LISTEN, State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED
FW1, FW2, CW, LA, TW = State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT, State.LAST_ACK, State.TIME_WAIT

HANDSHAKE = [
    (C, "S", {}, SS, SR, ()),
    (S, "SA", {}, SR, ES, ()),
    (C, "A", {}, ES, ES, ()),
]

RULES = {
    "rst-instead-of-final-ack": RuleSpec(
        id="rst-instead-of-final-ack",
        title="RST sent instead of the final ACK",
        severity=Severity.ERROR,
        category="close",
        rfc=("RFC 9293 §3.6",),
        explanation="The active closer must acknowledge the peer's FIN and enter TIME-WAIT.",
        remedy="Do not set SO_LINGER with a zero timeout.",
    ),
    "close-wait-leak": RuleSpec(
        id="close-wait-leak",
        title="Endpoint stuck in CLOSE-WAIT",
        severity=Severity.WARNING,
        category="close",
        rfc=("RFC 9293 §3.6",),
        explanation="The application never closed its socket after the peer's FIN.",
        remedy="Close the socket when read() returns 0.",
    ),
    "capture-gap": RuleSpec(
        id="capture-gap",
        title="Capture lost packets",
        severity=Severity.INFO,
        category="capture-quality",
        rfc=(),
        explanation="The capture acknowledges data it never saw.",
        remedy="Capture with a larger buffer.",
    ),
}


def scripted(
    script,
    *,
    id: int,
    client=("198.18.0.1", 40001),
    server=("198.18.0.2", 8080),
    first_frame: int = 1,
    start: float = 1_700_000_000.0,
    close: str = "graceful",
    keep_steps: bool = True,
) -> ConnectionReport:
    """A ConnectionReport from (sender, flags, kwargs, sender_after, receiver_after, notes) rows."""
    conv = Conversation(client=client, server=server, start=start).skip_frame(first_frame - 1)
    for side, flags, kw, *_ in script:
        conv.send(0 if side is C else 1, flags, **kw)
    conn = conv.connection(id=id)
    state = {C: CL, S: LI} if script[0][1] == "S" else {C: ES, S: ES}
    steps: list[Step] = []
    transitions: list[Transition] = []
    for segment, (side, flags, _kw, sender_after, receiver_after, notes) in zip(conn.segments(), script):
        before = dict(state)
        for who, after, verb in ((side, sender_after, "sent"), (side.peer, receiver_after, "received")):
            if after != state[who]:
                transitions.append(Transition(segment.time, segment.frame, who, state[who], after, f"{verb} {flags}"))
                state[who] = after
        steps.append(Step(segment, before[side], sender_after, before[side.peer], receiver_after, frozenset(notes)))
    return ConnectionReport(
        id=conn.id,
        client=conn.client,
        server=conn.server,
        incarnation=conn.incarnation,
        roles_inferred=conn.roles_inferred,
        first_frame=conn.first_frame,
        last_frame=conn.last_frame,
        start=conn.start,
        end=conn.end,
        duration=conn.duration,
        packets=conn.packets,
        packets_client_to_server=conn.packets_sent(C),
        packets_server_to_client=conn.packets_sent(S),
        bytes_client_to_server=conn.bytes_sent(C),
        bytes_server_to_client=conn.bytes_sent(S),
        client_final_state=state[C].value,
        server_final_state=state[S].value,
        close=close,
        vantage="middle",
        flags_seen="SFRP.",
        transitions=transitions,
        steps=steps if keep_steps else None,
    )


def rst_close(id=1, client=("198.18.0.1", 40001), first_frame=1, start=1_700_000_000.0) -> ConnectionReport:
    """Frames first..first+7: handshake, 100 bytes, client FIN, server FIN, client RST (frame first+7)."""
    return scripted(
        HANDSHAKE
        + [
            (C, "PA", {"length": 100}, ES, ES, ()),
            (S, "A", {}, ES, ES, ()),
            (C, "FA", {}, FW1, CW, ()),
            (S, "FA", {}, LA, FW1, ()),  # the server's FIN crosses the client's ACK of it
            (C, "R", {}, CL, CL, ()),
        ],
        id=id,
        client=client,
        first_frame=first_frame,
        start=start,
        close="abortive",
    )


def graceful_v6(id=2, first_frame=20) -> ConnectionReport:
    return scripted(
        HANDSHAKE
        + [
            (C, "FA", {}, FW1, CW, ()),
            (S, "A", {}, CW, FW2, ()),
            (S, "FA", {}, LA, TW, ()),
            (C, "A", {}, TW, CL, ()),
        ],
        id=id,
        client=("fd00::1", 40002),
        server=("fd00::2", 443),
        first_frame=first_frame,
        start=1_700_000_001.0,
        keep_steps=False,
    )


def long_transfer(id=3, data_segments=600, first_frame=40) -> ConnectionReport:
    """Handshake, ``data_segments`` data/ACK pairs, graceful close."""
    data = []
    for _ in range(data_segments):
        data.append((C, "PA", {"length": 1000}, ES, ES, ()))
        data.append((S, "A", {}, ES, ES, ()))
    close = [
        (C, "FA", {}, FW1, CW, ()),
        (S, "A", {}, CW, FW2, ()),
        (S, "FA", {}, LA, TW, ()),
        (C, "A", {}, TW, CL, ()),
    ]
    return scripted(
        HANDSHAKE + data + close, id=id, client=("198.18.0.1", 40003), first_frame=first_frame, start=1_700_000_002.0
    )


def close_wait(id=4, first_frame=2000) -> ConnectionReport:
    return scripted(
        HANDSHAKE + [(C, "FA", {}, FW1, CW, ()), (S, "A", {}, CW, FW2, ())],
        id=id,
        client=("198.18.0.3", 40004),
        first_frame=first_frame,
        start=1_700_000_005.0,
        close="open",
    )


def finding(rule, conn: ConnectionReport, frame, endpoint=None, capture_quality=False, message=None) -> Finding:
    spec = RULES[rule]
    return Finding(
        rule=rule,
        severity=spec.severity,
        connection=conn.id,
        endpoint=endpoint,
        frame=frame,
        time=conn.start + 0.001 * (frame - conn.first_frame),
        message=message or f"{spec.title} (frame {frame})",
        rfc=spec.rfc[0] if spec.rfc else "",
        capture_quality=capture_quality,
    )


def sample_result(
    *,
    fail_on: str = "error",
    paths=("captures/run.pcap",),
    comments=(),
    error: str | None = None,
) -> AnalysisResult:
    """Four connections: an RST close (error), IPv6 graceful (clean), a long transfer with a capture
    gap in the middle (info), a server left in CLOSE-WAIT (warning)."""
    rst, v6, long, cw = rst_close(), graceful_v6(), long_transfer(), close_wait()
    middle = long.first_frame + 601  # a data segment in the middle of the transfer
    findings = [
        finding("rst-instead-of-final-ack", rst, rst.first_frame + 7, endpoint=C),
        finding("capture-gap", long, middle, capture_quality=True),
        finding("close-wait-leak", cw, cw.last_frame, endpoint=S),
    ]
    first, last = rst.start, cw.end
    return AnalysisResult(
        capture=CaptureInfo(
            paths=list(paths),
            packets=rst.packets + v6.packets + long.packets + cw.packets + 3,
            tcp_packets=rst.packets + v6.packets + long.packets + cw.packets,
            non_tcp_packets=3,
            first_time=first,
            last_time=last,
            link_types=["EN10MB"],
            comments=list(comments),
        ),
        connections=[rst, v6, long, cw],
        findings=sorted(findings, key=lambda f: (f.frame, f.connection, f.rule)),
        rules=dict(RULES),
        profile=PROFILES["linux"],
        config=Config(fail_on=fail_on),
        error=error,
    )
