"""Baselines: findings recorded once are suppressed in a re-capture of the same traffic, where
client ports, frame numbers and connection ids have all changed; new problems still show."""

from __future__ import annotations

import json

import pytest

from pcapcheck.connections import Endpoint
from pcapcheck.errors import ConfigError
from pcapcheck.reports.baseline import apply_baseline, write_baseline_file
from pcapcheck.reports.gate import exit_code
from tests.test_reports_sample import C, close_wait, finding, rst_close, sample_result


def recapture(extra_rst_closes: int = 0, server_port: int = 8080):
    """The same problems as sample_result() seen in another run: new ephemeral ports, other
    traffic before them (frames shifted), connections in another order (ids changed)."""
    result = sample_result()
    cw = close_wait(id=1, first_frame=10)
    cw.client = Endpoint(cw.client.addr, 51234)
    rsts = []
    for n in range(1 + extra_rst_closes):
        conn = rst_close(id=2 + n, client=("198.18.0.1", 47000 + n), first_frame=100 + 20 * n)
        conn.server = Endpoint(conn.server.addr, server_port)
        rsts.append(conn)
    result.connections = [cw, *rsts]
    result.findings = [finding("close-wait-leak", cw, cw.last_frame, endpoint=C.peer)] + [
        finding("rst-instead-of-final-ack", conn, conn.first_frame + 7, endpoint=C) for conn in rsts
    ]
    return result


def test_recaptured_problems_are_suppressed_and_counted(tmp_path):
    baseline = tmp_path / "baseline.json"
    write_baseline_file(sample_result(), baseline)
    again = recapture()
    apply_baseline(again, baseline)
    assert again.findings == []
    assert again.suppressed == 2
    assert exit_code(again.findings, "error") == 0


def test_a_problem_occurring_more_often_than_recorded_is_still_reported(tmp_path):
    baseline = tmp_path / "baseline.json"
    write_baseline_file(sample_result(), baseline)
    again = recapture(extra_rst_closes=2)
    apply_baseline(again, baseline)
    assert [f.rule for f in again.findings] == ["rst-instead-of-final-ack"] * 2
    assert again.suppressed == 2
    assert exit_code(again.findings, "error") == 1


def test_the_same_rule_on_another_service_is_new(tmp_path):
    baseline = tmp_path / "baseline.json"
    write_baseline_file(sample_result(), baseline)
    again = recapture(server_port=9090)
    apply_baseline(again, baseline)
    assert [f.rule for f in again.findings] == ["rst-instead-of-final-ack"]


def test_baseline_file_records_identity_without_ports_or_frames(tmp_path):
    baseline = tmp_path / "baseline.json"
    write_baseline_file(sample_result(), baseline)
    entry = next(e for e in json.loads(baseline.read_text())["entries"] if e["rule"] == "rst-instead-of-final-ack")
    assert entry == {
        "rule": "rst-instead-of-final-ack",
        "endpoint": "client",
        "server_addr": "198.18.0.2",
        "server_port": 8080,
        "client_addr": "198.18.0.1",
        "count": 1,
    }


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json", "not a pcapcheck baseline"),
        ('{"format": "something-else"}', "not a pcapcheck baseline"),
        ('{"format": "pcapcheck-baseline", "version": 1, "entries": [{"rule": 3}]}', "entry 1: missing or bad field"),
    ],
)
def test_a_malformed_baseline_is_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "baseline.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"baseline.json: {problem}"):
        apply_baseline(sample_result(), path)


def test_a_missing_baseline_names_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.json: baseline file not found"):
        apply_baseline(sample_result(), tmp_path / "nope.json")
