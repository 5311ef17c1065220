"""Hand-built replays for unit tests of the checks (no tests of its own live here).

A check reads a Connection and its Replay.  These helpers build the Replay directly from a
``tests.builders.Conversation`` and the states a person knows are right, so each check can be
pinned down before, and independently of, the real replay:

    conv = Conversation().client("S").server("SA").client("A")
    conn, rep = replay_for(conv, ["SS SR", "SS SR", "E E"])        # client/server state after each frame
    findings = run_rule("abortive-close", conn, rep, capture_end=...)

States use short names: C CLOSED, L LISTEN, SS SYN-SENT, SR SYN-RECEIVED, E ESTABLISHED,
FW1/FW2 FIN-WAIT-1/2, CW CLOSE-WAIT, CL CLOSING, LA LAST-ACK, TW TIME-WAIT, U UNKNOWN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pcapcheck.catalogue import load_catalogue
from pcapcheck.checks import run_checks
from pcapcheck.config import Config
from pcapcheck.connections import Connection
from pcapcheck.findings import Finding
from pcapcheck.replay.model import Anomaly, Close, Replay, State, Step, TimeWait, Transition, Vantage
from pcapcheck.segments import Side
from tests.builders import Conversation

SHORT = {
    "C": State.CLOSED,
    "L": State.LISTEN,
    "SS": State.SYN_SENT,
    "SR": State.SYN_RECEIVED,
    "E": State.ESTABLISHED,
    "FW1": State.FIN_WAIT_1,
    "FW2": State.FIN_WAIT_2,
    "CW": State.CLOSE_WAIT,
    "CL": State.CLOSING,
    "LA": State.LAST_ACK,
    "TW": State.TIME_WAIT,
    "U": State.UNKNOWN,
}

_CATALOGUE = None


def catalogue():
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = load_catalogue()
    return _CATALOGUE


def replay_for(
    conv: Conversation,
    states: Iterable[str] | None = None,
    *,
    notes: Mapping[int, Iterable[str]] | None = None,
    lost: Iterable[int] = (),
    initial: str = "C L",
    close: Close = Close.OPEN,
    vantage: Vantage = Vantage.MIDDLE,
    anomalies: Iterable[Anomaly] = (),
    time_wait: TimeWait | None = None,
    id: int = 1,
    incarnation: int = 1,
) -> tuple[Connection, Replay]:
    """The Connection and a Replay with the given states after each segment.

    ``notes`` and ``lost`` are keyed by frame number; ``states`` default to UNKNOWN throughout.
    """
    conn = conv.connection(id=id, incarnation=incarnation)
    segments = list(conn.segments())
    after_list = [_pair(s) for s in states] if states is not None else [(State.UNKNOWN, State.UNKNOWN)] * len(segments)
    assert len(after_list) == len(segments), "one state pair per segment"
    notes = {frame: frozenset(n) for frame, n in (notes or {}).items()}
    lost = set(lost)
    before = _pair(initial) if states is not None else (State.UNKNOWN, State.UNKNOWN)
    steps: list[Step] = []
    transitions: list[Transition] = []
    for seg, after in zip(segments, after_list):
        me = 0 if seg.sender is Side.CLIENT else 1
        steps.append(
            Step(
                segment=seg,
                sender_before=before[me],
                sender_after=after[me],
                receiver_before=before[1 - me],
                receiver_after=after[1 - me],
                notes=notes.get(seg.frame, frozenset()),
                delivered=seg.frame not in lost,
            )
        )
        for side, old, new in ((Side.CLIENT, before[0], after[0]), (Side.SERVER, before[1], after[1])):
            if old is not new:
                transitions.append(Transition(seg.time, seg.frame, side, old, new, f"frame {seg.frame}"))
        before = after
    rep = Replay(
        connection_id=conn.id,
        steps=steps,
        transitions=transitions,
        anomalies=list(anomalies),
        final_state={Side.CLIENT: before[0], Side.SERVER: before[1]},
        close=close,
        vantage=vantage,
        time_wait=time_wait,
    )
    return conn, rep


def _pair(text: str) -> tuple[State, State]:
    client, server = text.split()
    return SHORT[client], SHORT[server]


def run_rule(
    rule: str,
    conn: Connection,
    rep: Replay,
    *,
    capture_end: float | None = None,
    previous: tuple[Connection, Replay] | None = None,
    config: Config | None = None,
) -> list[Finding]:
    """Findings of one rule, through run_checks (so the registry and configuration are exercised)."""
    found = run_checks(
        conn,
        rep,
        previous=previous,
        capture_end=capture_end,
        config=config or Config(),
        catalogue=catalogue(),
    )
    return [f for f in found if f.rule == rule]


def last_time(conv: Conversation) -> float:
    return conv.records[-1]["time"]


def only(rule: str, conv: Conversation, states=None, **kw) -> list[Finding]:
    """The findings of one rule on ``conv``; the capture runs on long after it unless told."""
    capture_end = kw.pop("capture_end", None)
    if capture_end is None:
        capture_end = last_time(conv) + 1000
    conn, rep = replay_for(conv, states, **kw)
    return run_rule(rule, conn, rep, capture_end=capture_end)


def frame_of(conv: Conversation) -> int:
    """Frame number of the segment sent last (to name an expectation while building)."""
    return conv.records[-1]["frame"]


# Ladders used by several test files.
def handshake(conv: Conversation | None = None, **syn_options) -> Conversation:
    conv = conv or Conversation()
    return conv.client("S", **syn_options).server("SA", **syn_options).client("A")


HANDSHAKE_STATES = ["SS SR", "E SR", "E E"]
