"""JUnit XML, read back with junitparser: one test case per connection, failures at --fail-on."""

from __future__ import annotations

import pytest
from junitparser import Error, Failure, JUnitXml

from pcapcheck.reports import write_reports
from tests.test_reports_sample import sample_result


def cases_of(tmp_path, result):
    path = tmp_path / "junit.xml"
    write_reports(result, junit_path=path)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    return suites[0], {case.name: case for case in suites[0]}


def test_one_test_case_per_connection_named_after_its_endpoints(tmp_path):
    suite, cases = cases_of(tmp_path, sample_result())
    assert list(cases) == [
        "conn 1 198.18.0.1:40001 → 198.18.0.2:8080",
        "conn 2 [fd00::1]:40002 → [fd00::2]:443",
        "conn 3 198.18.0.1:40003 → 198.18.0.2:8080",
        "conn 4 198.18.0.3:40004 → 198.18.0.2:8080",
    ]
    assert suite.tests == 4


def test_findings_at_fail_on_are_failures_others_go_to_system_out(tmp_path):
    suite, cases = cases_of(tmp_path, sample_result(fail_on="error"))
    rst = cases["conn 1 198.18.0.1:40001 → 198.18.0.2:8080"]
    [failure] = rst.result
    assert isinstance(failure, Failure)
    assert failure.type == "rst-instead-of-final-ack"
    assert "frame 8" in failure.message
    leak = cases["conn 4 198.18.0.3:40004 → 198.18.0.2:8080"]
    assert leak.is_passed
    assert "close-wait-leak" in leak.system_out
    assert suite.failures == 1


def test_fail_on_warning_fails_the_close_wait_leak_too(tmp_path):
    suite, cases = cases_of(tmp_path, sample_result(fail_on="warning"))
    assert not cases["conn 4 198.18.0.3:40004 → 198.18.0.2:8080"].is_passed
    assert cases["conn 3 198.18.0.1:40003 → 198.18.0.2:8080"].is_passed  # capture notes are info
    assert suite.failures == 2


def test_fail_on_never_passes_every_connection(tmp_path):
    suite, cases = cases_of(tmp_path, sample_result(fail_on="never"))
    assert all(case.is_passed for case in cases.values())
    assert suite.failures == 0


def test_bad_input_adds_an_errored_capture_case(tmp_path):
    suite, cases = cases_of(tmp_path, sample_result(error="run.pcap: record 1301 is corrupt"))
    [error] = cases["capture"].result
    assert isinstance(error, Error)
    assert error.message == "run.pcap: record 1301 is corrupt"
    assert suite.errors == 1


# --- the streamed writer is the tree, byte for byte -----------------------------------------------


def _reference_junit_text(result) -> str:
    import io
    import xml.etree.ElementTree as ET

    from pcapcheck.reports.junit import build_junit

    tree = build_junit(result)
    ET.indent(tree)
    out = io.StringIO()
    tree.write(out, encoding="unicode", xml_declaration=True)
    return out.getvalue()


@pytest.mark.parametrize("case", ["connections", "none", "error", "orphans"])
def test_the_streamed_junit_file_is_the_indented_tree_byte_for_byte(tmp_path, case):
    from pcapcheck.findings import Finding, Severity
    from pcapcheck.reports.junit import write_junit

    result = sample_result(error="run.pcap: record 9 is corrupt" if case == "error" else None)
    if case == "none":
        result.connections = []
    if case == "orphans":
        result.findings.append(Finding("capture-gap", Severity.INFO, 99, None, 5, 1.0, "an orphan"))
    write_junit(result, tmp_path / "j.xml")
    assert (tmp_path / "j.xml").read_text(encoding="utf-8") == _reference_junit_text(result)


def test_every_sample_streams_the_same_junit_as_the_tree(tmp_path):
    from pcapcheck.analysis import analyze
    from pcapcheck.reports.junit import write_junit
    from tests.samples_support import all_samples, config_for

    for sample in all_samples():
        result = analyze([str(p) for p in sample.capture_paths], config_for(sample))
        write_junit(result, tmp_path / "j.xml")
        assert (tmp_path / "j.xml").read_text(encoding="utf-8") == _reference_junit_text(result), sample.name
