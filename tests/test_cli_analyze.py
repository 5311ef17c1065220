"""`pcapcheck analyze`: reports, exit codes and the baseline, first with the analysis stubbed by a
hand-built result (the CLI's own wiring), then end to end on real captures in samples/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from junitparser import JUnitXml
from typer.testing import CliRunner

import pcapcheck.analysis
from pcapcheck.cli import app
from pcapcheck.errors import CaptureError
from tests.test_reports_sample import sample_result

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["analyze", *map(str, args)])


@pytest.fixture
def analysis_returns(monkeypatch):
    """Make the pipeline return ``result`` (with the run's --fail-on) for any capture."""

    def install(make_result):
        def fake(paths, config, *, reader="dpkt", progress=None, render=None, steps=True, all_reports=True, by_id=True):
            result = make_result()
            result.config = config
            return result

        monkeypatch.setattr(pcapcheck.analysis, "analyze", fake)

    return install


def test_an_error_finding_fails_the_run_with_exit_1(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    result = run(tmp_path / "run.pcap")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.stdout and "rst-instead-of-final-ack" in result.stdout


def test_fail_on_never_always_exits_0(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    assert run(tmp_path / "run.pcap", "--fail-on", "never").exit_code == 0


def test_a_bad_fail_on_value_is_a_usage_error(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    result = run(tmp_path / "run.pcap", "--fail-on", "sometimes")
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("pcapcheck: error: --fail-on must be one of")


def test_every_report_is_written(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    out = tmp_path / "out"
    out.mkdir()
    result = run(
        tmp_path / "run.pcap", "-q", "--json", out / "r.json", "--csv", out / "csv", "--html", out / "r.html",
        "--junit", out / "junit.xml", "--sarif", out / "r.sarif",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stdout == ""  # --quiet: no summary
    assert json.loads((out / "r.json").read_text())["findings"][0]["rule"] == "rst-instead-of-final-ack"
    assert (out / "csv" / "connections.csv").exists() and (out / "csv" / "findings.csv").exists()
    assert "<svg" in (out / "r.html").read_text()
    assert len(list(next(iter(JUnitXml.fromfile(str(out / "junit.xml")))))) == 4
    assert json.loads((out / "r.sarif").read_text())["version"] == "2.1.0"


def test_baseline_turns_known_problems_into_a_pass(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    baseline = tmp_path / "baseline.json"
    assert run(tmp_path / "run.pcap", "--write-baseline", baseline).exit_code == 1
    again = run(tmp_path / "run.pcap", "--baseline", baseline, "--json", tmp_path / "r.json")
    assert again.exit_code == 0, again.output
    assert "3 suppressed by the baseline" in again.stdout
    assert json.loads((tmp_path / "r.json").read_text())["suppressed"] == 3


def test_bad_input_part_way_still_writes_the_reports_and_exits_2(tmp_path, analysis_returns):
    analysis_returns(lambda: sample_result(error="run.pcap: record 1301: truncated header"))
    result = run(tmp_path / "run.pcap", "--json", tmp_path / "r.json")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == ["pcapcheck: error: run.pcap: record 1301: truncated header"]
    assert json.loads((tmp_path / "r.json").read_text())["error"] == "run.pcap: record 1301: truncated header"


def test_unreadable_capture_is_one_line_and_exit_2(tmp_path, monkeypatch):
    def refuse(paths, config, **kw):
        raise CaptureError(paths[0], "not a pcap or pcapng file")

    monkeypatch.setattr(pcapcheck.analysis, "analyze", refuse)
    result = run(tmp_path / "notes.txt")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"pcapcheck: error: {tmp_path / 'notes.txt'}: not a pcap or pcapng file"


def test_an_unwritable_report_is_one_line_and_exit_2(tmp_path, analysis_returns):
    analysis_returns(sample_result)
    result = run(tmp_path / "run.pcap", "--json", tmp_path / "missing" / "r.json")
    assert result.exit_code == 2
    assert "cannot write report" in result.stderr and "Traceback" not in result.output


# End to end, on captures made by samples/make.py (expectations in samples/<name>.toml).


def test_graceful_close_sample_passes_and_reports_time_wait(tmp_path):
    result = run(SAMPLES / "graceful-client-close.pcap", "--json", tmp_path / "r.json", "--fail-on", "info")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r.json").read_text())
    [conn] = doc["connections"]
    assert (conn["client"], conn["server"]) == ("198.18.0.1:40001", "198.18.0.2:8080")
    assert (conn["client_final_state"], conn["server_final_state"], conn["close"]) == ("TIME-WAIT", "CLOSED", "graceful")
    assert doc["findings"] == []


def test_abortive_close_sample_fails_only_at_warning(tmp_path):
    assert run(SAMPLES / "abortive-linger0.pcap").exit_code == 0  # abortive-close is a warning
    result = run(SAMPLES / "abortive-linger0.pcap", "--fail-on", "warning", "--junit", tmp_path / "j.xml")
    assert result.exit_code == 1
    [case] = list(next(iter(JUnitXml.fromfile(str(tmp_path / "j.xml")))))
    assert case.name == "conn 1 198.18.0.1:40003 → 198.18.0.2:8080"
    assert case.result[0].type == "abortive-close"
