"""The CI gate: which findings fail the run, and the exit code that says so.

0: no finding reaches --fail-on; 1: at least one does; --fail-on never: always 0.
(2, usage or input error, is the CLI's.)  Capture-quality notes are info: a capture that lost
packets must not fail a build unless the user asks for --fail-on info.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import ConfigError
from ..findings import Finding, Severity
from .document import kind_counts

EXIT_OK = 0
EXIT_FINDINGS = 1
FAIL_ON_CHOICES = ("error", "warning", "info", "never")


def effective_severity(finding: Finding) -> Severity:
    """Capture-quality notes never count above info, whatever their rule file says."""
    return Severity.INFO if finding.capture_quality else finding.severity


def threshold(fail_on: str) -> Severity | None:
    """The lowest severity that fails the run, None for 'never'."""
    value = str(fail_on).lower()
    if value not in FAIL_ON_CHOICES:
        raise ConfigError(f"--fail-on must be one of {', '.join(FAIL_ON_CHOICES)}, not '{fail_on}'")
    return None if value == "never" else Severity(value)


def fails(finding: Finding, fail_on: str) -> bool:
    limit = threshold(fail_on)
    return limit is not None and effective_severity(finding).rank >= limit.rank


def failing(findings: Iterable[Finding], fail_on: str) -> list[Finding]:
    limit = threshold(fail_on)
    if limit is None:
        return []
    return [f for f in findings if effective_severity(f).rank >= limit.rank]


def failing_count(findings: Iterable[Finding], fail_on: str) -> int:
    """How many findings ``failing`` lists, from the counts (a FindingStore's need no reading)."""
    limit = threshold(fail_on)
    if limit is None:
        return 0
    info = Severity.INFO.rank
    return sum(
        n
        for (_rule, severity, quality), n in kind_counts(findings).items()
        if (info if quality else Severity(severity).rank) >= limit.rank
    )


def exit_code(findings: Iterable[Finding], fail_on: str) -> int:
    return EXIT_FINDINGS if failing_count(findings, fail_on) else EXIT_OK
