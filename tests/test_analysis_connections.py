"""analyze_connections: what the analysis keeps of each connection, and of the incarnation before it."""

from __future__ import annotations

import numpy as np

import pcapcheck.analysis
from pcapcheck.analysis import analyze_connections
from pcapcheck.capture import CaptureInfo
from pcapcheck.catalogue import load_catalogue
from pcapcheck.config import load_config
from pcapcheck.connections import rebuild
from pcapcheck.errors import ConfigError
from tests.builders import Conversation

START = 1_700_000_000.0


def closed_by_client(start: float, client_isn: int) -> Conversation:
    conv = Conversation(start=start, client_isn=client_isn).client("S").server("SA").client("A")
    return conv.client("FA").server("A").server("FA").client("A")


def one_timeline(*conversations: Conversation) -> np.ndarray:
    rows = np.concatenate([c.rows() for c in conversations])
    rows = rows[np.argsort(rows["ts_ns"], kind="stable")]
    rows["frame"] = rows["file_frame"] = np.arange(1, len(rows) + 1)
    return rows


def run(rows: np.ndarray):
    config = load_config(None)
    catalogue = load_catalogue([])
    info = CaptureInfo(paths=["built"], last_time=int(rows["ts_ns"][-1]) / 1e9)
    return analyze_connections(
        rebuild([rows]), capture=info, profile=config.profile_for_run(), config=config, catalogue=catalogue
    )


def reopened_within_time_wait() -> np.ndarray:
    """The client closes first (TIME-WAIT), then reopens the same tuple 2 s later."""
    return one_timeline(closed_by_client(START, 1000), closed_by_client(START + 2, 900_000))


def test_a_new_incarnations_syn_ends_the_previous_reports_time_wait():
    first, second = run(reopened_within_time_wait()).reports
    assert (first.id, second.id, second.incarnation) == (1, 2, 2)
    assert first.client_final_state == "CLOSED"
    last = first.transitions[-1]
    assert (last.endpoint.value, last.from_state.value, last.to_state.value) == ("client", "TIME-WAIT", "CLOSED")
    assert last.cause == "new incarnation's SYN on the same 4-tuple"
    assert last.frame == second.first_frame


def test_the_previous_incarnation_reaches_the_checks_without_its_steps(monkeypatch):
    seen = []
    real = pcapcheck.analysis.run_checks

    def spy(conn, rep, *, previous, **kw):
        seen.append(previous)
        return real(conn, rep, previous=previous, **kw)

    monkeypatch.setattr(pcapcheck.analysis, "run_checks", spy)
    run(reopened_within_time_wait())
    assert seen[0] is None
    old_conn, old_replay = seen[1]
    assert old_conn.id == 1 and old_replay.steps == []
    assert [tw.ended_by for tw in old_replay.time_waits] == ["new-syn"]


def test_only_connections_with_findings_keep_their_steps():
    aborted = Conversation(client=("198.18.0.1", 40001), start=START + 5).client("S").server("SA").client("A")
    aborted.client("PA", length=10).server("A").client("RA")
    outcome = run(one_timeline(closed_by_client(START, 1000), aborted))
    clean, reset = outcome.reports
    assert {f.connection for f in outcome.findings} == {reset.id}
    assert clean.steps is None
    assert [s.segment.frame for s in reset.steps] == list(range(reset.first_frame, reset.last_frame + 1))


def test_an_error_while_checking_keeps_the_connections_before_it_and_says_where(monkeypatch):
    rows = one_timeline(
        closed_by_client(START, 1000),
        Conversation(client=("198.18.0.1", 40001), start=START + 5).client("S").server("SA"),
    )

    def failing(conn, rep, **kw):
        if conn.id == 2:
            raise ConfigError("bad parameter")
        return []

    monkeypatch.setattr(pcapcheck.analysis, "run_checks", failing)
    outcome = run(rows)
    assert [r.id for r in outcome.reports] == [1]
    assert (outcome.error, outcome.error_frame) == ("bad parameter", 8)
