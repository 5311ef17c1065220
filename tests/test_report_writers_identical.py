"""The streaming JSON and CSV writers write exactly what the whole-document construction wrote.

The reference is the construction they replaced, kept beside them: the document through json.dumps
(json_report.reference_json_text) and one pandas DataFrame through to_csv
(csv_report.reference_connections_csv / reference_findings_csv).  Compared byte for byte on every
sample and on generated records with awkward values: NaN, infinite and negative times, -0.0,
unicode, quotes, commas and line breaks in strings, and values of unexpected types.

Also here: every report reads ``result.connections`` only by ``len()``, iteration and ``[:n]``
(what a sequence on disk offers), and a failing write keeps the previous CSV file.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pcapcheck.analysis import AnalysisResult, ConnectionReport
from pcapcheck.capture import CaptureInfo
from pcapcheck.config import Config
from pcapcheck.connections import Endpoint
from pcapcheck.errors import PcapcheckError
from pcapcheck.findings import Finding, Severity
from pcapcheck.profiles import PROFILES
from pcapcheck.replay.model import State, Transition
from pcapcheck.reports import csv_report, json_report, write_reports
from pcapcheck.reports.baseline import fingerprints
from pcapcheck.reports.csv_report import (
    reference_connections_csv,
    reference_findings_csv,
    write_connections_csv,
    write_findings_csv,
)
from pcapcheck.reports.json_report import reference_json_text, write_document
from pcapcheck.segments import Side
from tests.samples_support import all_samples, analyze_sample
from tests.test_reports_sample import sample_result

SAMPLES = all_samples()


def _text(write, result) -> str:
    buffer = io.StringIO(newline="")
    write(result, buffer)
    return buffer.getvalue()


def _references(result) -> tuple[str, str, str]:
    return (
        reference_json_text(result),
        _text(reference_connections_csv, result),
        _text(reference_findings_csv, result),
    )


def _streamed(result) -> tuple[str, str, str]:
    return _text(write_document, result), _text(write_connections_csv, result), _text(write_findings_csv, result)


def _no_fallback(monkeypatch) -> None:
    """Make the per-record and whole-file fallbacks fail: the fast formatting must cover the input."""

    def fallback(*_args, **_kw):
        raise AssertionError("fell back to the reference construction")

    monkeypatch.setattr(json_report, "connection_record", fallback)
    monkeypatch.setattr(csv_report, "reference_connections_csv", fallback)
    monkeypatch.setattr(csv_report, "reference_findings_csv", fallback)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_report_files_of_every_sample_equal_the_reference(sample, tmp_path, monkeypatch):
    result = analyze_sample(sample)
    json_text, connections_text, findings_text = _references(result)
    _no_fallback(monkeypatch)
    write_reports(result, json_path=tmp_path / "r.json", csv_dir=tmp_path / "csv")
    assert (tmp_path / "r.json").read_bytes() == json_text.encode("utf-8")
    assert (tmp_path / "csv" / "connections.csv").read_bytes() == connections_text.encode("utf-8")
    assert (tmp_path / "csv" / "findings.csv").read_bytes() == findings_text.encode("utf-8")


def test_the_report_sample_equals_the_reference(monkeypatch):
    result = sample_result(comments=["a, \"quoted\"\ncomment §"])
    expected = _references(result)
    _no_fallback(monkeypatch)
    assert _streamed(result) == expected


def _with_transition_times(times) -> AnalysisResult:
    result = sample_result()
    conn = result.connections[0]
    conn.transitions = [
        Transition(t, i, Side.CLIENT, State.CLOSED, State.SYN_SENT, "sent SYN") for i, t in enumerate(times)
    ]
    return result


def test_equal_times_that_json_writes_differently_are_each_formatted(monkeypatch):
    # The two endpoints' transitions on one segment share its time, and the writer reuses the text;
    # 0.0 == -0.0 and 1 == 1.0 are equal but written differently.
    result = _with_transition_times([0.0, -0.0, -0.0, 0.0, float("nan"), float("nan"), float("-inf"), 1e16, 1e16])
    expected = _references(result)
    with monkeypatch.context() as patch:
        _no_fallback(patch)
        assert _streamed(result) == expected
    result = _with_transition_times([1.0, 1, 1.0])
    assert _streamed(result) == _references(result)


# ---- generated records ----------------------------------------------------------------------------

AWKWARD_TEXT = st.sampled_from(
    ["", ",", '"', "a,b", 'say "hi"', "two\nlines", "cr\rlf", "crlf\r\n", "RFC 9293 §3.10.7.4", "é ü 中文 🙂",
     "\u2028", "\x00\x1f", " lead", "trail ", "\t", "null", "NaN", "-0.0", "\\", "</script>"]
)  # fmt: skip
TEXT = st.one_of(AWKWARD_TEXT, st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
INTS = st.integers(min_value=-(2**70), max_value=2**70)


def _maybe(usual, unusual, usual_only: bool):
    """``usual``, or (when odd types are allowed) sometimes a value of another type."""
    return usual if usual_only else st.one_of(usual, usual, usual, unusual)


@st.composite
def transitions(draw, usual_only: bool):
    return Transition(
        time=draw(_maybe(FLOATS, st.integers(-3, 3), usual_only)),
        frame=draw(_maybe(INTS, st.booleans(), usual_only)),
        endpoint=draw(st.sampled_from(Side)),
        from_state=draw(st.sampled_from(State)),
        to_state=draw(st.sampled_from(State)),
        cause=draw(TEXT),
        rfc=draw(TEXT),
    )


@st.composite
def connection_reports(draw, usual_only: bool):
    count = _maybe(INTS, st.one_of(st.booleans(), FLOATS), usual_only)
    name = _maybe(TEXT, st.none(), usual_only)
    number = _maybe(FLOATS, st.integers(-3, 3), usual_only)
    return ConnectionReport(
        id=draw(count),
        client=Endpoint(draw(TEXT), draw(st.integers(0, 65535))),
        server=Endpoint(draw(st.sampled_from(["198.18.0.2", "fd00::2", "a,b", 'q"'])), 8080),
        incarnation=draw(count),
        roles_inferred=draw(_maybe(st.booleans(), st.integers(0, 1), usual_only)),
        first_frame=draw(count),
        last_frame=draw(count),
        start=draw(number),
        end=draw(number),
        duration=draw(number),
        packets=draw(count),
        packets_client_to_server=draw(count),
        packets_server_to_client=draw(count),
        bytes_client_to_server=draw(count),
        bytes_server_to_client=draw(count),
        client_final_state=draw(_maybe(st.sampled_from([s.value for s in State]), name, usual_only)),
        server_final_state=draw(name),
        close=draw(TEXT),  # the summary sorts the kinds of close: always text
        vantage=draw(name),
        flags_seen=draw(name),
        transitions=draw(st.lists(transitions(usual_only), max_size=5)),
    )


@st.composite
def findings(draw, usual_only: bool):
    return Finding(
        rule=draw(TEXT),
        severity=draw(st.sampled_from(Severity)),
        connection=draw(_maybe(INTS, st.booleans(), usual_only)),
        endpoint=draw(st.one_of(st.none(), st.sampled_from(Side))),
        frame=draw(INTS),
        time=draw(_maybe(FLOATS, st.integers(-3, 3), usual_only)),
        message=draw(TEXT),
        rfc=draw(_maybe(TEXT, st.none(), usual_only)),
        capture_quality=draw(st.booleans()),
    )


@st.composite
def results(draw, usual_only: bool):
    return AnalysisResult(
        capture=CaptureInfo(paths=[draw(TEXT)], first_time=draw(FLOATS), comments=draw(st.lists(TEXT, max_size=2))),
        connections=draw(st.lists(connection_reports(usual_only), max_size=4)),
        findings=draw(st.lists(findings(usual_only), max_size=4)),
        rules={},
        profile=PROFILES["linux"],
        config=Config(),
        error=draw(st.one_of(st.none(), TEXT)),
        suppressed=draw(st.integers(0, 5)),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(result=results(usual_only=True))
def test_awkward_values_of_the_usual_types_are_formatted_without_the_reference(result, monkeypatch):
    expected = _references(result)
    with monkeypatch.context() as patch:
        _no_fallback(patch)
        assert _streamed(result) == expected


@settings(max_examples=300, deadline=None)
@given(result=results(usual_only=False))
def test_values_of_unexpected_types_are_written_as_the_reference_writes_them(result):
    assert _streamed(result) == _references(result)


# ---- reading result.connections like a sequence on disk -------------------------------------------


class DiskLikeConnections:
    """What ``result.connections`` may become: len(), iteration in id order and [:n]; no indexing by id."""

    def __init__(self, connections):
        self._connections = list(connections)

    def __len__(self) -> int:
        return len(self._connections)

    def __iter__(self):
        return iter(list(self._connections))

    def __getitem__(self, index):
        assert isinstance(index, slice) and index.start is None and index.step is None, index
        return self._connections[index]


def _every_report(result, folder) -> dict[str, bytes]:
    from rich.console import Console

    from pcapcheck.reports.terminal import print_summary

    folder.mkdir()
    write_reports(result, json_path=folder / "r.json", csv_dir=folder / "csv", html_path=folder / "r.html",
                  junit_path=folder / "r.xml", sarif_path=folder / "r.sarif")  # fmt: skip
    terminal = io.StringIO()
    print_summary(result, Console(file=terminal, width=100))
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    files["terminal"] = terminal.getvalue().encode()
    files["fingerprints"] = repr(fingerprints(result)).encode()
    return files


@pytest.mark.parametrize("name", ["tw-not-kept-rst", "capture-gap", "ring-buffer"])
def test_reports_read_the_connections_only_by_length_iteration_and_slices(name, tmp_path):
    sample = next(s for s in SAMPLES if s.name == name)
    result = analyze_sample(sample)
    as_list = _every_report(result, tmp_path / "list")
    result.connections = DiskLikeConnections(result.connections)
    assert _every_report(result, tmp_path / "disk") == as_list


def test_the_report_sample_reads_its_connections_as_a_sequence(tmp_path):
    result = sample_result()
    as_list = _every_report(result, tmp_path / "list")
    result.connections = DiskLikeConnections(result.connections)
    assert _every_report(result, tmp_path / "disk") == as_list


# ---- atomic writing ---------------------------------------------------------------------------------


def test_a_failure_writing_findings_csv_keeps_its_previous_file(tmp_path, monkeypatch):
    write_reports(sample_result(), csv_dir=tmp_path)
    findings_before = (tmp_path / "findings.csv").read_text()
    real_fsync = os.fsync
    calls = []

    def second_fails(fd):
        calls.append(fd)
        real_fsync(fd)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", second_fails)
    result = sample_result()
    result.findings = result.findings[:1]
    with pytest.raises(PcapcheckError, match="findings.csv: cannot write report: Input/output error"):
        write_reports(result, csv_dir=tmp_path)
    assert (tmp_path / "findings.csv").read_text() == findings_before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["connections.csv", "findings.csv"]
