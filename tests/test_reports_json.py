"""The JSON report: one document whose field names the CSV, JUnit and SARIF reports share."""

from __future__ import annotations

import json

from pcapcheck import __version__
from pcapcheck.reports import write_reports
from tests.test_reports_sample import sample_result


def write_and_load(tmp_path, result):
    path = tmp_path / "report.json"
    write_reports(result, json_path=path)
    return json.loads(path.read_text(encoding="utf-8"))


def test_document_names_the_tool_capture_and_profile(tmp_path):
    doc = write_and_load(tmp_path, sample_result())
    assert doc["tool"] == {"name": "pcapcheck", "version": __version__}
    assert doc["capture"]["paths"] == ["captures/run.pcap"]
    assert doc["capture"]["packets"] == doc["capture"]["tcp_packets"] + 3
    assert doc["capture"]["first_time"] == 1_700_000_000.001
    assert doc["capture"]["link_types"] == ["EN10MB"]
    assert doc["profile"]["name"] == "linux" and doc["profile"]["time_wait"] == 60.0


def test_each_connection_has_the_documented_fields(tmp_path):
    doc = write_and_load(tmp_path, sample_result())
    required = {
        "id", "client", "server", "incarnation", "first_frame", "last_frame", "start", "end", "packets",
        "bytes_client_to_server", "bytes_server_to_client", "client_final_state", "server_final_state", "close",
        "vantage", "states",
    }  # fmt: skip
    assert [c["id"] for c in doc["connections"]] == [1, 2, 3, 4]
    for conn in doc["connections"]:
        assert required <= conn.keys()


def test_ipv6_endpoints_are_bracketed_and_states_use_rfc_names(tmp_path):
    v6 = write_and_load(tmp_path, sample_result())["connections"][1]
    assert v6["client"] == "[fd00::1]:40002" and v6["server"] == "[fd00::2]:443"
    assert v6["client_final_state"] == "TIME-WAIT" and v6["server_final_state"] == "CLOSED"
    assert v6["close"] == "graceful"


def test_states_list_every_transition_with_frame_and_cause(tmp_path):
    rst = write_and_load(tmp_path, sample_result())["connections"][0]
    client_moves = [(s["frame"], s["from"], s["to"]) for s in rst["states"] if s["endpoint"] == "client"]
    assert client_moves == [
        (1, "CLOSED", "SYN-SENT"),
        (2, "SYN-SENT", "ESTABLISHED"),
        (6, "ESTABLISHED", "FIN-WAIT-1"),
        (8, "FIN-WAIT-1", "CLOSED"),
    ]
    assert rst["states"][0]["cause"] == "sent S" and isinstance(rst["states"][0]["time"], float)


def test_findings_carry_rule_severity_role_frame_and_message(tmp_path):
    findings = write_and_load(tmp_path, sample_result())["findings"]
    assert [(f["rule"], f["severity"], f["connection"], f["endpoint"], f["frame"]) for f in findings] == [
        ("rst-instead-of-final-ack", "error", 1, "client", 8),
        ("capture-gap", "info", 3, None, 641),
        ("close-wait-leak", "warning", 4, "server", 2004),
    ]
    assert findings[0]["message"] == "RST sent instead of the final ACK (frame 8)"
    assert findings[0]["rfc"] == "RFC 9293 §3.6"
    assert findings[1]["capture_quality"] is True


def test_a_run_stopped_by_bad_input_still_reports_with_the_error(tmp_path):
    doc = write_and_load(tmp_path, sample_result(error="run.pcap: record 1301 is corrupt"))
    assert doc["error"] == "run.pcap: record 1301 is corrupt"
    assert len(doc["connections"]) == 4


def test_clean_run_has_null_error_and_zero_suppressed(tmp_path):
    result = sample_result()
    result.suppressed = 2
    doc = write_and_load(tmp_path, result)
    assert doc["error"] is None
    assert doc["suppressed"] == 2
    assert doc["summary"]["findings"] == {"error": 1, "warning": 1, "info": 1}
    assert doc["summary"]["close"] == {"graceful": 2, "abortive": 1, "open": 1}


def test_capture_loss_the_file_reports_is_in_the_document(tmp_path):
    result = sample_result()
    result.capture.dropped_by_interface = 7
    result.capture.truncated_packets = 2
    doc = write_and_load(tmp_path, result)
    assert doc["capture"]["dropped_by_interface"] == 7
    assert doc["capture"]["truncated_packets"] == 2


def test_a_file_without_drop_statistics_says_null_not_zero(tmp_path):
    doc = write_and_load(tmp_path, sample_result())
    assert doc["capture"]["dropped_by_interface"] is None
