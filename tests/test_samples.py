"""End to end on every sample: the analysis finds exactly the connections and findings a person read
in the capture (samples/<name>.toml), and the CLI's exit code gates on them.

The expectations were written from ``tshark -r`` / ``tcpdump -nr``, never from pcapcheck's output,
so a failure here means the analyser disagrees with a person who read the packets.
"""

from __future__ import annotations

import pytest

from tests.samples_support import (
    actual_connections,
    actual_findings,
    all_samples,
    analyze_sample,
    connections_diff,
    findings_diff,
)

SAMPLES = all_samples()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_sample_analysis_matches_expectations(sample):
    result = analyze_sample(sample)
    assert result.error is None, f"{sample.name}: the analysis stopped early: {result.error}"
    problems = [
        connections_diff(sample.connections, actual_connections(result)),
        findings_diff(sample.findings, actual_findings(result.findings)),
    ]
    report = "\n".join(p for p in problems if p)
    assert not report, f"{sample.name} ({sample.toml_path.name}):\n{report}"


# ---- the CLI gate -------------------------------------------------------------------------------


def _clean_sample():
    """A sample a person found clean (no findings at all), else one without error-level findings."""
    for wanted in (lambda s: not s.findings, lambda s: not s.error_rules()):
        for sample in SAMPLES:
            if wanted(sample):
                return sample
    pytest.fail("no sample without error findings in samples/: the exit-0 path has nothing to run on")


def _violating_sample():
    for sample in SAMPLES:
        if sample.error_rules():
            return sample
    pytest.fail("no sample with an error finding in samples/: the exit-1 path has nothing to run on")


def _run_cli(args: list[str]):
    from typer.testing import CliRunner

    from pcapcheck.cli import app

    return CliRunner().invoke(app, args)


def _analyze_args(sample) -> list[str]:
    args = ["analyze", "--quiet", "--profile", sample.profile]
    for key, value in sample.params.items():
        args += ["--param", f"{key}={value}"]
    return args + sample.capture_paths


def test_cli_exits_0_on_a_sample_without_errors():
    sample = _clean_sample()
    outcome = _run_cli(_analyze_args(sample))
    assert outcome.exit_code == 0, f"{sample.name}: exit {outcome.exit_code}\n{outcome.output}{outcome.exception or ''}"


def test_cli_exits_1_on_a_sample_with_an_error_finding():
    sample = _violating_sample()
    outcome = _run_cli(_analyze_args(sample))
    assert outcome.exit_code == 1, (
        f"{sample.name} (expects {', '.join(sample.error_rules())}): exit {outcome.exit_code}\n"
        f"{outcome.output}{outcome.exception or ''}"
    )
