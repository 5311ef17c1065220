"""Exit codes: 0 when nothing reaches --fail-on, 1 when something does; 'never' always 0."""

from __future__ import annotations

import dataclasses

import pytest

from pcapcheck.errors import ConfigError
from pcapcheck.findings import Severity
from pcapcheck.reports.gate import exit_code
from tests.test_reports_sample import sample_result


def findings_of(*severities):
    template = sample_result().findings[0]
    return [dataclasses.replace(template, severity=Severity(s)) for s in severities]


@pytest.mark.parametrize(
    ("severities", "fail_on", "expected"),
    [
        (("error",), "error", 1),
        (("warning", "info"), "error", 0),
        (("warning",), "warning", 1),
        (("info",), "warning", 0),
        (("info",), "info", 1),
        ((), "info", 0),
        (("error", "warning"), "never", 0),
    ],
)
def test_exit_code_follows_fail_on(severities, fail_on, expected):
    assert exit_code(findings_of(*severities), fail_on) == expected


def test_capture_quality_notes_count_as_info_whatever_their_severity():
    note = dataclasses.replace(findings_of("warning")[0], capture_quality=True)
    assert exit_code([note], "warning") == 0
    assert exit_code([note], "info") == 1


def test_unknown_fail_on_is_a_usage_error():
    with pytest.raises(ConfigError, match="--fail-on"):
        exit_code([], "critical")
