"""run_checks: the registry, disabled rules, severity overrides; and the checks behind the real replay."""

from __future__ import annotations

import importlib
from pathlib import Path

from pcapcheck.checks import CHECKS, run_checks
from pcapcheck.config import Config, load_config
from pcapcheck.findings import Severity
from pcapcheck.profiles import get_profile
from pcapcheck.replay import replay
from pcapcheck.segments import Side
from tests.builders import Conversation
from tests.test_checks_support import catalogue, handshake, last_time, replay_for

CHECKS_DIR = Path(__file__).resolve().parent.parent / "pcapcheck" / "checks"


def abortive():
    conv = handshake().client("PA", length=100).server("A").client("R")  # RST frame 6
    return conv, replay_for(conv, ["SS SR", "E SR", "E E", "E E", "E E", "C C"])


def test_each_rule_module_is_named_after_its_rule_id():
    for rule_id in CHECKS:
        module = importlib.import_module(f"pcapcheck.checks.{rule_id.replace('-', '_')}")
        assert module.RULE == rule_id and module.check is CHECKS[rule_id]


def test_every_rule_module_is_registered():
    modules = {p.stem for p in CHECKS_DIR.glob("*.py") if not p.stem.startswith("_")}
    helpers = {"context", "reuse"}
    assert modules - helpers == {rule_id.replace("-", "_") for rule_id in CHECKS}


def test_disabled_rule_does_not_run():
    conv, (conn, rep) = abortive()
    kwargs = dict(previous=None, capture_end=last_time(conv), catalogue=catalogue())
    assert [f.rule for f in run_checks(conn, rep, config=Config(), **kwargs)] == ["abortive-close"]
    assert run_checks(conn, rep, config=load_config(disable=["abortive-close"]), **kwargs) == []


def test_severity_override_is_applied_to_findings():
    conv, (conn, rep) = abortive()
    config = load_config(severity=["abortive-close=error"])
    [f] = run_checks(conn, rep, previous=None, capture_end=last_time(conv), config=config, catalogue=catalogue())
    assert f.severity is Severity.ERROR


def test_findings_carry_the_rule_files_first_rfc_reference():
    conv, (conn, rep) = abortive()
    [f] = run_checks(conn, rep, previous=None, capture_end=last_time(conv), config=Config(), catalogue=catalogue())
    assert f.rfc == catalogue()["abortive-close"].rfc[0]


# Through the real replay ------------------------------------------------------------------------


def analysed(conv: Conversation, capture_end: float | None = None, profile: str = "linux"):
    conn = conv.connection()
    rep = replay(conn, get_profile(profile))
    end = capture_end if capture_end is not None else last_time(conv)
    return run_checks(conn, rep, previous=None, capture_end=end, config=Config(profile=profile), catalogue=catalogue())


def test_graceful_close_through_the_replay_has_no_findings():
    conv = handshake().client("PA", length=20).server("A").client("FA", dt=0.1).server("A").server("FA").client("A")
    assert analysed(conv) == []


def test_abortive_close_through_the_replay():
    conv = handshake().client("PA", length=20).server("A").client("RA", dt=0.1)
    assert [(f.rule, f.frame, f.endpoint) for f in analysed(conv)] == [("abortive-close", 6, Side.CLIENT)]


def test_refused_connection_through_the_replay_is_only_connection_refused():
    conv = Conversation().client("S").server("RA", seq=0)
    assert [(f.rule, f.frame, f.endpoint) for f in analysed(conv)] == [("connection-refused", 2, Side.SERVER)]


def test_rst_to_retransmitted_fin_through_the_replay():
    conv = handshake().client("PA", length=20).server("A").client("FA", dt=0.1).server("A").server("FA")
    fin_seq = conv.records[-1]["seq"]
    conv.client("A").server("FA", seq=fin_seq, dt=0.2).client("R")  # frames 9, 10, 11
    found = [(f.rule, f.frame, f.endpoint) for f in analysed(conv)]
    assert found == [("rst-answers-fin-retransmit", 11, Side.CLIENT)]


def test_midstream_through_the_replay_is_only_a_capture_note():
    conv = Conversation().client("PA", length=20).server("A").client("FA", dt=0.1).server("A").server("FA")
    conv.client("A")
    found = analysed(conv)
    assert [(f.rule, f.capture_quality) for f in found] == [("capture-midstream", True)]


def lost_final_ack_reacked():
    conv = handshake().client("PA", length=20).server("A").client("FA", dt=0.1).server("A").server("FA")
    fin_seq = conv.records[-1]["seq"]
    return conv.client("A").server("FA", seq=fin_seq, dt=0.2).client("A")


def data_lost_by_the_capture():
    conv = handshake().client("PA", length=100)
    conv.next_seq[0] += 500  # 500 bytes the capture missed
    return conv.server("A").client("FA", dt=0.1).server("FA").client("A")


def client_direction_only():
    conv = Conversation().client("S").client("A", ack=5001).client("PA", length=100, ack=5001)
    return conv.client("FA", ack=5001, dt=0.1)


def test_lost_final_ack_is_retransmitted_and_reacked_without_findings():
    assert analysed(lost_final_ack_reacked()) == []


def test_capture_loss_through_the_replay_is_only_a_capture_gap_note():
    found = analysed(data_lost_by_the_capture())
    assert [(f.rule, f.frame, f.capture_quality) for f in found] == [("capture-gap", 5, True)]


def test_one_direction_through_the_replay_is_only_a_capture_note_even_long_after():
    conv = client_direction_only()
    found = analysed(conv, capture_end=last_time(conv) + 600)
    assert [(f.rule, f.capture_quality) for f in found] == [("capture-one-direction", True)]


def test_close_wait_leak_through_the_replay():
    conv = handshake().client("FA").server("A")
    found = analysed(conv, capture_end=last_time(conv) + 120)
    assert [(f.rule, f.frame, f.endpoint) for f in found] == [("close-wait-leak", 4, Side.SERVER)]


def test_unacknowledged_fin_through_the_replay_is_missing_fin_retransmit():
    # The client goes on acknowledging below the server's FIN: proof that the FIN went unanswered.
    conv = handshake().client("PA", length=10).server("A").server("FA", dt=0.1)
    conv.client("PA", length=10, ack=conv.records[-1]["seq"], dt=0.5)
    found = analysed(conv, capture_end=last_time(conv) + 10)
    assert [(f.rule, f.frame, f.endpoint) for f in found] == [("missing-fin-retransmit", 6, Side.SERVER)]
