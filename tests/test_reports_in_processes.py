"""With --jobs the report files are written by several processes at once.

The specification: every file is byte for byte what one process writes, from an in-memory result
and from a partitioned run's stores alike; a report that cannot be written does not keep the others
from being written, with or without processes, and the first one's error is the one raised; a bug
in a writer process reaches the caller with its traceback.
"""

from __future__ import annotations

import os
import signal

import pytest

import pcapcheck.partition as partition
from pcapcheck.analysis import analyze
from pcapcheck.errors import PcapcheckError
from pcapcheck.reports import csv_report, json_report, write_reports
from pcapcheck.reports.atomic import ReportWriteError
from pcapcheck.reports.fragments import renderer_for
from tests.samples_support import all_samples, config_for
from tests.test_reports_sample import sample_result

EVERY_REPORT = {
    "json_path": "x.json",
    "csv_dir": "csv",
    "html_path": "x.html",
    "junit_path": "x.xml",
    "sarif_path": "x.sarif",
}


def written(result, folder, jobs: int, **only) -> dict[str, bytes]:
    folder.mkdir()
    paths = {name: folder / path for name, path in (only or EVERY_REPORT).items()}
    write_reports(result, jobs=jobs, **paths)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("jobs", [2, 3, 8])
def test_every_report_file_is_the_one_a_single_process_writes(tmp_path, jobs):
    alone = written(sample_result(), tmp_path / "one", 1)
    assert len(alone) == 6  # JSON, two CSV files, HTML, JUnit, SARIF
    assert written(sample_result(), tmp_path / "many", jobs) == alone


def test_a_partitioned_runs_files_are_the_same_from_several_processes(tmp_path, monkeypatch):
    sample = max(all_samples(), key=lambda s: len(s.findings))
    monkeypatch.setattr(partition, "IN_MEMORY_SEGMENTS", 3)
    monkeypatch.setattr(partition, "SEGMENTS_PER_BUCKET", 2)
    result = analyze(
        [str(p) for p in sample.capture_paths], config_for(sample), steps=False,
        render=renderer_for(json=True, csv=True), all_reports=False, by_id=False,
    )  # fmt: skip
    assert type(result.connections).__name__ == "ConnectionStore" and len(result.findings) > 1
    only = {"json_path": "x.json", "csv_dir": "csv"}
    assert written(result, tmp_path / "many", 2, **only) == written(result, tmp_path / "one", 1, **only)


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_report_that_cannot_be_written_leaves_the_others_written(tmp_path, jobs):
    missing = tmp_path / "gone" / "x.json"
    with pytest.raises(PcapcheckError, match="gone/x.json: cannot write report"):
        write_reports(
            sample_result(), json_path=missing, csv_dir=tmp_path / "csv", sarif_path=tmp_path / "x.sarif", jobs=jobs
        )
    assert (tmp_path / "csv" / "findings.csv").is_file() and (tmp_path / "x.sarif").is_file()


@pytest.mark.parametrize("jobs", [1, 3])
def test_the_first_reports_error_is_the_one_raised(tmp_path, jobs):
    with pytest.raises(PcapcheckError, match="gone/x.json"):
        write_reports(
            sample_result(), json_path=tmp_path / "gone" / "x.json", junit_path=tmp_path / "gone" / "x.xml",
            sarif_path=tmp_path / "gone" / "x.sarif", jobs=jobs,
        )  # fmt: skip


def test_a_bug_in_a_writer_process_is_raised_with_its_traceback(tmp_path, monkeypatch):
    def broken(result, path):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(csv_report, "write_csv", broken)
    # The JSON is the first report (this process's lane), the CSV the second: a child's.
    with pytest.raises(RuntimeError, match="(?s)a report writer process failed.*ZeroDivisionError: a bug"):
        write_reports(sample_result(), csv_dir=tmp_path / "csv", json_path=tmp_path / "x.json", jobs=2)
    assert (tmp_path / "x.json").is_file()


def test_a_writer_process_killed_from_outside_is_one_line_and_the_others_are_written(tmp_path, monkeypatch):
    def killed(result, path):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(csv_report, "write_csv", killed)
    with pytest.raises(ReportWriteError, match=r"a report writer process died \(exit code -9\); try fewer --jobs"):
        write_reports(sample_result(), json_path=tmp_path / "x.json", csv_dir=tmp_path / "csv", jobs=2)
    assert (tmp_path / "x.json").is_file()


def test_a_bug_in_this_process_still_waits_for_the_writer_processes(tmp_path, monkeypatch):
    def broken(result, path):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(json_report, "write_json", broken)
    sarif = tmp_path / "x.sarif"
    with pytest.raises(ZeroDivisionError):
        # JSON and JUnit here (the bug stops them); the CSV and SARIF in a child, which finishes them.
        write_reports(
            sample_result(), json_path=tmp_path / "x.json", csv_dir=tmp_path / "csv", junit_path=tmp_path / "x.xml",
            sarif_path=sarif, jobs=2,
        )  # fmt: skip
    assert (tmp_path / "csv" / "findings.csv").is_file() and sarif.is_file()
    assert not [p for p in tmp_path.rglob("*.tmp")]


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_in_this_process_keeps_its_type(tmp_path, monkeypatch, jobs):
    class Odd(PcapcheckError):
        pass

    def odd(result, path):
        raise Odd("not a write error")

    monkeypatch.setattr(json_report, "write_json", odd)
    with pytest.raises(Odd, match="not a write error"):
        write_reports(sample_result(), json_path=tmp_path / "x.json", csv_dir=tmp_path / "csv", jobs=jobs)
