"""Replay steps are kept only when the HTML ladder will draw them; every other report is the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from pcapcheck.analysis import analyze
from pcapcheck.reports.csv_report import write_csv
from pcapcheck.reports.json_report import write_json
from tests.samples_support import all_samples, config_for

WITH_FINDINGS = [s for s in all_samples() if s.findings]


@pytest.mark.parametrize("sample", WITH_FINDINGS[:6], ids=[s.name for s in WITH_FINDINGS[:6]])
def test_a_run_without_steps_writes_the_same_json_and_csv(sample, tmp_path: Path):
    config = config_for(sample)
    kept = analyze(sample.capture_paths, config)
    dropped = analyze(sample.capture_paths, config, steps=False)
    assert any(c.steps for c in kept.connections)
    assert all(c.steps is None for c in dropped.connections)
    for name, result in (("kept", kept), ("dropped", dropped)):
        write_json(result, tmp_path / f"{name}.json")
        write_csv(result, tmp_path / name)
    assert (tmp_path / "kept.json").read_bytes() == (tmp_path / "dropped.json").read_bytes()
    for table in ("connections.csv", "findings.csv"):
        assert (tmp_path / "kept" / table).read_bytes() == (tmp_path / "dropped" / table).read_bytes()
